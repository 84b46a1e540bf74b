// Everything the page draws: lines, the user list, the room list, the topic, the status.
//
// Every piece of user text reaches the DOM as a text node (textContent or
// createTextNode); links are <a> elements built here, never HTML strings.
// innerHTML is not used anywhere, and the page's Trusted Types policy would
// make it throw if it were.

import { nickColor, wideNickHue } from "./colors.js";
import { fold } from "./irc.js";
import { DEFAULT_PREFIX, rankSymbol } from "./modes.js";
import { NameMenu, ReasonDialog } from "./namemenu.js";
import { RoomBrowser } from "./roombrowser.js";
import { RoomSettings } from "./roomsettings.js";
import { filePreview } from "./upload.js";

// What a private conversation's header adds about the partner (MONITOR's 730/731).
const PRESENCE = { true: " · online", false: " · offline", null: "" };

let timeFormat = clockFormat("auto");

/** The line's clock: "24" (21:05), "12" (09:05 PM) or "auto" (the browser's language decides). */
function clockFormat(clock) {
  const cycle = { 12: { hourCycle: "h12" }, 24: { hourCycle: "h23" } }[clock] ?? {};
  return new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", ...cycle });
}
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

// The user list's groups, highest rank first: [title, which ranks belong, what a screen reader hears].
const USER_GROUPS = [
  { id: "ops", title: "Operators", has: (ranks) => ranks.includes("o"), role: "operator" },
  { id: "voiced", title: "Voiced", has: (ranks) => ranks.includes("v"), role: "voiced" },
  { id: "others", title: "Everyone else", has: () => true, role: "" },
];

function el(tag, className, text) {
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
 * One line of the conversation. kind: message | action | notice | event | info | error.
 * history: said before we were there (drawn dimmed); msgid: the server's id, kept
 * on the element so that history can page from it.
 * Returns the <li>; the caller decides where it goes.
 */
export function renderLine({
  kind, time, nick = "", text = "", self = false, mention = false, history = false, msgid, multiline = false,
  churn = false, continued = false,
}) {
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
    body.append(who, el("span", "sep", kind === "notice" ? " – " : ": "), linkify(text));
  } else if (kind === "action") {
    body.append(el("span", "star", "* "), nickElement(nick), " ", linkify(text));
  } else {
    body.append(linkify(text));
  }
  // A line that is just one of our uploaded images also shows it (upload.js).
  const preview = kind === "message" ? filePreview(text) : null;
  if (preview) body.append(preview);
  li.append(body);
  return li;
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

/** The DOM half of the page: finds its elements once, then draws what the chat tells it. */
export class View {
  constructor(doc) {
    const $ = (id) => doc.getElementById(id);
    this.doc = doc;
    this.joinSection = $("join");
    this.joinForm = $("join-form");
    this.nameInput = $("name");
    this.nameError = $("name-error");
    this.passwordRow = $("password-row");
    this.passwordInput = $("password");
    this.joinButton = this.joinForm.querySelector("button");
    this.chat = $("chat");
    this.status = $("status");
    this.retryButton = $("retry");
    this.buffers = $("buffers");
    this.queries = $("queries");
    this.queriesSection = $("queries-section");
    this.browseButton = $("browse-rooms");
    this.jumpButton = $("jump-latest");
    this.roomTitle = $("room-title");
    this.topic = $("topic");
    this.messages = $("messages");
    this.composer = $("composer");
    this.input = $("message");
    this.users = $("users");
    this.userCount = $("user-count");
    this.usersLabel = $("users-label");
    this.peopleToggle = $("people-toggle");
    this.peopleClose = $("people-close");
    this.people = $("people");
    this.roomBrowser = new RoomBrowser(doc);
    this.roomSettings = new RoomSettings(doc);
    this.roomSettingsButton = $("room-settings-button");
    this.nameMenu = new NameMenu(doc);
    this.reasonDialog = new ReasonDialog(doc);
    this.onUserPick = () => {}; // (nick, button): a name in the user list was chosen
    this.baseTitle = doc.title;
  }

  // -- joining -------------------------------------------------------------------

  showNameError(text) {
    this.nameError.textContent = text;
    this.nameError.hidden = !text;
    this.nameInput.setAttribute("aria-invalid", text ? "true" : "false");
    this.setJoining(false);
    if (text) {
      this.nameInput.focus();
      this.nameInput.select();
    }
  }

  askPassword(text) {
    this.passwordRow.hidden = false;
    this.showNameError(text);
    this.passwordInput.value = "";
    this.passwordInput.focus();
  }

  get password() {
    return this.passwordRow.hidden ? null : this.passwordInput.value;
  }

  setJoining(joining) {
    this.joinButton.disabled = joining;
    this.joinButton.textContent = joining ? "Joining…" : "Join";
  }

  showChat() {
    this.joinSection.hidden = true;
    this.chat.hidden = false;
    this.input.focus();
  }

  showJoin(name) {
    if (name) this.nameInput.value = name;
    this.chat.hidden = true;
    this.joinSection.hidden = false;
    this.setJoining(false);
    this.nameInput.focus();
  }

  // -- status ------------------------------------------------------------------

  setStatus(state, text) {
    this.status.dataset.state = state;
    this.status.textContent = text;
    this.retryButton.hidden = state !== "reconnecting";
  }

  setTitle(unread, mentions) {
    const count = unread ? `(${unread}${mentions ? "!" : ""}) ` : "";
    this.doc.title = count + this.baseTitle;
  }

  // -- the open buffer ---------------------------------------------------------

  isNearBottom() {
    const m = this.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
  }

  scrollToBottom() {
    this.messages.scrollTop = this.messages.scrollHeight;
  }

  isNearTop() {
    return this.messages.scrollTop < 40;
  }

  /** Whether the open buffer is taller than its box (if not, nobody can scroll up to load more). */
  canScroll() {
    return this.messages.scrollHeight > this.messages.clientHeight + 4;
  }

  /** Older lines above `before` (null: at the end), without moving what the user is looking at. */
  prependLines(lines, before) {
    const m = this.messages;
    const fromBottom = m.scrollHeight - m.scrollTop;
    this.insertNodes(lines, before);
    m.scrollTop = m.scrollHeight - fromBottom;
  }

  /**
   * Lines said earlier, above `before` (null: at the end): the view follows them
   * if it was at the bottom, and stays on the same lines if they land above it.
   */
  insertLines(lines, before) {
    const m = this.messages;
    const stick = this.isNearBottom();
    const fromBottom = m.scrollHeight - m.scrollTop;
    const above = before !== null && before.getBoundingClientRect().top < m.getBoundingClientRect().top;
    this.insertNodes(lines, before);
    if (stick) this.scrollToBottom();
    else if (above) m.scrollTop = m.scrollHeight - fromBottom;
  }

  insertNodes(lines, before) {
    // aria-busy: a screen reader shouldn't read a page of old lines out as if they were new.
    this.messages.setAttribute("aria-busy", "true");
    if (before && before.parentNode === this.messages) before.before(...lines);
    else this.messages.append(...lines);
    this.messages.setAttribute("aria-busy", "false");
  }

  /** The history divider goes first in the open buffer. */
  showMarker(marker) {
    this.messages.prepend(marker);
  }

  /** Add a line at the end; true when the view followed it (the user was at the bottom). */
  appendLine(li) {
    const stick = this.isNearBottom();
    this.messages.append(li);
    if (stick) this.scrollToBottom();
    return stick;
  }

  removeLine(li) {
    li.remove();
  }

  /** The clock of every line, now ("12" or "24") and when a buffer is shown later. */
  setClock(clock) {
    timeFormat = clockFormat(clock);
    this.retime(this.messages.querySelectorAll("time.time"));
  }

  retime(stamps) {
    for (const stamp of stamps) stamp.textContent = timeFormat.format(new Date(stamp.dateTime));
  }

  showBuffer(buffer, ownNick, away) {
    this.retime(buffer.lines.flatMap((li) => [...li.querySelectorAll(":scope > time.time")]));
    // aria-busy keeps screen readers from reading the whole history out again.
    this.messages.setAttribute("aria-busy", "true");
    this.messages.replaceChildren(...(buffer.marker ? [buffer.marker] : []), ...buffer.lines);
    if (buffer.newDivider?.above) buffer.newDivider.above.before(buffer.newDivider.li);
    this.messages.setAttribute("aria-busy", "false");
    this.messages.setAttribute("aria-label", `Messages in ${buffer.name}`);
    this.roomTitle.textContent = buffer.name;
    this.setTopic(buffer);
    this.setUsers(buffer, ownNick, away);
    this.input.placeholder = `Message ${buffer.name} — /help for commands`;
    this.input.setAttribute("aria-label", `Message ${buffer.name}`);
    this.scrollToBottom();
  }

  setTopic(buffer) {
    if (buffer.kind !== "room") {
      this.topic.textContent = `Private conversation${PRESENCE[String(buffer.online)]}`;
      this.topic.classList.remove("empty");
      return;
    }
    this.topic.replaceChildren(buffer.topic ? linkify(buffer.topic) : document.createTextNode("No topic is set"));
    this.topic.classList.toggle("empty", !buffer.topic);
  }

  /**
   * The people of the open buffer: in a room, operators, then voiced people, then
   * everyone else (headings once anyone has a rank). away: folded nick -> reason.
   * Each name is a button that opens its menu (onUserPick).
   */
  setUsers(buffer, ownNick, away = new Map(), prefix = DEFAULT_PREFIX) {
    const room = buffer.kind === "room";
    const nicks = room ? [...buffer.members.values()] : [buffer.name, ownNick];
    nicks.sort((a, b) => a.localeCompare(b, undefined, { sensitivity: "base" }));
    const ranksOf = (nick) => (room ? buffer.ranks.get(fold(nick)) ?? "" : "");
    const item = (nick, role) => {
      const li = el("li", "user");
      li.dataset.nick = nick;
      const button = el("button", "user-button");
      button.type = "button";
      button.setAttribute("aria-haspopup", "menu");
      button.setAttribute("aria-expanded", "false");
      const symbol = rankSymbol(ranksOf(nick), prefix);
      const rank = el("span", "rank", symbol);
      rank.setAttribute("aria-hidden", "true");
      button.append(rank, nickElement(nick));
      if (role) button.append(el("span", "visually-hidden", ` (${role})`));
      button.addEventListener("click", () => this.onUserPick(nick, button));
      li.append(button);
      if (fold(nick) === fold(ownNick)) {
        li.classList.add("self");
        button.append(el("span", "you", " (you)"));
      } else if (!room && buffer.online === false) {
        li.classList.add("offline");
        button.append(el("span", "you", " (offline)"));
      }
      const reason = away.get(fold(nick));
      if (reason !== undefined) {
        li.classList.add("away");
        const said = reason ? `away: ${reason}` : "away";
        li.title = said;
        li.append(el("span", "visually-hidden", ` (${said})`));
      }
      return li;
    };
    const ranked = nicks.some((nick) => ranksOf(nick));
    if (!ranked) {
      this.users.replaceChildren(...nicks.map((nick) => item(nick, "")));
    } else {
      // Each person in the first group they belong to.
      const groups = USER_GROUPS.map((group) => ({ ...group, nicks: [] }));
      for (const nick of nicks) groups.find((g) => g.has(ranksOf(nick))).nicks.push(nick);
      this.users.replaceChildren(...groups.filter((g) => g.nicks.length).map((group) => {
        const li = el("li", "user-group");
        const heading = el("h3", "user-group-title", `${group.title} (${group.nicks.length})`);
        heading.id = `users-${group.id}`;
        const list = el("ul");
        list.setAttribute("aria-labelledby", heading.id);
        list.append(...group.nicks.map((nick) => item(nick, group.role)));
        li.append(heading, list);
        return li;
      }));
    }
    // A private conversation is not a room: no "In the room 2".
    this.usersLabel.textContent = room ? "In the room" : "In this conversation";
    this.userCount.textContent = room ? String(nicks.length) : "";
    this.userCount.hidden = !room;
    this.peopleToggle.textContent = room ? `People (${nicks.length})` : "People";
    this.users.classList.toggle("stale", Boolean(buffer.stale));
  }

  /** The room settings button is there for operators of the open room only. */
  setRoomSettingsAvailable(available) {
    this.roomSettingsButton.hidden = !available;
  }

  /** Mention: the name goes into the message box ("bob: " at the start, else as a word). */
  mention(nick) {
    const value = this.input.value;
    this.input.value = value.trim() ? `${value.replace(/\s*$/, " ")}${nick} ` : `${nick}: `;
    this.input.focus();
    const end = this.input.value.length;
    this.input.setSelectionRange(end, end);
  }

  /** Ask for a reason (a kick, a ban); onConfirm(reason) runs unless cancelled. */
  askReason(title, action, onConfirm) {
    this.reasonDialog.ask(title, action, onConfirm);
  }

  setPeopleOpen(open) {
    this.people.classList.toggle("open", open);
    this.peopleToggle.setAttribute("aria-expanded", String(open));
    // Focus follows the panel, so keyboard users land in it and come back out of it.
    (open ? this.peopleClose : this.peopleToggle).focus();
  }

  get peopleOpen() {
    return this.people.classList.contains("open");
  }

  // -- the list of rooms and conversations -------------------------------------

  /** Rooms under "Rooms", private conversations under "Direct messages" (each with a × to close). */
  setBuffers(buffers, activeKey, onSelect, onClose) {
    const item = (buffer) => {
      const li = el("li", "buffer-item");
      const button = el("button", "buffer");
      button.type = "button";
      button.append(el("span", "buffer-name", buffer.name));
      if (buffer.kind === "query" && buffer.online !== null) {
        const presence = el("span", buffer.online ? "presence online" : "presence offline", buffer.online ? "" : "offline");
        if (buffer.online) presence.append(el("span", "visually-hidden", "online"));
        button.append(presence);
      }
      if (buffer.unread) {
        const badge = el("span", buffer.mentions ? "badge mention" : "badge", String(buffer.unread));
        badge.setAttribute("aria-label", `${buffer.unread} unread`);
        button.append(badge);
      }
      if (buffer.key === activeKey) button.setAttribute("aria-current", "true");
      button.addEventListener("click", () => onSelect(buffer.key));
      li.append(button);
      if (buffer.kind === "query") {
        const close = el("button", "buffer-close", "×");
        close.type = "button";
        close.setAttribute("aria-label", `Close the conversation with ${buffer.name}`);
        close.title = "Close";
        close.addEventListener("click", () => onClose(buffer.key));
        li.append(close);
      }
      return li;
    };
    const rooms = buffers.filter((buffer) => buffer.kind === "room");
    const queries = buffers.filter((buffer) => buffer.kind === "query");
    this.buffers.replaceChildren(...rooms.map(item));
    this.queries.replaceChildren(...queries.map(item));
    this.queriesSection.hidden = queries.length === 0;
  }

  // -- "N new messages — jump to latest" ----------------------------------------

  setJump(count) {
    this.jumpButton.hidden = count === 0;
    this.jumpButton.textContent = count === 1 ? "1 new message — jump to latest" : `${count} new messages — jump to latest`;
  }
}
