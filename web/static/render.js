// How one line of the conversation is drawn, from its plain object in the model (model.js).
//
// Every piece of user text reaches the DOM as a text node (textContent or
// createTextNode); links are <a> elements built here, never HTML strings.
// innerHTML is not used anywhere, and the page's Trusted Types policy would
// make it throw if it were.

import { nickColor, wideNickHue } from "./colors.js";
import { churnSummary } from "./quiet.js";
import { filePreview } from "./upload.js";
import { reactedBy, reactionLabel } from "./reactions.js";

let timeFormat = clockFormat("auto");

/** Lines drawn from now on (and retimed ones) use this clock: "24", "12" or "auto". */
export function setClockFormat(clock) {
  timeFormat = clockFormat(clock);
}

/** A line's time stamp again, in the clock now chosen. */
export function retime(stamps) {
  for (const stamp of stamps) stamp.textContent = timeFormat.format(new Date(stamp.dateTime));
}

/** The line's clock: "24" (21:05), "12" (09:05 PM) or "auto" (the browser's language decides). */
function clockFormat(clock) {
  const cycle = { 12: { hourCycle: "h12" }, 24: { hourCycle: "h23" } }[clock] ?? {};
  return new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", ...cycle });
}
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// A URL runs to the next space or angle bracket; trailing punctuation that
// usually ends a sentence is left out, a closing bracket only when unbalanced.
// "www.example.org" without a scheme is a link too (to https://).
const URL_PATTERN = /\b(?:https?:\/\/|www\.)[^\s<>"]+/gi;
const TRAILING = /[.,;:!?'"”’)\]]+$/;

function trimUrl(url) {
  let end = url.length;
  const match = TRAILING.exec(url);
  if (!match) return url;
  end = match.index;
  let kept = url.slice(0, end);
  // Give back closing brackets that close one opened inside the URL (wiki links).
  for (const ch of url.slice(end)) {
    const open = ch === ")" ? "(" : ch === "]" ? "[" : null;
    if (!open) break;
    const opens = kept.split(open).length - 1;
    const closes = kept.split(ch).length - 1;
    if (opens > closes) kept += ch;
    else break;
  }
  return kept;
}

/** A safe link for an http(s) URL (or www.host...), or null for anything else. */
export function makeLink(text) {
  let url;
  try {
    url = new URL(/^www\./i.test(text) ? `https://${text}` : text);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  const a = document.createElement("a");
  a.href = url.href;
  a.textContent = text;
  a.rel = "noopener noreferrer";
  a.target = "_blank";
  return a;
}

/** Text with its http(s) URLs as links, as a fragment of text nodes and <a> elements. */
export function linkify(text) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    const url = trimUrl(match[0]);
    if (/^www\.$/i.test(url)) continue;
    const link = makeLink(url);
    if (!link) continue;
    fragment.append(document.createTextNode(text.slice(last, match.index)), link);
    last = match.index + url.length;
  }
  fragment.append(document.createTextNode(text.slice(last)));
  return fragment;
}

export function nickElement(nick, className = "nick") {
  const span = el("span", className, nick);
  // A custom property, not an inline style attribute: CSP forbids inline styles
  // in markup, while CSSOM changes like this one stay allowed.
  span.style.setProperty("--nick-color", nickColor(nick));
  // The page's wider palette, used when the settings ask for it (style.css picks).
  span.style.setProperty("--nick-hue", String(wideNickHue(nick)));
  return span;
}

/**
 * Any item of the log from its model line (model.js): the /help card, a burst of
 * comings and goings, or an ordinary line. Returns the <li>; the caller decides where it goes.
 */
export function renderItem(line, context = {}) {
  if (line.kind === "help") return renderHelp(line.groups, line.tips);
  const li = renderLine(line, context);
  if (line.events && line.events.length > 1) {
    fillChurn(li, churnSummary(line.events), line.events.map((e) => e.text));
  }
  return li;
}

/**
 * One line of the conversation. kind: message | action | notice | event | info | error.
 * history: said before we were there (drawn dimmed); msgid: the server's id, kept
 * on the element so that history can page from it; redacted: what a deleted message says instead.
 * Returns the <li>; the caller decides where it goes.
 */
export function renderLine({
  kind, time, nick = "", text = "", self = false, mention = false, history = false, msgid, multiline = false,
  churn = false, continued = false, redacted = null, replyTo = null, parent = null, reactions = [],
}, { selfNick = "" } = {}) {
  const li = el("li", `line ${kind}`);
  // A join, part, quit or nick change: the settings may hide these, and a burst of them becomes one line.
  if (churn) li.classList.add("churn");
  // The same person again, soon after: the name is there for screen readers, not drawn.
  if (continued) li.classList.add("continued");
  if (kind === "message") {
    li.dataset.nick = nick;
    li.dataset.at = String(time.getTime());
  }
  // One message of several lines (draft/multiline): its line breaks are kept (white-space: pre-wrap).
  if (multiline) li.classList.add("multiline");
  if (self) li.classList.add("self");
  if (mention) li.classList.add("mention");
  if (history) li.classList.add("history");
  if (msgid) li.dataset.msgid = msgid;
  const stamp = el("time", "time", timeFormat.format(time));
  stamp.dateTime = time.toISOString();
  stamp.title = fullFormat.format(time);
  li.append(stamp);
  const body = el("span", "body");
  if (kind === "message" || kind === "notice") {
    const who = nickElement(nick);
    if (kind === "notice") who.append(el("span", "visually-hidden", " (notice)"));
    body.append(who, el("span", "sep", kind === "notice" ? " – " : ": "), textElement(text));
  } else if (kind === "action") {
    body.append(el("span", "star", "* "), nickElement(nick), " ", textElement(text));
  } else {
    body.append(linkify(text));
  }
  // A line that is just one of our uploaded images also shows it (upload.js).
  const preview = kind === "message" && redacted === null ? filePreview(text) : null;
  if (preview) body.append(preview);
  li.append(body);
  // draft/message-redaction: the line stays, saying so, so that the conversation around it still reads in order.
  if (redacted !== null) {
    body.textContent = redacted;
    li.classList.add("redacted");
    return li;
  }
  if (replyTo) body.prepend(replyQuote(replyTo, parent));
  if (reactions.length) body.append(reactionChips(reactions, selfNick));
  // A message the server gave an id can be replied to and reacted to.
  if (msgid && (kind === "message" || kind === "action" || kind === "notice")) li.append(lineActions(nick, kind));
  return li;
}

/** What someone said, with its links (a span of its own, apart from a reply's quote and reactions). */
function textElement(text) {
  const span = el("span", "text");
  span.append(linkify(text));
  return span;
}

/** A reply's quote of its parent (+draft/reply): who said what, a button that goes to it. */
function replyQuote(replyTo, parent) {
  const quote = el("button", "reply-quote");
  quote.type = "button";
  quote.dataset.action = "jump";
  quote.dataset.target = replyTo;
  quote.append(el("span", "reply-arrow", "↪ "));
  quote.lastChild.setAttribute("aria-hidden", "true");
  if (parent) {
    quote.append(nickElement(parent.nick, "nick reply-nick"), " ", el("span", "reply-text", parent.text));
    quote.setAttribute("aria-label", `In reply to ${parent.nick}: ${parent.text} (go to that message)`);
  } else {
    quote.append(el("span", "reply-text", "original message not loaded"));
    quote.setAttribute("aria-label", "In reply to a message not loaded here (load it and go to it)");
  }
  return quote;
}

/** Reaction chips under a message: "👍 2", pressed when one of them is ours; a press toggles ours. */
function reactionChips(reactions, selfNick) {
  const row = el("div", "reactions");
  for (const entry of reactions) {
    const mine = Boolean(selfNick) && reactedBy(entry, selfNick);
    const chip = el("button", "reaction");
    chip.type = "button";
    chip.dataset.action = "toggle-reaction";
    chip.dataset.emoji = entry.emoji;
    chip.setAttribute("aria-pressed", String(mine));
    chip.setAttribute("aria-label", reactionLabel(entry));
    chip.title = `${reactionLabel(entry)} — ${mine ? "press to take yours back" : "press to react with it too"}`;
    chip.append(el("span", "emoji", entry.emoji), el("span", "reaction-count", String(entry.nicks.length)));
    row.append(chip);
  }
  return row;
}

/**
 * Reply, React and Delete: shown when the pointer is over the line or focus is in it (always on a
 * touch screen). Delete is on every message; style.css shows it only where the log's data-delete
 * allows (deletion.js).
 */
function lineActions(nick, kind) {
  const bar = el("span", "line-actions");
  const reply = el("button", "line-action", "↩");
  reply.type = "button";
  reply.dataset.action = "reply";
  reply.setAttribute("aria-label", `Reply to ${nick}`);
  reply.title = "Reply";
  const react = el("button", "line-action emoji", "☺");
  react.type = "button";
  react.dataset.action = "react";
  react.setAttribute("aria-label", `React to ${nick}’s message`);
  react.setAttribute("aria-haspopup", "menu");
  react.setAttribute("aria-expanded", "false");
  react.title = "React";
  bar.append(reply, react);
  if (kind === "notice") return bar;
  const remove = el("button", "line-action delete", "✕");
  remove.type = "button";
  remove.dataset.action = "delete";
  remove.setAttribute("aria-label", "Delete message");
  remove.title = "Delete";
  bar.append(remove);
  return bar;
}

/**
 * A burst of comings and goings as one quiet line: the summary ("3 joined, 2 left")
 * opens, with the keyboard too, onto who did what. texts: one sentence per event.
 */
export function fillChurn(li, summary, texts) {
  const details = el("details", "churn-details");
  const list = el("ul", "churn-list");
  list.append(...texts.map((text) => el("li", null, text)));
  details.append(el("summary", null, summary), list);
  li.querySelector(".body").replaceChildren(details);
}

/**
 * The /help card: groups of [usage, summary] pairs and a few tips, as one
 * item of the log (a card, not a run of timestamped lines).
 */
export function renderHelp(groups, tips) {
  const li = el("li", "line help");
  const card = el("section", "help-card");
  card.setAttribute("aria-label", "Commands");
  card.append(el("h3", "help-title", "Commands"));
  const columns = el("div", "help-groups");
  for (const { title, commands } of groups) {
    const group = el("section", "help-group");
    group.append(el("h4", null, title));
    const list = el("dl");
    for (const [usage, summary] of commands) list.append(el("dt", null, usage), el("dd", null, summary));
    group.append(list);
    columns.append(group);
  }
  card.append(columns);
  const tipList = el("ul", "help-tips");
  for (const tip of tips) tipList.append(el("li", null, tip));
  card.append(tipList);
  li.append(card);
  return li;
}

/** The quiet divider above a room's history; its text says whether more can be loaded. */
export function renderMarker() {
  const li = el("li", "line history-marker");
  li.setAttribute("role", "separator");
  li.append(el("span", "body"));
  return li;
}

/** The "new since you were last here" divider (placed above a line by the chat). */
export function renderNewDivider() {
  const li = el("li", "line new-divider");
  li.setAttribute("role", "separator");
  li.append(el("span", "body", "new since you were last here"));
  return li;
}

