// Typing notices (IRCv3 +typing client tag, https://ircv3.net/specs/client-tags/typing):
// telling others that we are typing, and showing who is typing in the open conversation.
//
// No DOM and no sockets: TypingSender is given send(target, state) and TypingTracker an
// onChange(key); timers come from setTimeout unless a clock is given (tests, fake timers).
// Timings follow the spec: "active" at most every 3 s while typing, "paused" once the
// user stops for a while with text still in the box, "done" when the text is sent or
// cleared; a notice shown expires after 6 s (active) or 30 s (paused) unless renewed.

export const TYPING = {
  throttleMs: 3000, // at most one "active" per target this often
  pauseMs: 5000, // no keystroke for this long with text in the box: "paused"
  activeExpiryMs: 6000,
  pausedExpiryMs: 30000,
};

/** Whether text in the message box is a message being written (not empty, not a /command). */
function isMessage(text) {
  return text.trim() !== "" && (!text.startsWith("/") || text.startsWith("//") || /^\/me\s/i.test(text));
}

/** What we tell: one target at a time (the conversation the message box writes to). */
export class TypingSender {
  constructor(send, { enabled = () => true, now = () => Date.now(), timers = globalThis } = {}) {
    this.send = send; // send(target, "active" | "paused" | "done")
    this.enabled = enabled;
    this.now = now;
    this.timers = timers;
    this.target = null; // where our latest notice went
    this.state = "done";
    this.lastActive = -Infinity;
    this.pauseTimer = null;
  }

  /** The message box's text changed while writing to target. */
  input(target, text) {
    if (!target || !this.enabled()) {
      this.stop();
      return;
    }
    if (this.target !== null && this.target !== target) this.stop();
    if (!isMessage(text)) {
      this.stop();
      return;
    }
    this.target = target;
    const now = this.now();
    if (this.state !== "active" || now - this.lastActive >= TYPING.throttleMs) {
      this.state = "active";
      this.lastActive = now;
      this.send(target, "active");
    }
    this.timers.clearTimeout(this.pauseTimer);
    this.pauseTimer = this.timers.setTimeout(() => {
      if (this.state !== "active" || this.target !== target) return;
      this.state = "paused";
      this.send(target, "paused");
    }, TYPING.pauseMs);
  }

  /** The text went, was cleared, or we write elsewhere now: "done" if we had said anything. */
  stop() {
    this.timers.clearTimeout(this.pauseTimer);
    this.pauseTimer = null;
    if (this.target !== null && this.state !== "done") this.send(this.target, "done");
    this.state = "done";
    this.target = null;
    this.lastActive = -Infinity;
  }
}

/** Who is typing where: per conversation key, nick -> {state, timer}. */
export class TypingTracker {
  constructor(onChange, { timers = globalThis } = {}) {
    this.onChange = onChange; // onChange(key): who is typing in that conversation changed
    this.timers = timers;
    this.typing = new Map(); // key -> Map(folded nick -> {nick, state, timer})
  }

  /** nick said state ("active" | "paused" | "done") in the conversation with key. */
  set(key, foldedNick, nick, state) {
    const people = this.typing.get(key) ?? new Map();
    const before = people.get(foldedNick);
    if (before) this.timers.clearTimeout(before.timer);
    if (state !== "active" && state !== "paused") {
      if (!before) return;
      people.delete(foldedNick);
    } else {
      const expiry = state === "active" ? TYPING.activeExpiryMs : TYPING.pausedExpiryMs;
      const timer = this.timers.setTimeout(() => this.set(key, foldedNick, nick, "done"), expiry);
      people.set(foldedNick, { nick, state, timer });
      if (before && before.state === state) {
        this.typing.set(key, people);
        return; // the same again: only its expiry moved
      }
    }
    if (people.size) this.typing.set(key, people);
    else this.typing.delete(key);
    this.onChange(key);
  }

  /** Someone's message arrived (or they left): they are not typing any more. */
  clear(key, foldedNick) {
    if (this.typing.get(key)?.has(foldedNick)) this.set(key, foldedNick, "", "done");
  }

  /** "alice is typing…", "alice and bob are typing…", or "" when nobody is. */
  text(key) {
    const nicks = [...(this.typing.get(key)?.values() ?? [])].map((p) => p.nick);
    if (nicks.length === 0) return "";
    if (nicks.length === 1) return `${nicks[0]} is typing…`;
    if (nicks.length === 2) return `${nicks[0]} and ${nicks[1]} are typing…`;
    if (nicks.length === 3) return `${nicks[0]}, ${nicks[1]} and ${nicks[2]} are typing…`;
    return "Several people are typing…";
  }
}
