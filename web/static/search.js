// The search panel: a query (words, "a phrase", from:nick, in:#room, before:/after: dates)
// sent as the server's SEARCH command, its results (room, who, when, the line with the
// words found marked), and a pick that opens the room at that message.
//
// Views only: the chat sends the query (onSearch) and jumps to a result (onPick). Every
// piece of text goes in as a text node; the marked words are <mark> elements around them.

import { el, nickElement } from "./render.js";

const FILTER = /^(from|in|before|after):/i;
const when = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** The words and phrases of a query that the results should show marked (not its filters). */
export function queryTerms(query) {
  const terms = [];
  for (const match of query.matchAll(/"([^"]*)"|(\S+)/g)) {
    const term = match[1] ?? match[2];
    if (match[2] !== undefined && FILTER.test(term)) continue;
    if (term.trim()) terms.push(term.trim());
  }
  return terms;
}

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** text as a fragment of text nodes, with each occurrence of the terms in a <mark>. */
export function highlight(text, terms) {
  const fragment = document.createDocumentFragment();
  if (terms.length === 0) {
    fragment.append(text);
    return fragment;
  }
  // Longest first, so that a phrase wins over one of its words.
  const pattern = new RegExp([...terms].sort((a, b) => b.length - a.length).map(escapeRegExp).join("|"), "giu");
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (!match[0]) continue;
    fragment.append(text.slice(last, match.index), el("mark", null, match[0]));
    last = match.index + match[0].length;
  }
  fragment.append(text.slice(last));
  return fragment;
}

/** The search dialog: #search with its form, status line and result list. */
export class SearchPanel {
  constructor(doc) {
    const $ = (id) => doc.getElementById(id);
    this.dialog = $("search");
    this.form = $("search-form");
    this.input = $("search-input");
    this.status = $("search-status");
    this.list = $("search-results");
    this.results = [];
    this.query = "";
    this.returnTo = null;
    this.onSearch = () => false; // onSearch(query): sent? (false when offline)
    this.onPick = () => {}; // onPick(result): open its room at that message
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.search(this.input.value);
    });
    // Escape closes the panel at once (a search box would first only clear its text).
    this.input.addEventListener("keydown", (event) => {
      if (event.key !== "Escape" || event.isComposing) return;
      event.preventDefault();
      this.dialog.close();
    });
    this.list.addEventListener("click", (event) => {
      const button = event.target.closest("[data-index]");
      if (!button) return;
      const result = this.results[Number(button.dataset.index)];
      this.returnTo = null; // focus goes to the message, not back to the opener
      this.dialog.close();
      if (result) this.onPick(result);
    });
    this.dialog.addEventListener("close", () => {
      const back = this.returnTo;
      this.returnTo = null;
      if (back?.isConnected) back.focus();
    });
  }

  get isOpen() {
    return this.dialog.open;
  }

  /** Open (with a query to run at once, if given); focus goes to the query. */
  open(query = "", opener = null) {
    if (!this.isOpen) {
      this.returnTo = opener ?? document.activeElement;
      this.dialog.showModal();
    }
    this.input.focus();
    if (query.trim()) {
      this.input.value = query;
      this.search(query);
    } else {
      this.input.select();
    }
  }

  search(query) {
    const text = query.trim();
    if (!text) {
      this.say("Type words to look for.", "error");
      return;
    }
    this.query = text;
    this.results = [];
    this.list.replaceChildren();
    if (this.onSearch(text)) this.say("Searching…");
    else this.say("Not connected: search again once back online.", "error");
  }

  say(text, kind = "") {
    this.status.textContent = text;
    this.status.dataset.kind = kind;
  }

  /** The results of the latest query: [{room, nick, time, text, msgid, action}], newest first. */
  show(results) {
    this.results = results;
    const terms = queryTerms(this.query);
    this.list.replaceChildren(...results.map((result, index) => {
      const li = el("li", "search-item");
      const button = el("button", "search-result");
      button.type = "button";
      button.dataset.index = String(index);
      const head = el("span", "search-head");
      const stamp = el("time", "search-time", when.format(result.time));
      stamp.dateTime = result.time.toISOString();
      head.append(el("span", "search-room", result.room), " · ", nickElement(result.nick), " · ", stamp);
      const body = el("span", "search-text");
      if (result.action) body.append("* ", result.nick, " ");
      body.append(highlight(result.text, terms));
      button.append(head, body);
      li.append(button);
      return li;
    }));
    const count = results.length;
    this.say(count === 0 ? `Nothing found for “${this.query}”.`
      : `${count} ${count === 1 ? "message" : "messages"} found, newest first. Choose one to see it in its room.`);
  }

  /** FAIL SEARCH: the server's reason, in the panel. */
  error(text) {
    this.results = [];
    this.list.replaceChildren();
    this.say(text || "The search failed.", "error");
  }
}
