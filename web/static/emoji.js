// Emoji: ":shortcode:" completion in the message box, and a small picker (for inserting an
// emoji there, and for reactions). The table of names is emojidata.js; every emoji in it is
// in the bundled font (style.css, fonts/), so none shows as an empty box on a machine
// without an emoji font of its own.

import { EMOJI } from "./emojidata.js";
import { closeOnPressOutside } from "./popup.js";

const BY_NAME = new Map(EMOJI);
const NAME_OF = new Map();
for (const [name, emoji] of EMOJI) if (!NAME_OF.has(emoji)) NAME_OF.set(emoji, name);

/** The emoji the picker offers for the message box. */
export const PICKER_EMOJI = [
  "😀", "😂", "🙂", "😉", "😊", "😍", "🤔", "😎", "😅", "😭", "😮", "😢", "😡", "🙄", "😴", "🥳",
  "👍", "👎", "👏", "🙌", "🙏", "👋", "💪", "👀", "❤️", "🔥", "✨", "🎉", "💯", "✅", "❌", "⚠️",
  "☕", "🍕", "🍺", "🎂", "🚀", "💡", "🐛", "📌",
];

// At most this many suggestions in the completion list.
const SUGGESTIONS = 8;
// ":" then at least two name characters, at the start or after a space, up to the caret.
const TYPED = /(^|\s):([a-z0-9_+-]{2,})$/i;

/** A spoken name for an emoji ("thumbsup" → "thumbsup", "heart_eyes" → "heart eyes"). */
export function emojiName(emoji) {
  return (NAME_OF.get(emoji) ?? emoji).replace(/_/g, " ");
}

/** The emoji of a shortcode without its colons, or undefined. */
export function emojiFor(name) {
  return BY_NAME.get(name.toLowerCase());
}

/** Shortcodes matching what was typed: names starting with it first (shortest first), then names containing it. */
export function matchShortcodes(typed, limit = SUGGESTIONS) {
  const query = typed.toLowerCase();
  const starts = [];
  const contains = [];
  const seen = new Set();
  for (const [name, emoji] of EMOJI) {
    if (seen.has(emoji)) continue;
    if (name.startsWith(query)) starts.push([name, emoji]);
    else if (name.includes(query)) contains.push([name, emoji]);
    else continue;
    seen.add(emoji);
  }
  // The shortest names first: what was typed exactly ("smile") before its longer kin ("smiley").
  starts.sort((a, b) => a[0].length - b[0].length);
  return [...starts, ...contains].slice(0, limit);
}

/**
 * The completion list under the message box: typing ":smi" lists matching emoji;
 * ↑/↓ choose, Tab or Enter put the emoji in place of ":smi", Escape closes. A whole
 * ":smile:" typed becomes the emoji at once. keyDown(event) is called by the Composer
 * before its own keys (it returns true when the key was the list's).
 */
export class EmojiCompleter {
  constructor(input, list) {
    this.input = input;
    this.list = list;
    this.matches = [];
    this.index = 0;
    this.start = 0; // where ":smi" starts in the text
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", list.id);
    input.addEventListener("input", () => this.update());
    input.addEventListener("blur", () => this.close());
    // A click on a suggestion must not take focus from the message box first.
    list.addEventListener("pointerdown", (event) => event.preventDefault());
    list.addEventListener("click", (event) => {
      const option = event.target.closest("[role=option]");
      if (option) this.pick(Number(option.dataset.index));
    });
  }

  get isOpen() {
    return !this.list.hidden;
  }

  /** Look at the text before the caret: a finished :code: is replaced, a started one is listed. */
  update() {
    const caret = this.input.selectionStart;
    const before = this.input.value.slice(0, caret);
    const done = /(^|\s):([a-z0-9_+-]+):$/i.exec(before);
    if (done && emojiFor(done[2])) {
      const start = caret - done[2].length - 2;
      this.replace(start, caret, emojiFor(done[2]));
      this.close();
      return;
    }
    const typed = TYPED.exec(before);
    this.matches = typed ? matchShortcodes(typed[2]) : [];
    if (this.matches.length === 0) {
      this.close();
      return;
    }
    this.start = caret - typed[2].length - 1;
    this.index = 0;
    this.draw();
  }

  draw() {
    this.list.replaceChildren(...this.matches.map(([name, emoji], i) => {
      const option = document.createElement("li");
      option.id = `emoji-option-${i}`;
      option.className = "emoji-option";
      option.setAttribute("role", "option");
      option.setAttribute("aria-selected", String(i === this.index));
      option.dataset.index = String(i);
      const glyph = document.createElement("span");
      glyph.className = "emoji";
      glyph.textContent = emoji;
      option.append(glyph, ` :${name}:`);
      return option;
    }));
    this.list.hidden = false;
    this.input.setAttribute("aria-activedescendant", `emoji-option-${this.index}`);
    this.list.children[this.index]?.scrollIntoView({ block: "nearest" });
  }

  close() {
    if (!this.isOpen) return;
    this.list.hidden = true;
    this.list.replaceChildren();
    this.matches = [];
    this.input.removeAttribute("aria-activedescendant");
  }

  /** The Composer's keys go here first; true when the list took the key. */
  keyDown(event) {
    if (!this.isOpen) return false;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      const step = event.key === "ArrowDown" ? 1 : -1;
      this.index = (this.index + step + this.matches.length) % this.matches.length;
      this.draw();
    } else if ((event.key === "Tab" && !event.shiftKey) || event.key === "Enter") {
      this.pick(this.index);
    } else if (event.key === "Escape") {
      this.close();
    } else return false;
    event.preventDefault();
    event.stopPropagation();
    return true;
  }

  pick(index) {
    const match = this.matches[index];
    if (!match) return;
    this.replace(this.start, this.input.selectionStart, `${match[1]} `);
    this.close();
  }

  replace(start, end, text) {
    const value = this.input.value;
    this.input.value = value.slice(0, start) + text + value.slice(end);
    const caret = start + text.length;
    this.input.setSelectionRange(caret, caret);
    this.input.focus();
    // The text changed as if typed: typing notices and the like follow it.
    this.input.dispatchEvent(new Event("input", { bubbles: true }));
  }
}

/** Put text into a text box at its caret, as if typed. */
export function insertAtCaret(input, text) {
  const start = input.selectionStart ?? input.value.length;
  const end = input.selectionEnd ?? start;
  input.value = input.value.slice(0, start) + text + input.value.slice(end);
  const caret = start + text.length;
  input.focus();
  input.setSelectionRange(caret, caret);
  input.dispatchEvent(new Event("input", { bubbles: true }));
}

/**
 * A small grid of emoji buttons (a menu), opened next to a button: the message box's
 * "Insert emoji", or a line's "React". Arrows move (it is a grid of COLUMNS), Home/End,
 * Escape or Tab close it and give focus back; a click or Enter picks.
 */
export class EmojiPicker {
  static COLUMNS = 8;

  constructor(doc) {
    this.doc = doc;
    this.popup = doc.getElementById("emoji-popup");
    this.grid = doc.getElementById("emoji-grid");
    this.anchor = null;
    this.onPick = null;
    this.grid.addEventListener("keydown", (event) => this.onKeyDown(event));
    this.grid.addEventListener("click", (event) => {
      const button = event.target.closest("[data-emoji]");
      if (!button) return;
      const pick = this.onPick;
      this.close(false);
      pick?.(button.dataset.emoji);
    });
    closeOnPressOutside(doc, this);
  }

  get isOpen() {
    return !this.popup.hidden;
  }

  get items() {
    return [...this.grid.querySelectorAll("[role=menuitem]")];
  }

  /** Open by anchor with these emoji; onPick(emoji) runs for the one chosen. label names the menu. */
  open(anchor, choices, onPick, label) {
    const again = this.isOpen && this.anchor === anchor;
    this.close(again);
    if (again) return;
    this.anchor = anchor;
    this.onPick = onPick;
    this.grid.setAttribute("aria-label", label);
    this.grid.replaceChildren(...choices.map((emoji) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "emoji-choice emoji";
      button.setAttribute("role", "menuitem");
      button.tabIndex = -1;
      button.dataset.emoji = emoji;
      button.textContent = emoji;
      button.setAttribute("aria-label", emojiName(emoji));
      button.title = `:${NAME_OF.get(emoji) ?? emoji}:`;
      return button;
    }));
    this.popup.hidden = false;
    anchor.setAttribute("aria-expanded", "true");
    this.place(anchor);
    this.items[0]?.focus();
  }

  place(anchor) {
    const box = anchor.getBoundingClientRect();
    const width = this.popup.offsetWidth;
    const height = this.popup.offsetHeight;
    const left = Math.max(4, Math.min(box.left, window.innerWidth - width - 4));
    const above = box.top - height - 4;
    const top = above >= 4 ? above : Math.min(box.bottom + 4, window.innerHeight - height - 4);
    this.popup.style.setProperty("left", `${left}px`);
    this.popup.style.setProperty("top", `${Math.max(4, top)}px`);
  }

  close(returnFocus = true) {
    if (!this.isOpen) return;
    this.popup.hidden = true;
    this.grid.replaceChildren();
    const anchor = this.anchor;
    this.anchor = null;
    this.onPick = null;
    anchor?.setAttribute("aria-expanded", "false");
    if (returnFocus && anchor?.isConnected) anchor.focus();
  }

  onKeyDown(event) {
    const items = this.items;
    const index = items.indexOf(this.doc.activeElement);
    const go = (i) => items[Math.max(0, Math.min(items.length - 1, i))]?.focus();
    const columns = EmojiPicker.COLUMNS;
    if (event.key === "ArrowRight") go(index + 1);
    else if (event.key === "ArrowLeft") go(index - 1);
    else if (event.key === "ArrowDown") go(index + columns);
    else if (event.key === "ArrowUp") go(index - columns);
    else if (event.key === "Home") go(0);
    else if (event.key === "End") go(items.length - 1);
    else if (event.key === "Escape" || event.key === "Tab") this.close(true);
    else return;
    event.preventDefault();
    event.stopPropagation();
  }
}
