// The message box's keyboard: Enter sends, Shift+Enter breaks the line, Tab
// completes a name, and Up/Down walk back through what was sent (like a shell).
// It knows nothing of IRC: it is given a send(text) that returns whether the
// text went, a names() that lists who can be completed, and a remember(text)
// that says whether a text may be kept for Up (a password must not), and a keys(event)
// that sees each key first (the emoji list, Escape for a reply) and says whether it took it.

const HISTORY_MAX = 50;

export class Composer {
  constructor(textarea, { send, names, remember = () => true, keys = () => false }) {
    this.keys = keys;
    this.input = textarea;
    this.send = send;
    this.names = names;
    this.remember = remember; // whether a sent text may come back with Up (not a password)
    this.history = [];
    this.position = 0; // history.length means "the line being written"
    this.draft = "";
    this.completion = null; // {start, prefix, matches, index} while Tab cycles
    textarea.addEventListener("keydown", (event) => this.onKeyDown(event));
    textarea.addEventListener("input", () => {
      this.completion = null;
    });
  }

  onKeyDown(event) {
    if (event.isComposing) return; // an IME is at work: its keys are its own
    if (this.keys(event)) return;
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      this.submit();
    } else if (event.key === "Tab" && !event.shiftKey && !event.ctrlKey && !event.altKey) {
      // Tab moves focus as usual unless there is a word to complete.
      if (this.complete()) event.preventDefault();
    } else if (event.key === "ArrowUp" && this.caretOnFirstLine()) {
      if (this.walk(-1)) event.preventDefault();
    } else if (event.key === "ArrowDown" && this.caretOnLastLine()) {
      if (this.walk(1)) event.preventDefault();
    } else if (event.key !== "Shift") {
      this.completion = null;
    }
  }

  submit() {
    const text = this.input.value;
    if (!text.trim() || !this.send(text)) return;
    if (this.remember(text) && this.history.at(-1) !== text) this.history.push(text);
    if (this.history.length > HISTORY_MAX) this.history.shift();
    this.position = this.history.length;
    this.draft = "";
    this.input.value = "";
    // Emptied by sending, not by typing: those listening to the text (typing notices) are told too.
    this.input.dispatchEvent(new Event("input", { bubbles: true }));
  }

  caretOnFirstLine() {
    return !this.input.value.slice(0, this.input.selectionStart).includes("\n");
  }

  caretOnLastLine() {
    return !this.input.value.slice(this.input.selectionEnd).includes("\n");
  }

  walk(step) {
    const next = this.position + step;
    if (next < 0 || next > this.history.length) return false;
    if (this.position === this.history.length) this.draft = this.input.value;
    this.position = next;
    this.input.value = next === this.history.length ? this.draft : this.history[next];
    const end = this.input.value.length;
    this.input.setSelectionRange(end, end);
    return true;
  }

  complete() {
    const value = this.input.value;
    const caret = this.input.selectionStart;
    if (this.completion === null) {
      const start = value.slice(0, caret).search(/\S+$/);
      if (start < 0) return false;
      const prefix = value.slice(start, caret).toLowerCase();
      const matches = this.names()
        .filter((nick) => nick.toLowerCase().startsWith(prefix))
        .sort((a, b) => a.localeCompare(b, undefined, { sensitivity: "base" }));
      if (matches.length === 0) return false;
      this.completion = { start, end: caret, matches, index: -1 };
    }
    const c = this.completion;
    c.index = (c.index + 1) % c.matches.length;
    // At the start of the line the name is an address ("alice: "), elsewhere a word.
    const word = c.matches[c.index] + (c.start === 0 ? ": " : " ");
    this.input.value = value.slice(0, c.start) + word + value.slice(c.end);
    c.end = c.start + word.length;
    this.input.setSelectionRange(c.end, c.end);
    return true;
  }
}
