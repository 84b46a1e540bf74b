// Replies (IRCv3 +draft/reply=<msgid>): the short quote of the parent a reply shows, and
// the "Replying to …" chip above the message box while the user writes one.

/** A quote of text on one line: its first maxLength characters, whitespace squeezed. */
export function snippet(text, maxLength = 80) {
  const flat = String(text ?? "").replace(/\s+/g, " ").trim();
  const chars = [...flat];
  return chars.length > maxLength ? `${chars.slice(0, maxLength).join("")}…` : flat;
}

/** What a reply's quote of its parent says, from the parent line (null: not loaded here). */
export function parentQuote(parent) {
  if (!parent) return null;
  if (parent.redacted !== null && parent.redacted !== undefined) return { nick: parent.nick, text: parent.redacted };
  return { nick: parent.nick, text: snippet(parent.text) };
}

/**
 * The chip above the message box: "Replying to alice: the start of her line", with a
 * button that cancels it (Escape in the message box does too). It keeps {key, msgid,
 * nick} of the line replied to; the chat reads it when the text is sent.
 */
export class ReplyChip {
  constructor(doc, input) {
    this.chip = doc.getElementById("reply-chip");
    this.text = doc.getElementById("reply-chip-text");
    this.cancel = doc.getElementById("reply-cancel");
    this.input = input;
    this.target = null;
    this.cancel.addEventListener("click", () => {
      this.clear();
      this.input.focus();
    });
  }

  /** Reply to line (of the conversation with key); the message box takes focus. */
  set(key, line) {
    this.target = { key, msgid: line.msgid, nick: line.nick };
    this.text.textContent = `Replying to ${line.nick}: ${snippet(line.text, 60)}`;
    this.chip.hidden = false;
    this.input.setAttribute("aria-describedby", "reply-chip-text");
    this.input.focus();
  }

  clear() {
    this.target = null;
    this.chip.hidden = true;
    this.text.textContent = "";
    this.input.removeAttribute("aria-describedby");
  }

  /** The msgid to reply to when sending to the conversation with key, or null. */
  msgidFor(key) {
    return this.target && this.target.key === key ? this.target.msgid : null;
  }
}
