// Signing in on the page, and staying signed in.
//
// The first screen offers three ways in: as a guest (the name form, as before), signing in
// to an account, or making one. Signing in posts the account and password to /api/session,
// which answers with an HttpOnly cookie naming a revocable token (bridge/session.py): the
// page never sees the token, and the bridge tells the chat server who we are when the
// WebSocket opens. So a reload, or a second tab, connects at once as the account, with no
// form, and brings back the rooms this browser was in (kept here, in localStorage) and the
// account's private conversations (CHATHISTORY TARGETS, each with its unread count since
// this browser last read it). Making an account is REGISTER over IRC (before registration
// completes, so a refusal leaves us nowhere), then the same POST for the cookie.
//
// A guest's reload (same tab) rejoins under the same name when it is free.
//
// This module listens to the Connection's events; of Chat it uses buffers, buffer(), isSelf(),
// addLine(), refreshBuffers(), refreshTitle(), setMarker(), history.state() and readMarks.

import { fold, isChannel, nickOf } from "./irc.js";

const API = "/api/session";
const ROOMS_PREFIX = "lobby.rooms";
const JOINED_KEY = "lobby.joined"; // sessionStorage: this tab was in the chat as a guest
export const GUEST_NOTICE = "Messages with guests are not kept after they leave.";
const PASSWORD_MIN = 8;
const PASSWORD_MAX = 300;
// Private conversations restored after a reload, and the lines fetched of each.
const TARGETS_MAX = 50;
const DM_PAGE = 100;
// A name refused while the page takes it back (a reload, before the old connection is gone).
const RETRY_MS = 1000;
const RETRIES = 3;
// Name variants tried when the account's nick is in use (another tab of ours).
const VARIANTS = 3;

const REGISTER_ERRORS = {
  ACCOUNT_EXISTS: "That name is taken: sign in to it, or choose another.",
  BAD_ACCOUNT_NAME: "An account name is a name as on the guest form: letters, digits or _-[]\\`^{}|.",
  WEAK_PASSWORD: `A password has ${PASSWORD_MIN} to ${PASSWORD_MAX} characters.`,
  DISALLOWED: "Accounts are made by the chat's operators here: ask them for one.",
};

/** The rooms this browser was in, per server and name: rejoined after a reload. */
export class RoomMemory {
  constructor(storage, server) {
    this.storage = storage;
    this.server = server;
  }

  key(name) {
    return `${ROOMS_PREFIX} ${this.server} ${fold(name)}`;
  }

  get(name) {
    try {
      const rooms = JSON.parse(this.storage?.getItem(this.key(name)) ?? "[]");
      return Array.isArray(rooms) ? rooms.filter((room) => typeof room === "string" && isChannel(room)) : [];
    } catch {
      return [];
    }
  }

  change(name, room, present) {
    const rooms = this.get(name).filter((r) => fold(r) !== fold(room));
    if (present) rooms.push(room);
    try {
      this.storage?.setItem(this.key(name), JSON.stringify(rooms));
    } catch {
      // not kept for next time
    }
  }
}

function session(storage) {
  return {
    get: (key) => {
      try {
        return storage?.getItem(key) ?? null;
      } catch {
        return null;
      }
    },
    set: (key, value) => {
      try {
        if (value === null) storage?.removeItem(key);
        else storage?.setItem(key, value);
      } catch {
        // storage off: a reload shows the form
      }
    },
  };
}

async function api(method, body = undefined) {
  const options = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined || method !== "GET") {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body ?? {});
  }
  try {
    const response = await fetch(API, options);
    const data = await response.json().catch(() => ({}));
    return { status: response.status, data };
  } catch {
    return { status: 0, data: {} };
  }
}

export class SignIn {
  /**
   * doc: the page; storage: localStorage (or null); tabStorage: sessionStorage (or null);
   * server: location.host; start(nick): connect (main.js), returning the Connection.
   */
  constructor(doc, { storage, tabStorage, server, start, remembered }) {
    const $ = (id) => doc.getElementById(id);
    this.start = start;
    this.remembered = remembered;
    this.rooms = new RoomMemory(storage, server);
    this.tab = session(tabStorage);
    this.account = null; // the account this browser is signed in to
    this.accountsHere = false;
    this.registration = false;
    this.creating = null; // {name, password} while REGISTER is on its way
    this.retries = 0;
    this.variants = 0;
    this.conn = null;
    this.chat = null;
    this.guests = new Set(); // folded nicks known to be guests (no account tag)
    this.noticed = new Set(); // folded conversations that already show the guest notice
    this.asked = new Set(); // folded conversations whose history was asked for, not yet come
    this.collecting = new Map(); // batch id -> {target, lines}: a restored conversation's lines

    this.ways = $("ways");
    this.wayButtons = { guest: $("way-guest"), signin: $("way-signin"), create: $("way-create") };
    this.joinForm = $("join-form");
    this.form = $("account-form");
    this.title = $("account-title");
    this.nameInput = $("account-name");
    this.passwordInput = $("account-password");
    this.hint = $("account-hint");
    this.error = $("account-error");
    this.submit = $("account-submit");
    this.settingsRow = $("account-settings");
    this.settingsState = $("account-state");
    this.signOutButton = $("sign-out");
    this.mode = "guest";

    for (const [mode, button] of Object.entries(this.wayButtons)) {
      button.addEventListener("click", () => this.show(mode));
    }
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    this.signOutButton.addEventListener("click", () => this.signOut());
  }

  /** Ask who this browser is; connect at once if signed in, or as the guest this tab was. */
  async begin() {
    const { status, data } = await api("GET");
    this.accountsHere = Boolean(data.accounts);
    this.registration = Boolean(data.registration);
    this.ways.hidden = !this.accountsHere;
    this.wayButtons.create.hidden = !this.registration;
    // --require-accounts: nobody gets in without signing in, so no guest form to fail on.
    this.guestsWelcome = data.guests !== false;
    this.wayButtons.guest.hidden = !this.guestsWelcome;
    if (!this.guestsWelcome && this.accountsHere && !(status === 200 && data.account)) this.show("signin");
    if (status === 200 && data.account) {
      this.signedIn(data.account);
      this.connect(data.account);
      return;
    }
    const name = this.remembered();
    if (this.tab.get(JOINED_KEY) && name && this.guestsWelcome) this.connect(name);
  }

  /** Show one of the three ways in. */
  show(mode) {
    this.mode = mode;
    for (const [name, button] of Object.entries(this.wayButtons)) {
      button.setAttribute("aria-pressed", String(name === mode));
    }
    this.joinForm.hidden = mode !== "guest";
    this.form.hidden = mode === "guest";
    this.showError("");
    if (mode === "guest") {
      this.joinForm.querySelector("input")?.focus();
      return;
    }
    const creating = mode === "create";
    this.title.textContent = creating ? "Create an account" : "Sign in";
    this.submit.textContent = creating ? "Create account" : "Sign in";
    this.passwordInput.autocomplete = creating ? "new-password" : "current-password";
    this.hint.textContent = creating
      ? `Your account's name is your name in the chat, kept for you alone. A password has ${PASSWORD_MIN} to ${PASSWORD_MAX} characters.`
      : "This browser stays signed in until you sign out (Settings).";
    this.nameInput.focus();
  }

  showError(text) {
    this.error.textContent = text;
    this.error.hidden = !text;
    this.submit.disabled = false;
    if (text) this.passwordInput.focus();
  }

  async send() {
    const name = this.nameInput.value.trim();
    const password = this.passwordInput.value;
    if (!name || !password) {
      this.showError("Please enter the account's name and its password.");
      return;
    }
    if (this.mode === "create" && (password.length < PASSWORD_MIN || password.length > PASSWORD_MAX)) {
      this.showError(REGISTER_ERRORS.WEAK_PASSWORD);
      return;
    }
    this.showError("");
    this.submit.disabled = true;
    if (this.mode === "create") {
      this.creating = { name, password };
      this.connect(name);
      return;
    }
    const { status, data } = await api("POST", { account: name, password });
    if (status === 200) {
      this.passwordInput.value = "";
      this.signedIn(data.account);
      this.connect(data.account);
    } else if (status === 429) {
      this.showError(`Too many wrong passwords: please wait ${Math.ceil(data.retry_after ?? 1)} s and try again.`);
    } else if (status === 401) {
      this.showError("That account name or password is not right.");
    } else {
      this.showError(data.error ? `Couldn't sign in: ${data.error}.` : "Couldn't reach the chat. Please try again.");
    }
  }

  signedIn(account) {
    this.account = account;
    this.settingsRow.hidden = false;
    this.settingsState.textContent = `Signed in as ${account}. This browser stays signed in until you sign out.`;
  }

  /** A new connection: what was asked of the old one will not be answered. */
  reset() {
    this.asked.clear();
    this.collecting.clear();
  }

  async signOut() {
    await api("DELETE");
    this.tab.set(JOINED_KEY, null);
    this.conn?.quit("Signed out");
    window.location.reload(); // back to the first screen, with nothing of the account left in the page
  }

  /** Connect as nick (main.js's start), with the rooms this browser was in. */
  connect(nick) {
    this.retries = 0;
    this.variants = 0;
    const conn = this.start(nick, this.rooms.get(this.account ?? nick));
    if (conn !== this.conn) this.attach(conn);
  }

  attach(conn) {
    this.conn = conn;
    conn.addEventListener("state", (event) => {
      if (event.detail.state === "registering" && this.creating) {
        // Before NICK: a refusal then leaves nobody in the chat under that name.
        conn.send("REGISTER", this.creating.name, "*", this.creating.password);
      }
      if (event.detail.state === "closed" && conn.quitting) this.tab.set(JOINED_KEY, null);
    });
    conn.addEventListener("registered", () => {
      this.reset();
      if (!this.account) this.tab.set(JOINED_KEY, "1");
      // After the rejoin's JOINs (sent right after this event): rooms come first in the list.
      if (this.account) queueMicrotask(() => this.askConversations());
    });
    conn.addEventListener("message", (event) => this.handle(event.detail.msg));
  }

  /** Chat (chat.js) for the connection, set by main.js. */
  setChat(chat) {
    this.chat = chat;
  }

  /**
   * A name refused before registration: true when handled here (main.js shows the form
   * otherwise). Signed in, the account's nick may be held by another tab of ours: a variant.
   * A guest's reload may beat the old connection's goodbye: the same name again, a little later.
   */
  nickRefused(detail) {
    if (this.creating || this.conn?.quitting) return true; // FAIL REGISTER says why
    if (detail.code !== "433") return false;
    if (this.account && this.variants < VARIANTS) {
      this.variants += 1;
      this.conn.setNick(`${this.account}${"_".repeat(this.variants)}`.slice(0, 30));
      return true;
    }
    if (!this.account && this.tab.get(JOINED_KEY) && this.retries < RETRIES) {
      this.retries += 1;
      const conn = this.conn;
      setTimeout(() => {
        if (!conn.registered && conn.isOpen) conn.setNick(detail.nick);
      }, RETRY_MS);
      return true;
    }
    this.tab.set(JOINED_KEY, null);
    return false;
  }

  handle(msg) {
    switch (msg.command) {
      case "REGISTER":
        if (msg.params[0] === "SUCCESS" && this.creating) this.created();
        break;
      case "FAIL":
        if (msg.params[0] === "REGISTER" && this.creating) {
          this.creating = null;
          this.conn.quit("Account not made");
          this.showError(REGISTER_ERRORS[msg.params[1]] ?? msg.params.at(-1) ?? "The account was not made.");
        }
        break;
      case "JOIN":
      case "PART":
      case "KICK":
        this.noteRoom(msg);
        break;
      case "CHATHISTORY":
        if (msg.params[0] === "TARGETS" && msg.params[1]) this.restoreConversation(msg.params[1]);
        break;
      case "BATCH":
        this.batchEnded(msg);
        break;
      case "PRIVMSG":
      case "NOTICE":
        this.privateLine(msg);
        break;
      default:
        break;
    }
  }

  async created() {
    const { name, password } = this.creating;
    this.creating = null;
    this.passwordInput.value = "";
    this.signedIn(name);
    // The connection is signed in already (REGISTER does that); the cookie keeps the browser so.
    const { status } = await api("POST", { account: name, password });
    if (status !== 200) this.settingsState.textContent = `Signed in as ${name} in this tab only (staying signed in failed).`;
  }

  /** Our own JOIN, PART or KICK: the rooms a reload brings back. */
  noteRoom(msg) {
    const me = this.conn.nick;
    const self = msg.command === "KICK" ? fold(msg.params[1] ?? "") === fold(me) : fold(nickOf(msg.source)) === fold(me);
    if (!self || !msg.params[0]) return;
    this.rooms.change(this.account ?? me, msg.params[0], msg.command === "JOIN");
  }

  // -- private conversations ----------------------------------------------------------

  askConversations() {
    const future = new Date(Date.now() + 24 * 3600 * 1000).toISOString();
    this.conn.send("CHATHISTORY", "TARGETS", "timestamp=1970-01-01T00:00:00.000Z", `timestamp=${future}`,
      String(TARGETS_MAX));
  }

  restoreConversation(nick) {
    if (!this.chat || this.chat.isSelf(nick)) return;
    this.asked.add(fold(nick));
    this.chat.buffer(nick, "query");
    this.conn.send("CHATHISTORY", "LATEST", nick, "*", String(DM_PAGE));
  }

  /** The end of a restored conversation's batch (Chat has shown its lines): its unread count. */
  batchEnded(msg) {
    const ref = msg.params[0] ?? "";
    if (ref.startsWith("+")) {
      const target = msg.params[2] ?? "";
      if ((msg.params[1] ?? "").toLowerCase() === "chathistory" && this.asked.has(fold(target))) {
        this.asked.delete(fold(target));
        this.collecting.set(ref.slice(1), { target, lines: [] });
      }
      return;
    }
    const done = this.collecting.get(ref.slice(1));
    if (!done) return;
    this.collecting.delete(ref.slice(1));
    const buffer = this.chat?.buffers.get(fold(done.target));
    if (!buffer) return;
    if (done.lines.length < DM_PAGE) {
      // Less than a page: this is the whole conversation, nothing older to offer.
      this.chat.history.state(buffer.key).atBeginning = true;
      this.chat.setMarker(buffer);
    }
    if (buffer.key === this.chat.activeKey) return;
    const mark = this.chat.readMarks?.get(buffer.key) ?? null;
    const unread = done.lines.filter((line) => !this.chat.isSelf(nickOf(line.source)) &&
      (!mark || (Date.parse(line.tags?.time ?? "") > mark.time && line.tags?.msgid !== mark.msgid))).length;
    buffer.unread = unread;
    buffer.mentions = unread; // a private line is for us, as when it comes live
    this.chat.refreshBuffers();
    this.chat.refreshTitle();
  }

  /** A private line: collected for an unread count, and a guest's conversation says it isn't kept. */
  privateLine(msg) {
    const batch = msg.tags?.batch;
    const collecting = batch ? this.collecting.get(batch) : null;
    if (collecting) {
      collecting.lines.push(msg);
      return;
    }
    const target = msg.params[0] ?? "";
    if (!this.chat || isChannel(target) || batch) return;
    const from = nickOf(msg.source);
    if (!from || from.includes(".")) return; // the server's own notices
    const self = this.chat.isSelf(from);
    const partner = self ? target : from;
    if (!self) {
      if (msg.tags?.account) this.guests.delete(fold(partner));
      else this.guests.add(fold(partner));
    }
    if (this.account && !this.guests.has(fold(partner))) return;
    const buffer = this.chat.buffers.get(fold(partner));
    if (!buffer || buffer.kind !== "query" || this.noticed.has(buffer.key)) return;
    this.noticed.add(buffer.key);
    this.chat.addLine(buffer, { kind: "info", text: GUEST_NOTICE });
  }
}
