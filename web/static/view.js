// Everything the page draws but the lines themselves: the open conversation's header,
// the user list, the list of rooms, the status, and the joining form.
//
// It draws from the model (model.js) that chat.js keeps; the log of lines is
// logview.js, one line is render.js. Every piece of user text reaches the DOM as a
// text node; innerHTML is not used anywhere (the page's Trusted Types policy would
// make it throw).

import { fold } from "./irc.js";
import { LogView } from "./logview.js";
import { DEFAULT_PREFIX, rankSymbol } from "./modes.js";
import { NameMenu, ReasonDialog } from "./namemenu.js";
import { el, linkify, nickElement, retime, setClockFormat } from "./render.js";
import { RoomBrowser } from "./roombrowser.js";
import { RoomSettings } from "./roomsettings.js";
import { EmojiPicker } from "./emoji.js";
import { ReplyChip } from "./replies.js";
import { SearchPanel } from "./search.js";

// What a private conversation's header adds about the partner (MONITOR's 730/731).
const PRESENCE = { true: " · online", false: " · offline", null: "" };

// The user list's groups, highest rank first: [title, which ranks belong, what a screen reader hears].
const USER_GROUPS = [
  { id: "ops", title: "Operators", has: (ranks) => ranks.includes("o"), role: "operator" },
  { id: "voiced", title: "Voiced", has: (ranks) => ranks.includes("v"), role: "voiced" },
  { id: "others", title: "Everyone else", has: () => true, role: "" },
];

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
    this.log = new LogView(this.messages);
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
    this.replyChip = new ReplyChip(doc, this.input);
    this.searchPanel = new SearchPanel(doc);
    this.emojiPicker = new EmojiPicker(doc);
    this.typingNote = $("typing");
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
    this.doc.getElementById("search-button").hidden = false;
    this.joinSection.hidden = true;
    this.chat.hidden = false;
    this.input.focus();
  }

  showJoin(name) {
    if (name) this.nameInput.value = name;
    this.doc.getElementById("search-button").hidden = true;
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

  /** Older lines (model lines) above `before` (a model line; null: at the end), without moving what the user is looking at. */
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
    const at = before ? this.log.shown(before) : null;
    const above = at !== null && at.getBoundingClientRect().top < m.getBoundingClientRect().top;
    this.insertNodes(lines, before);
    if (stick) this.scrollToBottom();
    else if (above) m.scrollTop = m.scrollHeight - fromBottom;
  }

  insertNodes(lines, before) {
    // aria-busy: a screen reader shouldn't read a page of old lines out as if they were new.
    this.messages.setAttribute("aria-busy", "true");
    this.log.insert(lines, before);
    this.messages.setAttribute("aria-busy", "false");
  }

  /** The history divider of the open conversation (its state changed). */
  showMarker(buffer) {
    this.log.setMarker(buffer);
  }

  /** The "new since you were last here" divider of the open conversation (where it goes changed). */
  placeDivider(buffer) {
    this.log.placeDivider(buffer);
  }

  /** Add a model line at the end; true when the view followed it (the user was at the bottom). */
  appendLine(line) {
    const stick = this.isNearBottom();
    this.log.append(line);
    if (stick) this.scrollToBottom();
    return stick;
  }

  removeLine(line) {
    this.log.remove(line);
  }

  /** A line's object changed (redacted, a burst grew, ...): it is drawn again where it is. */
  redrawLine(line) {
    this.log.redraw(line);
  }

  /** The clock of every line, now ("12" or "24") and when a buffer is shown later. */
  setClock(clock) {
    setClockFormat(clock);
    retime(this.messages.querySelectorAll("time.time"));
  }

  /** "alice is typing…" under the log of the open conversation ("" when nobody is). */
  setTyping(text) {
    if (this.typingNote.textContent !== text) this.typingNote.textContent = text;
  }

  /** Bring a line into view and give it focus (a screen reader reads it); flash: highlight it briefly. */
  focusLine(line, flash = false) {
    const li = this.log.shown(line);
    if (!li) return;
    li.tabIndex = -1;
    li.scrollIntoView({ block: "center" });
    li.focus({ preventScroll: true });
    if (!flash) return;
    li.classList.remove("flash");
    void li.offsetWidth; // restart the animation when the same line is jumped to again
    li.classList.add("flash");
    li.addEventListener("animationend", () => li.classList.remove("flash"), { once: true });
  }

  showBuffer(buffer, ownNick, away) {
    this.log.context.selfNick = ownNick;
    // aria-busy keeps screen readers from reading the whole history out again.
    this.messages.setAttribute("aria-busy", "true");
    this.log.show(buffer);
    this.messages.setAttribute("aria-busy", "false");
    this.messages.setAttribute("aria-label", `Messages in ${buffer.name}`);
    this.roomTitle.textContent = buffer.name;
    this.setTopic(buffer);
    this.setUsers(buffer, ownNick, away);
    this.input.placeholder = `Message ${buffer.name} — /help for commands`;
    this.input.setAttribute("aria-label", `Message ${buffer.name}`);
    this.scrollToBottom();
  }

  /** No conversation is open (the last one was left): an empty log that says what to do next. */
  showNowhere() {
    this.log.clear();
    this.messages.setAttribute("aria-label", "Messages");
    this.roomTitle.textContent = "No room open";
    this.topic.textContent = "Join one with /join #ROOM, or Browse rooms.";
    this.topic.classList.remove("empty");
    this.users.replaceChildren();
    this.userCount.textContent = "";
    this.userCount.hidden = true;
    this.input.placeholder = "/join #ROOM — /help for commands";
    this.input.setAttribute("aria-label", "Message");
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

  /** Ask for a reason (a kick, a ban); onConfirm(reason) runs unless cancelled; focus then goes back to opener. */
  askReason(title, action, onConfirm, opener = null) {
    this.reasonDialog.ask(title, action, onConfirm, opener);
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
