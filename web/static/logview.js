// The log (#messages): draws the open conversation's lines from the model.
//
// Each model line gets its <li> once (kept in a WeakMap, so a conversation shown again
// is not redrawn and a line dropped from the model is forgotten here too); a line whose
// object changed is drawn afresh with redraw(line). The history divider and the
// "new since you were last here" divider are views of the conversation's state
// (marker, newAbove), not lines of the model.

import { renderItem, renderMarker, renderNewDivider, retime } from "./render.js";

// The history divider's words: what is above the oldest line shown.
const MARKER_TEXT = {
  more: "earlier messages",
  loading: "loading…",
  beginning: "beginning of the conversation",
};

/** A line's own buttons in the Tab order (while focus is in that line) or out of it. */
function setTabbable(li, tabbable) {
  for (const button of li.querySelectorAll(".reply-quote, .reaction, .line-action")) button.tabIndex = tabbable ? 0 : -1;
}

export class LogView {
  constructor(list) {
    this.list = list;
    this.context = { selfNick: "" }; // what a line's drawing needs beyond the line: our nick (our reactions)
    this.onAction = () => {}; // onAction(action, msgid, button): a line's Reply, React, reply quote or reaction chip
    // One listener for every line's buttons: each says what it does (data-action) and the line its msgid.
    list.addEventListener("click", (event) => {
      const button = event.target.closest("[data-action]");
      const li = event.target.closest("li.line");
      if (!li || li.parentNode !== list) return;
      if (button) {
        this.onAction(button.dataset.action, li.dataset.msgid ?? null, button);
        return;
      }
      // A tap on a message shows its Reply and React buttons (a touch screen has no hover).
      if (event.target.closest("a, button, summary") || !li.querySelector(".line-actions")) return;
      const selected = list.querySelector(":scope > li.selected");
      if (selected && selected !== li) selected.classList.remove("selected");
      li.classList.toggle("selected");
    });
    // The keyboard: ↑/↓ in the log move from line to line; the line with focus lets Tab reach its
    // buttons (reply quote, reactions, Reply, React). Other lines' buttons stay out of the Tab
    // order, so that Tab goes past a long log in one step.
    list.addEventListener("keydown", (event) => this.onKeyDown(event));
    list.addEventListener("focusin", (event) => {
      const li = event.target.closest?.("li.line");
      if (li && li.parentNode === list) setTabbable(li, true);
    });
    list.addEventListener("focusout", (event) => {
      const li = event.target.closest?.("li.line");
      if (li && !li.contains(event.relatedTarget)) setTabbable(li, false);
    });
    this.nodes = new WeakMap(); // model line -> its <li>
    this.marker = renderMarker();
    this.divider = renderNewDivider();
  }

  /** ↑/↓ on the log or one of its lines: the line above or below takes focus (from the log: the last one in view). */
  onKeyDown(event) {
    if (event.key !== "ArrowUp" && event.key !== "ArrowDown") return;
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    const lines = [...this.list.querySelectorAll(":scope > li.line:not(.history-marker):not(.new-divider)")]
      .filter((li) => li.getClientRects().length);
    if (lines.length === 0) return;
    const current = event.target.closest?.("li.line");
    let next;
    if (event.target === this.list || !current) {
      const box = this.list.getBoundingClientRect();
      const inView = lines.filter((li) => li.getBoundingClientRect().bottom > box.top && li.getBoundingClientRect().top < box.bottom);
      next = event.key === "ArrowUp" ? (inView.at(-1) ?? lines.at(-1)) : (inView[0] ?? lines[0]);
    } else {
      const index = lines.indexOf(current);
      next = lines[index + (event.key === "ArrowUp" ? -1 : 1)];
      if (!next) return; // at the first or last line: stay
    }
    event.preventDefault();
    next.tabIndex = -1;
    next.focus({ preventScroll: true });
    next.scrollIntoView({ block: "nearest" });
  }

  /** The <li> of a model line, drawn the first time it is needed. */
  node(line) {
    let li = this.nodes.get(line);
    if (!li) {
      li = renderItem(line, this.context);
      setTabbable(li, false);
      this.nodes.set(line, li);
    }
    return li;
  }

  /** The <li> shown for a line, or null if it is not on the page. */
  shown(line) {
    const li = this.nodes.get(line);
    return li && li.parentNode === this.list ? li : null;
  }

  /** A line's object changed: draw it again, in place if it is shown. */
  redraw(line) {
    const old = this.nodes.get(line);
    this.nodes.delete(line);
    if (!old || old.parentNode !== this.list) return;
    const li = this.node(line);
    const focused = old.contains(document.activeElement) ? document.activeElement : null;
    if (old.classList.contains("selected")) li.classList.add("selected");
    old.replaceWith(li);
    if (!focused) return;
    // Focus stays where it was: on the same button of the new drawing (a chip, Reply, React), or on the line.
    const same = focused === old ? null : [...li.querySelectorAll("[data-action]")].find((b) =>
      b.dataset.action === focused.dataset.action && b.dataset.emoji === focused.dataset.emoji);
    if (!same) li.tabIndex = -1;
    (same ?? li).focus({ preventScroll: true });
  }

  /** The whole of a conversation: its history divider, its lines, and the "new" divider. */
  show(conversation) {
    const items = conversation.lines.map((line) => this.node(line));
    retime(items.flatMap((li) => [...li.querySelectorAll(":scope > time.time")]));
    this.list.replaceChildren(...(conversation.marker ? [this.marker] : []), ...items);
    this.setMarker(conversation);
    this.placeDivider(conversation);
  }

  /** Nothing shown (no conversation is open). */
  clear() {
    this.list.replaceChildren();
  }

  append(line) {
    this.list.append(this.node(line));
  }

  remove(line) {
    this.nodes.get(line)?.remove();
    this.nodes.delete(line);
  }

  /** Lines above `before` (a model line; null or not shown: at the end). */
  insert(lines, before) {
    const at = before ? this.shown(before) : null;
    const items = lines.map((line) => this.node(line));
    if (at) at.before(...items);
    else this.list.append(...items);
  }

  /** The history divider of the shown conversation goes first, saying what is above. */
  setMarker(conversation) {
    const state = conversation.marker;
    if (!state) {
      this.marker.remove();
      return;
    }
    if (this.list.firstChild !== this.marker) this.list.prepend(this.marker);
    this.marker.dataset.state = state;
    this.marker.querySelector(".body").textContent = MARKER_TEXT[state];
  }

  /** The "new since you were last here" divider above the conversation's first new line, if shown. */
  placeDivider(conversation) {
    const above = conversation.newAbove ? this.shown(conversation.newAbove) : null;
    if (!above) {
      this.divider.remove();
      return;
    }
    if (above.previousSibling !== this.divider) above.before(this.divider);
  }
}
