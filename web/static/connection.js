// The connection to the chat: a WebSocket to the bridge, IRC registration, and reconnects.
//
// Connection is an EventTarget (gamja's shape). It owns the socket and the
// registration dance (CAP, NICK, USER), answers PINGs, remembers which rooms
// it is in, and when the socket drops it tries again with exponential backoff,
// then registers and rejoins those rooms. It knows nothing of the DOM.
//
// Events: "state" {state, attempt, delay}; "message" {msg}; "registered" {nick};
// "nickerror" {code, nick, text} (a name refused before registration);
// "nick" {nick} (our own name changed after registration); "passworderror"
// {retry} (the server wants a password, or a different one).

import { formatMessage, fold, nickOf, parseLine } from "./irc.js";

// batch and draft/chathistory: history comes in batches, and the page pages
// through it (history.js); without them it still shows the join replay.
export const DEFAULT_ROOM = "#lobby";
const AUTO_JOIN_TOKEN = "lobby-auto-join";

// away-notify: who goes away and comes back, in the rooms we share (the user list dims them).
// multi-prefix: NAMES shows every rank (@+alice), so taking one away leaves the other known.
// draft/multiline: a message of several lines goes, and comes, as one (multiline.js).
// draft/message-redaction: a message taken back shows as "message deleted" (chat.js REDACT).
// account-tag: a private line without one is from a guest, whose messages are not kept (signin.js).
export const WANTED_CAPS = [
  "server-time", "message-tags", "echo-message", "batch", "draft/chathistory", "away-notify",
  "multi-prefix", "draft/multiline", "draft/message-redaction", "account-tag",
];
const BACKOFF_FIRST_MS = 1000;
const BACKOFF_MAX_MS = 30000;

export function bridgeUrl(location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

export class Connection extends EventTarget {
  constructor(url, nick) {
    super();
    this.url = url;
    this.nick = nick;
    this.state = "idle"; // idle | connecting | registering | online | reconnecting | closed
    this.registered = false;
    this.everRegistered = false;
    this.caps = new Set();
    this.capValues = new Map(); // cap -> its value in CAP LS ("max-bytes=4096,max-lines=100")
    this.rooms = new Map(); // folded name -> name, for rejoining
    this.attempt = 0;
    this.ws = null;
    this.retryTimer = null;
    this.quitting = false;
    this.lastError = "";
    this.password = null; // only if the server asks for one (464); kept in memory only
    this.needsPassword = false;
  }

  start() {
    this.quitting = false;
    this.needsPassword = false;
    this.open();
  }

  open() {
    clearTimeout(this.retryTimer);
    this.registered = false;
    this.caps = new Set();
    this.capValues = new Map();
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting");
    let ws;
    try {
      ws = new WebSocket(this.url, ["text.ircv3.net"]);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.addEventListener("open", () => {
      if (ws !== this.ws) return;
      this.setState("registering");
      if (this.password) this.send("PASS", this.password);
      this.sendRaw("CAP LS 302");
      this.sendRaw(formatMessage({ command: "NICK", params: [this.nick] }));
      this.sendRaw(formatMessage({ command: "USER", params: ["web", "0", "*", this.nick] }));
    });
    ws.addEventListener("message", (event) => {
      if (ws !== this.ws || typeof event.data !== "string") return;
      let msg;
      try {
        msg = parseLine(event.data);
      } catch {
        return; // an empty or broken line: nothing to act on
      }
      this.handle(msg);
    });
    ws.addEventListener("close", (event) => {
      if (ws !== this.ws) return;
      if (event.reason && !this.registered) this.lastError = event.reason;
      this.ws = null;
      this.registered = false;
      // Without the right password, trying again only repeats the refusal: wait for the user.
      if (this.quitting || this.needsPassword) this.setState("closed");
      else this.scheduleRetry();
    });
  }

  scheduleRetry() {
    // 1 s, 2 s, 4 s ... up to 30 s, with jitter so that a restarted server
    // isn't hit by every browser in the same instant.
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt += 1;
    this.setState("reconnecting", { delay });
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  /** Start over on a fresh socket (new name or password after a refusal). */
  restart() {
    const old = this.ws;
    this.ws = null; // its close event no longer concerns us
    if (old) old.close();
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    this.start();
  }

  /** Try again now (the user pressed "retry"). */
  retryNow() {
    if (this.state === "reconnecting") this.open();
  }

  setState(state, extra = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state, attempt: this.attempt, ...extra } }));
  }

  get isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  sendRaw(line) {
    if (!this.isOpen) return false;
    this.ws.send(line);
    return true;
  }

  /** Send a message object; false when not connected. */
  send(command, ...params) {
    return this.sendRaw(formatMessage({ command, params }));
  }

  /** Send a message with tags ({batch: "id", "draft/multiline-concat": ""}); false when not connected. */
  sendTagged(tags, command, ...params) {
    return this.sendRaw(formatMessage({ tags, command, params }));
  }

  /** Offer another name after a 432/433 during registration. */
  setNick(nick) {
    this.nick = nick;
    this.send("NICK", nick);
  }

  quit(reason = "") {
    this.quitting = true;
    clearTimeout(this.retryTimer);
    this.send("QUIT", ...(reason ? [reason] : []));
    this.setState("closed");
  }

  handle(msg) {
    switch (msg.command) {
      case "PING":
        this.send("PONG", ...msg.params);
        return;
      case "PONG":
        if (msg.params.at(-1) === AUTO_JOIN_TOKEN) {
          // The server has put us in its rooms by now (it answers in order): none, and we open ours.
          if (this.rooms.size === 0) this.send("JOIN", DEFAULT_ROOM);
          return;
        }
        break;
      case "CAP":
        this.handleCap(msg);
        return;
      case "001":
        this.registered = true;
        this.everRegistered = true;
        this.attempt = 0;
        this.nick = msg.params[0] || this.nick;
        this.setState("online");
        this.dispatchEvent(new CustomEvent("registered", { detail: { nick: this.nick } }));
        this.rejoin();
        break;
      case "431":
      case "432":
      case "433":
        if (!this.registered) {
          const [, nick = this.nick, text = ""] = msg.params;
          this.dispatchEvent(new CustomEvent("nickerror", { detail: { code: msg.command, nick, text } }));
          return;
        }
        break;
      case "464":
        if (!this.registered) {
          this.needsPassword = true;
          this.attempt = 0;
          this.dispatchEvent(new CustomEvent("passworderror", { detail: { retry: Boolean(this.password) } }));
          return;
        }
        break;
      case "ERROR":
        this.lastError = msg.params[0] || "";
        break;
      case "JOIN":
        if (fold(nickOf(msg.source)) === fold(this.nick)) this.rooms.set(fold(msg.params[0]), msg.params[0]);
        break;
      case "PART":
        if (fold(nickOf(msg.source)) === fold(this.nick)) this.rooms.delete(fold(msg.params[0]));
        break;
      case "KICK":
        // Removed from a room: a reconnect must not walk back into it.
        if (fold(msg.params[1] ?? "") === fold(this.nick)) this.rooms.delete(fold(msg.params[0]));
        break;
      case "NICK":
        if (fold(nickOf(msg.source)) === fold(this.nick)) {
          this.nick = msg.params[0];
          this.dispatchEvent(new CustomEvent("nick", { detail: { nick: this.nick } }));
        }
        break;
      default:
        break;
    }
    this.dispatchEvent(new CustomEvent("message", { detail: { msg } }));
  }

  handleCap(msg) {
    const sub = (msg.params[1] || "").toUpperCase();
    if (sub === "LS") {
      // CAP LS 302 may come in several lines: "CAP * LS * :caps" until the last.
      const more = msg.params[2] === "*";
      const items = (msg.params[more ? 3 : 2] || "").split(" ").filter(Boolean);
      for (const item of items) {
        const eq = item.indexOf("=");
        if (eq > 0) this.capValues.set(item.slice(0, eq), item.slice(eq + 1));
      }
      const offered = items.map((c) => c.split("=")[0]);
      this.offered = [...(this.offered || []), ...offered];
      if (more) return;
      const wanted = WANTED_CAPS.filter((c) => this.offered.includes(c));
      this.offered = [];
      if (wanted.length) this.send("CAP", "REQ", wanted.join(" "));
      else this.send("CAP", "END");
    } else if (sub === "ACK") {
      for (const cap of (msg.params[2] || "").split(" ")) {
        if (cap.startsWith("-")) this.caps.delete(cap.slice(1));
        else if (cap) this.caps.add(cap);
      }
      if (!this.registered) this.send("CAP", "END");
    } else if (sub === "NAK") {
      if (!this.registered) this.send("CAP", "END");
    }
  }

  rejoin() {
    // The server puts everyone in its auto-join rooms; the others are ours to ask for. A server
    // that puts us nowhere (lobby serve --auto-join "", or another IRC server) still opens #lobby.
    const rooms = [...this.rooms.values()];
    this.rooms.clear();
    if (rooms.length) this.send("JOIN", rooms.join(","));
    else this.send("PING", AUTO_JOIN_TOKEN);
  }
}
