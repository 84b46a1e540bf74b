// The chat as the page runs it: its conversations ("buffers", model.js objects) by
// name, which one is open, who is away, and what we asked the server for.
//
// Chat turns messages from the Connection (through handlers.js) into model changes
// and asks the View to draw them; it also gives the /commands their context. It
// holds no sockets and builds no elements: lines are plain objects the views draw.

import { runInput } from "./commands.js";
import { History } from "./history.js";
import {
  TEXT_BYTES,
  actionText,
  fold,
  isChannel,
  isCtcp,
  isUserSource,
  messageTime,
  nickOf,
  splitText,
  stripFormatting,
} from "./irc.js";
import { HANDLERS, newAsked } from "./handlers.js";
import { DEFAULT_CHANMODES, DEFAULT_PREFIX, applyRoomMode, explainRefusal, maskFor, sortRanks } from "./modes.js";
import { Conversation, makeLine } from "./model.js";
import { joinMultiline, multilineBatches, parseMultilineCap } from "./multiline.js";
import { shouldNotify } from "./notify.js";
import { continues } from "./quiet.js";
import { DEFAULTS } from "./settings.js";
import { QUICK_REACTIONS, applyReaction, reactedBy, reactionOf, reactionTags } from "./reactions.js";
import { parentQuote } from "./replies.js";
import { askDelete, deletable } from "./deletion.js";
import { TypingSender, TypingTracker } from "./typing.js";
import { detailLines, emptyWhois, whoisReply } from "./whois.js";
import { firstNewLine, isAfter, markOf, newestMark } from "./lastread.js";

// "\x01ACTION " and the closing "\x01" take this much of a line's text budget.
const ACTION_OVERHEAD = 9;

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export class Chat {
  constructor(conn, view, doc) {
    this.conn = conn;
    this.view = view;
    this.doc = doc;
    this.buffers = new Map();
    this.activeKey = null;
    this.motd = [];
    this.motdShown = false;
    this.mentionPattern = null;
    this.history = new History((command, ...params) => this.conn.send(command, ...params));
    this.away = new Map(); // folded nick -> reason ("" when not known) of those marked away
    this.awayReason = ""; // what we said with our own /away
    this.asked = newAsked();
    this.menuWhois = null; // what the WHOIS for the open name menu has said so far
    this.readMarks = null; // where each room was last read (lastread.js ReadMarks), set by main.js
    this.roomList = null; // the LIST being received for the room browser: [{name, users, topic}]
    this.newBelow = 0; // lines that arrived below the view while the user read further up
    this.prefix = DEFAULT_PREFIX; // PREFIX and CHANMODES from 005
    this.chanmodes = DEFAULT_CHANMODES;
    this.serverOper = false; // OPER succeeded (381, or user mode +o)
    this.account = null; // the account we are signed in to (900): private messages can be deleted then
    this.selfSource = ""; // our nick!user@host, from our own JOIN: bans are matched against it
    this.batchCount = 0; // our own multiline batches, for their references
    this.settingsKey = null; // the room whose settings panel is open
    this.settings = DEFAULTS; // the page's settings (settings.js), set by main.js
    this.notifier = null; // desktop notifications (notify.js), set by main.js
    // Typing notices: ours go out as TAGMSG (unless the settings say not to), others' show under the log.
    this.typingSender = new TypingSender((target, state) => {
      if (this.conn.caps.has("message-tags")) this.conn.sendTagged({ "+typing": state }, "TAGMSG", target);
    }, { enabled: () => this.settings.sendTyping !== false && this.conn.caps.has("message-tags") });
    this.typing = new TypingTracker((key) => {
      if (key === this.activeKey) this.view.setTyping(this.typing.text(key));
    });
    this.pendingJump = null; // {key, msgid}: the message to show once the history around it arrives
    view.onUserPick = (nick, anchor) => this.openNameMenu(nick, anchor);
    view.log.onAction = (action, msgid, button) => this.lineAction(action, msgid, button);
    view.roomSettings.onMode = (room, ...params) => this.commandContext().send("MODE", room, ...params);
    view.roomSettings.onClose = () => {
      this.settingsKey = null;
    };
    this.setNick(conn.nick);
  }

  get nick() {
    return this.conn.nick;
  }

  setNick(nick) {
    // A mention is the nick as a whole word, in any case.
    this.mentionPattern = new RegExp(`(^|[^\\p{L}\\p{N}_])${escapeRegExp(nick)}($|[^\\p{L}\\p{N}_])`, "iu");
  }

  isSelf(nick) {
    return fold(nick) === fold(this.nick);
  }

  // -- buffers -----------------------------------------------------------------

  buffer(name, kind = isChannel(name) ? "room" : "query") {
    const key = fold(name);
    let buffer = this.buffers.get(key);
    if (!buffer) {
      buffer = new Conversation(name, kind);
      this.buffers.set(key, buffer);
      if (this.activeKey === null) this.activeKey = key;
      // MONITOR tells whether the partner is online (730) or not (731), now and later.
      if (kind === "query") this.conn.send("MONITOR", "+", name);
      this.refreshBuffers();
    }
    return buffer;
  }

  get active() {
    return this.activeKey === null ? null : this.buffers.get(this.activeKey) ?? null;
  }

  activate(key) {
    const buffer = this.buffers.get(key);
    if (!buffer) return;
    if (this.active && this.activeKey !== key) this.leaveRead(this.active);
    if (this.activeKey !== key) {
      this.typingSender.stop();
      this.view.replyChip.clear();
    }
    this.activeKey = key;
    buffer.unread = 0;
    buffer.mentions = 0;
    this.view.showBuffer(buffer, this.nick, this.away);
    this.view.setTyping(this.typing.text(buffer.key));
    this.showUsers(buffer); // with its ranks, and the operator tools of this room
    this.setNewBelow(0);
    this.refreshBuffers();
    this.refreshTitle();
    this.markRead(buffer);
  }

  // -- where the user last read a room ----------------------------------------------

  /** Whether the user is reading buffer now: it is open, and the tab is in view. */
  isReading(buffer) {
    return buffer.key === this.activeKey && !this.doc.hidden;
  }

  /** A room's lines changed: the divider goes above its first line said since the user was last here. */
  placeNewDivider(buffer) {
    if (buffer.kind !== "room") return;
    this.loadReadMark(buffer);
    const above = firstNewLine(buffer.lines, buffer.since);
    if (above === buffer.newAbove) return;
    buffer.newAbove = above;
    if (buffer.key === this.activeKey) this.view.placeDivider(buffer);
  }

  /** The room's mark from storage, the first time it is needed. */
  loadReadMark(buffer) {
    if (buffer.readMark === null && buffer.since === null && this.readMarks) {
      buffer.since = buffer.readMark = this.readMarks.get(buffer.key);
    }
  }

  /** A line said now in a room being read, with nothing new above it, is read as it comes. */
  readAsItComes(buffer, line) {
    if (buffer.kind !== "room" || !this.isReading(buffer) || buffer.newAbove) return;
    this.loadReadMark(buffer);
    const mark = markOf(line);
    if (isAfter(mark, buffer.since)) buffer.since = mark;
  }

  /** While the room is read, its newest line is its last-read mark (kept for the next visit). */
  markRead(buffer) {
    // Private conversations have marks too: their unread counts after a reload (signin.js).
    if (!buffer || (buffer.kind !== "room" && buffer.kind !== "query") || !this.isReading(buffer)) return;
    this.placeNewDivider(buffer);
    const newest = newestMark(buffer.lines);
    if (!isAfter(newest, buffer.readMark)) return;
    buffer.readMark = newest;
    if (!buffer.newAbove) buffer.since = newest; // nothing new to point at: later lines are read as they come
    this.readMarks?.set(buffer.key, newest);
  }

  /** The user stops reading a room: what they saw is no longer new, and the divider goes. */
  leaveRead(buffer) {
    if (buffer.kind !== "room") return;
    this.markRead(buffer);
    buffer.since = buffer.readMark;
    buffer.newAbove = null;
    if (buffer.key === this.activeKey) this.view.placeDivider(buffer);
  }

  closeBuffer(key) {
    const closed = this.buffers.get(key);
    this.buffers.delete(key);
    if (closed?.kind === "query") this.conn.send("MONITOR", "-", closed.name);
    if (this.activeKey === key) {
      const next = this.buffers.keys().next();
      this.activeKey = next.done ? null : next.value;
      if (this.active) this.view.showBuffer(this.active, this.nick, this.away);
      else this.view.showNowhere();
      this.setNewBelow(0);
    }
    this.refreshOperatorTools();
    this.refreshBuffers();
  }

  /** Alt+↑/↓: the previous or next conversation in the side list's order (rooms, then private ones), round. */
  stepConversation(offset) {
    const order = [...this.buffers.values()].sort((a, b) => Number(a.kind !== "room") - Number(b.kind !== "room"));
    if (order.length === 0) return false;
    const index = order.findIndex((buffer) => buffer.key === this.activeKey);
    this.activate(order[(index + offset + order.length) % order.length].key);
    return true;
  }

  /** /close and the × button: a private conversation closes here; a room is left (PART). */
  close(name) {
    const buffer = name ? this.buffers.get(fold(name)) : this.active;
    if (!buffer) {
      this.error(name ? `Nothing named ${name} is open.` : "Nothing to close.");
      return;
    }
    if (buffer.kind === "room" && !buffer.removed) {
      if (!this.conn.send("PART", buffer.name)) this.error("Not connected: that wasn't sent.");
      return;
    }
    this.closeBuffer(buffer.key);
    if (this.active) this.view.input.focus();
  }

  refreshBuffers() {
    this.view.setBuffers([...this.buffers.values()], this.activeKey, (key) => this.activate(key),
      (key) => this.close(this.buffers.get(key)?.name));
  }

  /** Redraw the people list if buffer is the one shown (and what an operator may do there). */
  showUsers(buffer) {
    if (!buffer || buffer.key !== this.activeKey) return;
    this.view.setUsers(buffer, this.nick, this.away, this.prefix);
    this.refreshOperatorTools();
  }

  // -- running a room -------------------------------------------------------------------

  /** Whether we may run this room: its operator, or a server operator. */
  isOperator(buffer = this.active) {
    if (this.serverOper) return true;
    return buffer?.kind === "room" && !buffer.removed && (buffer.ranks.get(fold(this.nick)) ?? "").includes("o");
  }

  /** The room settings button (operators only) and the open settings panel follow what changed. */
  refreshOperatorTools() {
    const active = this.active;
    const allowed = Boolean(active && active.kind === "room" && !active.removed && this.isOperator(active));
    this.view.setRoomSettingsAvailable(allowed);
    this.view.log.list.dataset.delete = deletable(this, active); // which lines offer Delete (deletion.js)
    if (this.settingsKey === null) return;
    const shown = this.buffers.get(this.settingsKey);
    if (!shown || !this.isOperator(shown) || shown.removed) this.view.roomSettings.close();
    else this.view.roomSettings.show(shown);
  }

  /** The settings panel of the open room: its modes and bans, fetched afresh. */
  openRoomSettings() {
    const buffer = this.active;
    if (!buffer || buffer.kind !== "room" || !this.isOperator(buffer)) return;
    this.settingsKey = buffer.key;
    this.askQuietly(`${buffer.key} modes`);
    this.askQuietly(`${buffer.key} b`);
    this.conn.send("MODE", buffer.name);
    this.conn.send("MODE", buffer.name, "b");
    this.view.roomSettings.open(buffer);
  }

  /** A MODE query whose answer only feeds the model (key: "<room> modes" or "<room> b"). */
  askQuietly(key) {
    this.asked.quiet.set(key, (this.asked.quiet.get(key) ?? 0) + 1);
  }

  /** Whether the answer for key was asked quietly (nobody typed it): then it is not told. */
  answeredQuietly(key) {
    const told = this.asked.loud.delete(key);
    const quiet = this.asked.quiet.get(key) ?? 0;
    if (quiet > 1) this.asked.quiet.set(key, quiet - 1);
    else this.asked.quiet.delete(key);
    return quiet > 0 && !told;
  }

  /** The people menu of a name in the list: talk to them, and for operators run the room. */
  openNameMenu(nick, anchor) {
    this.view.nameMenu.open(anchor, nick, this.nameMenuItems(this.active, nick));
    if (!this.view.nameMenu.isOpen) return; // the name's second press closed it
    // Its details come from a WHOIS, asked quietly: the replies fill the menu, not the log.
    this.menuWhois = null;
    if (this.conn.send("WHOIS", nick)) {
      this.asked.whois.add(fold(nick));
      this.menuWhois = emptyWhois(nick);
    }
  }

  /** A WHOIS reply about the name whose menu is open: kept for its details. */
  whoisReply(msg) {
    const about = this.menuWhois;
    if (!about || fold(msg.params[1] ?? "") !== fold(about.nick)) return;
    this.menuWhois = whoisReply(about, msg.command, msg.params, this.prefix);
  }

  /** The end of a WHOIS: the open menu of that name shows what it said. */
  whoisEnd(nick) {
    const about = this.menuWhois;
    if (!about || fold(nick) !== fold(about.nick)) return;
    this.menuWhois = null;
    const myRooms = [...this.buffers.values()].filter((b) => b.kind === "room").map((b) => b.name);
    this.view.nameMenu.showDetails(about.nick, detailLines(about, myRooms, fold));
  }

  /** What the name menu offers for nick in buffer, as [{label, run}]. */
  nameMenuItems(buffer, nick) {
    const items = [];
    const self = this.isSelf(nick);
    const ctx = this.commandContext();
    if (!self) {
      items.push({ label: "Send a private message", run: () => {
        ctx.openQuery(nick);
        this.view.input.focus();
      } });
    }
    items.push({ label: "Mention", run: () => this.view.mention(nick) });
    if (!buffer || buffer.kind !== "room" || !this.isOperator(buffer)) return items;
    const room = buffer.name;
    const ranks = buffer.ranks.get(fold(nick)) ?? "";
    const muted = (buffer.lists.q ?? []).some((entry) => fold(entry.mask) === fold(maskFor(nick)));
    items.push(
      ranks.includes("o")
        ? { label: "Remove operator", run: () => ctx.send("MODE", room, "-o", nick) }
        : { label: "Make operator", run: () => ctx.send("MODE", room, "+o", nick) },
      ranks.includes("v")
        ? { label: "Remove voice", run: () => ctx.send("MODE", room, "-v", nick) }
        : { label: "Give voice", run: () => ctx.send("MODE", room, "+v", nick) },
      muted
        ? { label: "Unmute", run: () => ctx.send("MODE", room, "-q", maskFor(nick)) }
        : { label: "Mute", run: () => ctx.send("MODE", room, "+q", maskFor(nick)) },
    );
    if (self) return items;
    items.push(
      { label: "Kick…", run: (opener) => this.view.askReason(`Remove ${nick} from ${room}`, "Kick", (reason) => {
        ctx.send("KICK", room, nick, ...(reason ? [reason] : []));
      }, opener) },
      { label: "Ban…", run: (opener) => this.view.askReason(`Ban ${nick} from ${room}`, "Ban", (reason) => {
        ctx.send("MODE", room, "+b", maskFor(nick));
        ctx.send("KICK", room, nick, ...(reason ? [reason] : []));
      }, opener) },
    );
    return items;
  }

  /** One MODE change on a room, in the model: ranks, lists, or flags. */
  applyChange(buffer, change) {
    const { add, mode, arg } = change;
    if (this.prefix.modes.includes(mode)) {
      if (!arg) return;
      const key = fold(arg);
      const now = buffer.ranks.get(key) ?? "";
      const next = sortRanks(add ? now + mode : now.replace(mode, ""), this.prefix);
      if (next) buffer.ranks.set(key, next);
      else buffer.ranks.delete(key);
    } else if (mode === "b" || mode === "q") {
      const list = buffer.lists[mode];
      if (list === null || !arg) return;
      const rest = list.filter((entry) => fold(entry.mask) !== fold(arg));
      buffer.lists[mode] = add ? [...rest, { mask: arg, by: "" }] : rest;
    } else {
      applyRoomMode(buffer.modes, change, this.chanmodes);
    }
  }

  /** Redraw the people list if the one shown has nick in it (a query counts its partner). */
  showUsersWith(nick) {
    const active = this.active;
    if (!active) return;
    if (active.kind === "room" ? active.members.has(fold(nick)) : active.key === fold(nick) || this.isSelf(nick)) {
      this.showUsers(active);
    }
  }

  refreshTitle() {
    if (!this.doc.hidden) {
      const active = this.active;
      if (active) {
        active.unread = 0;
        active.mentions = 0;
      }
    }
    let unread = 0;
    let mentions = 0;
    for (const buffer of this.buffers.values()) {
      unread += buffer.unread;
      mentions += buffer.mentions;
    }
    this.view.setTitle(this.doc.hidden ? unread : 0, this.doc.hidden ? mentions : 0);
  }

  onVisibilityChange() {
    if (this.active && this.doc.hidden) this.leaveRead(this.active);
    else this.markRead(this.active);
    this.refreshBuffers();
    this.refreshTitle();
  }

  /** Add a line to a buffer (the open one when none is named); count it as unread if unseen. */
  addLine(buffer, line, { countsAsUnread = false } = {}) {
    const target = buffer ?? this.active;
    const full = makeLine(line);
    const prev = target?.lines.at(-1);
    if (prev && !prev.history && !full.history && prev.kind === "message") full.continued = continues(prev, full);
    this.addElement(target, full, { countsAsUnread, mention: line.mention });
  }

  /** The line of buffer with this msgid, or null: what replies, reactions and redactions point at. */
  findLine(buffer, msgid) {
    return buffer?.findLine(msgid) ?? null;
  }

  /** Change a line of buffer (fields as in model.js makeLine) and draw it again if it is shown. */
  updateLine(buffer, line, fields) {
    Object.assign(line, fields);
    this.redrawLine(buffer, line);
  }

  /** A line's object changed: drawn anew where it is shown (a conversation not open draws it when opened). */
  redrawLine(buffer, line) {
    this.view.redrawLine(line);
  }

  /**
   * A join, part, quit or nick change ({kind, nick}, told as text). One that follows
   * another with nothing said between them joins its line: "3 joined, 2 left".
   */
  addChurn(buffer, event, text, time) {
    const burst = buffer.burst;
    if (burst && buffer.lines.at(-1) === burst) {
      burst.events.push({ ...event, text });
      this.redrawLine(buffer, burst);
      return;
    }
    this.addLine(buffer, { kind: "event", time, text, churn: true, events: [{ ...event, text }] });
    buffer.burst = buffer.lines.at(-1);
  }

  /** Add a model line (or the help card) to a buffer; see addLine. */
  addElement(buffer, line, { countsAsUnread = false, mention = false } = {}) {
    buffer = buffer ?? this.active;
    if (!buffer) {
      this.view.appendLine(line); // in no room: an error or /help is still shown, in the empty log
      return;
    }
    if (line.msgid) this.linkLines(buffer, [line], []);
    const old = buffer.push(line);
    if (old) {
      if (buffer.key === this.activeKey) this.view.removeLine(old);
      if (old.msgid) {
        // Scrolling up may bring it back from history.
        this.history.forgotOldest(buffer.key);
        this.setMarker(buffer);
      }
    }
    const visible = buffer.key === this.activeKey;
    const followed = visible ? this.view.appendLine(line) : true;
    if (countsAsUnread && !followed) this.setNewBelow(this.newBelow + 1);
    this.readAsItComes(buffer, line);
    this.placeNewDivider(buffer);
    this.markRead(buffer);
    if (countsAsUnread && (!visible || this.doc.hidden)) {
      buffer.unread += 1;
      // A private line is for us: its badge stands out like a mention's (the line itself doesn't).
      if (mention || buffer.kind === "query") buffer.mentions += 1;
      this.refreshBuffers();
      this.refreshTitle();
    }
  }

  info(text) {
    this.addLine(null, { kind: "info", text });
  }

  /** A line in a room if it is open, else where the user is. */
  tell(room, kind, text) {
    const buffer = this.buffers.get(fold(room ?? "")) ?? null;
    this.addLine(buffer, { kind, text }, { countsAsUnread: kind === "error" });
  }

  /** The "N new messages — jump to latest" pill below the log. */
  setNewBelow(count) {
    this.newBelow = count;
    this.view.setJump(count);
  }

  jumpToLatest() {
    this.view.scrollToBottom();
    this.setNewBelow(0);
    this.view.messages.focus();
  }

  error(text) {
    this.addLine(null, { kind: "error", text });
  }

  // -- what the user types --------------------------------------------------------

  commandContext() {
    const chat = this;
    return {
      get target() {
        return chat.active?.name ?? null;
      },
      send: (command, ...params) => {
        if (!this.conn.send(command, ...params)) this.error("Not connected: that wasn't sent.");
      },
      say: (target, text) => this.sendText(target, text, false),
      act: (target, text) => this.sendText(target, text, true),
      openQuery: (nick) => this.activate(this.buffer(nick, "query").key),
      switchTo: (name) => {
        const buffer = this.buffers.get(fold(name));
        if (!buffer) return false;
        this.activate(buffer.key);
        return true;
      },
      quit: (reason) => {
        this.conn.quit(reason || "Leaving");
        this.info("You left the chat.");
        this.view.showJoin(this.nick); // ready to come back, as the same name
      },
      join: (room, key) => this.joinRoom(room, key),
      close: (name) => this.close(name),
      browseRooms: (filter) => this.browseRooms(filter),
      askTopic: (room) => {
        this.asked.topic.add(fold(room));
        if (!this.conn.send("TOPIC", room)) this.error("Not connected: that wasn't sent.");
      },
      setAway: (reason) => {
        this.awayReason = reason;
        if (!this.conn.send("AWAY", ...(reason ? [reason] : []))) this.error("Not connected: that wasn't sent.");
      },
      get isOperator() {
        return chat.isOperator();
      },
      askModes: (room) => {
        this.asked.loud.add(`${fold(room)} modes`);
        if (!this.conn.send("MODE", room)) this.error("Not connected: that wasn't sent.");
      },
      askList: (room, mode) => {
        this.asked.loud.add(`${fold(room)} ${mode}`);
        if (!this.conn.send("MODE", room, mode)) this.error("Not connected: that wasn't sent.");
      },
      help: (groups, tips) => this.addElement(null, makeLine({ kind: "help", groups, tips })),
      search: (query) => this.openSearch(query),
      info: (text) => this.info(text),
      error: (text) => this.error(text),
    };
  }

  /** Join a room, noting that we asked (a room that turns out empty was just made). */
  joinRoom(room, key = "") {
    const buffer = this.buffers.get(fold(room));
    if (buffer && buffer.kind === "room" && !buffer.stale) {
      this.activate(buffer.key);
      return;
    }
    this.asked.create.add(fold(room));
    if (!this.conn.send("JOIN", room, ...(key ? [key] : []))) this.error("Not connected: that wasn't sent.");
  }

  /** Open the room browser and ask the server for the list of rooms. */
  browseRooms(filter = "") {
    this.view.roomBrowser.open(filter);
    if (this.roomList !== null) return; // a LIST is on its way already
    if (this.conn.send("LIST")) this.roomList = [];
    else this.view.roomBrowser.show([], true);
  }

  /**
   * Run what the user typed; several lines are several messages. Returns false
   * when nothing could be sent (offline), so that the text can stay in the box.
   */
  submit(text) {
    const lines = text.split(/\r?\n/).filter((line) => line.trim());
    const local = lines.length === 1 && /^\/(help|quit|exit)\b/i.test(lines[0]);
    if (!local && !this.conn.registered) {
      this.error("Not connected right now: your text is kept, send it again once back online.");
      return false;
    }
    // Whatever could not be sent (no room yet, an unknown command) stays in the box.
    if (lines.length === 1) return runInput(this.commandContext(), lines[0]);
    return this.sendLines(this.active?.name, text.split(/\r?\n/));
  }

  /**
   * Several lines as one message: a draft/multiline batch (or a few, within the
   * server's limits) when the server takes them, else one PRIVMSG per line.
   * False when there is nowhere to send them.
   */
  sendLines(target, lines) {
    if (!target) {
      this.error("Join a room first: /join #ROOM");
      return false;
    }
    const caps = this.conn.caps;
    if (!caps.has("draft/multiline") || !caps.has("batch")) {
      for (const line of lines.filter((l) => l.trim())) this.sendText(target, line, false);
      return true;
    }
    // Blank lines at either end say nothing; those inside are kept (a paragraph break).
    const first = lines.findIndex((l) => l.trim());
    const last = lines.findLastIndex((l) => l.trim());
    const kept = lines.slice(first, last + 1);
    for (const batch of multilineBatches(kept, parseMultilineCap(this.conn.capValues.get("draft/multiline")))) {
      this.batchCount += 1;
      const ref = `lobby${this.batchCount}`;
      const reply = this.takeReply(target);
      this.conn.sendTagged(reply ? { "+draft/reply": reply } : {}, "BATCH", `+${ref}`, "draft/multiline", target);
      for (const { text, concat } of batch) {
        const tags = concat ? { batch: ref, "draft/multiline-concat": "" } : { batch: ref };
        this.conn.sendTagged(tags, "PRIVMSG", target, text);
      }
      this.conn.send("BATCH", `-${ref}`);
      if (!caps.has("echo-message")) {
        this.showMessage(this.buffer(target), this.nick, joinMultiline(batch), new Date(), "message", true, undefined,
          reply ? { "+draft/reply": reply } : {});
      }
    }
    this.typingSender.stop();
    return true;
  }

  sendText(target, text, action) {
    if (!target) {
      this.error("Join a room first: /join #ROOM");
      return;
    }
    if (!this.conn.isOpen || !this.conn.registered) {
      this.error("Not connected: that wasn't sent.");
      return;
    }
    // Long text goes as several PRIVMSGs, each within the line limit, split on
    // UTF-8 character boundaries (and at spaces where possible).
    // A reply (the chip above the message box) tags the first piece: +draft/reply=<msgid>.
    let reply = this.takeReply(target);
    for (const piece of splitText(text, action ? TEXT_BYTES - ACTION_OVERHEAD : TEXT_BYTES)) {
      const body = action ? `\x01ACTION ${piece}\x01` : piece;
      const tags = reply ? { "+draft/reply": reply } : {};
      reply = null;
      this.conn.sendTagged(tags, "PRIVMSG", target, body);
      if (!this.conn.caps.has("echo-message")) {
        // Without echo-message the server won't send our own line back: show it now.
        this.showMessage(this.buffer(target), this.nick, body, new Date(), "message", true, undefined, tags);
      }
    }
    this.typingSender.stop();
  }

  /** The msgid the chip above the message box replies to, if it is for target (the chip goes). */
  takeReply(target) {
    const msgid = this.conn.caps.has("message-tags") ? this.view.replyChip.msgidFor(fold(target)) : null;
    if (msgid) this.view.replyChip.clear();
    return msgid;
  }

  // -- what the server says ---------------------------------------------------------

  handle(msg) {
    // Lines of a batch wait for its end; history batches then go where they belong.
    if (msg.command === "BATCH") {
      const batch = this.history.batches.handle(msg);
      if (batch) this.finishBatch(batch);
      return;
    }
    if (msg.tags?.batch && this.history.batches.add(msg)) return;
    if (msg.command === "PONG" && this.history.pong(msg.params.at(-1))) {
      // A join's history is all here now; a room too short to scroll loads older lines by itself,
      // and so does one the user already scrolled to the top of (that scroll came too early to count).
      if (!this.view.canScroll() || this.view.isNearTop()) this.loadOlder();
      return;
    }
    if (msg.command === "FAIL" && msg.params[0] === "SEARCH") {
      this.view.searchPanel.error(msg.params.at(-1));
      return;
    }
    if (msg.command === "FAIL" && msg.params[0] === "TAGMSG") {
      this.error(`Your reaction wasn't taken: ${msg.params.at(-1)}`);
      return;
    }
    if (msg.command === "FAIL" && msg.params[0] === "REDACT") {
      this.error(`The message wasn't deleted: ${msg.params.at(-1)}`);
      return;
    }
    if (msg.command === "FAIL" && msg.params[0] === "CHATHISTORY") {
      this.applyHistory(this.history.failed());
      return;
    }
    const handler = HANDLERS[msg.command];
    if (handler) handler(this, msg);
    else if (/^[45]\d\d$/.test(msg.command) || msg.command === "696") this.showNumericError(msg);
    // Anything else (CAP, numerics we don't show, commands from the future)
    // is ignored on purpose: the page must not choke on what it doesn't know.
  }

  // -- history ------------------------------------------------------------------------

  finishBatch(batch) {
    if (batch.type === "draft/multiline") {
      this.showMultiline(batch);
      return;
    }
    if (batch.type === "draft/search") {
      this.showSearchResults(batch.messages);
      return;
    }
    if (batch.type !== "chathistory" && batch.type !== "draft/chathistory") {
      // Other kinds (netsplits and the like) are ordinary lines, grouped.
      for (const msg of batch.messages) this.handle(msg);
      return;
    }
    const room = batch.params[0] ?? "";
    const buffer = this.buffers.get(fold(room));
    if (!buffer) return; // a private conversation's only when asked for (signin.js): guests' are never kept
    this.applyHistory(this.history.batch(buffer.key, buffer.name, batch.messages));
  }

  /** A draft/multiline batch as one message with its line breaks (the opening line has its msgid and time). */
  showMultiline(batch) {
    const lines = batch.messages.filter((m) => m.command === "PRIVMSG" || m.command === "NOTICE");
    if (lines.length === 0) return;
    const parts = lines.map((m) => ({ text: m.params[1] ?? "", concat: "draft/multiline-concat" in m.tags }));
    const target = batch.params[0] ?? lines[0].params[0];
    HANDLERS.NOTICE(this, {
      tags: { ...lines[0].tags, ...batch.tags },
      source: batch.source ?? lines[0].source,
      command: lines[0].command,
      params: [target, joinMultiline(parts)],
    }, lines[0].command === "NOTICE" ? "notice" : "message");
  }

  /** Put the lines of a History action in their buffer, above what they precede. */
  applyHistory(action) {
    if (!action) return;
    const buffer = this.buffers.get(fold(action.room));
    if (!buffer) return;
    const lines = [];
    const reactions = [];
    let overlap = false; // an "around" page that meets lines already shown (no gap between them)
    for (const msg of action.messages) {
      if (msg.command === "TAGMSG") {
        reactions.push(msg); // replayed reactions go on their lines once those are in place
        continue;
      }
      if (msg.tags?.msgid && buffer.seen.has(msg.tags.msgid)) overlap = true;
      const line = this.historyLine(buffer, msg);
      if (line) lines.push(line);
    }
    if (action.kind === "around") {
      this.placeAround(buffer, action, lines, reactions, overlap);
      return;
    }
    // Older pages go on top; a join's replay and what a reconnect missed go just
    // above that join's "You joined" line, so everything reads in the order said.
    let index = action.kind === "older" ? 0 : buffer.lines.indexOf(buffer.joinLine);
    if (index < 0) index = buffer.lines.length;
    const before = buffer.lines[index] ?? null;
    buffer.insert(index, lines);
    this.linkLines(buffer, lines, reactions);
    if (lines.length || action.kind !== "missed") this.setMarker(buffer);
    if (buffer.key !== this.activeKey) this.placeNewDivider(buffer);
    if (buffer.key !== this.activeKey) return;
    if (lines.length) {
      if (action.kind === "older") this.view.prependLines(lines, before);
      else this.view.insertLines(lines, before);
    }
    // A page that doesn't fill the view can't be scrolled up: fetch the next at once.
    // (Not after a failure: asking again at once would only fail again.)
    if (action.kind !== "missed" && !action.failed && !this.view.canScroll()) this.loadOlder(buffer);
    this.markRead(buffer);
  }

  /** A stored line as a dimmed history line, or null (already shown, or nothing to show). */
  historyLine(buffer, msg) {
    const msgid = msg.tags?.msgid;
    if (msgid) {
      if (buffer.seen.has(msgid)) return null;
      buffer.seen.add(msgid);
    }
    const nick = nickOf(msg.source);
    const time = messageTime(msg);
    const base = {
      time, nick, msgid, tags: msg.tags ?? {}, history: true, self: isUserSource(msg.source) && this.isSelf(nick),
      replyTo: msg.tags?.["+draft/reply"] ?? null, parent: null,
    };
    const text = msg.params[1] ?? "";
    if (msg.command === "TOPIC") {
      // An old topic change is told, not applied: the room's topic is what 332 said.
      const topic = stripFormatting(text);
      return makeLine({ ...base, kind: "event", text: topic ? `${nick} set the topic: ${topic}` : `${nick} cleared the topic` });
    }
    if (msg.command !== "PRIVMSG" && msg.command !== "NOTICE") return null;
    const action = actionText(text);
    if (action === null && isCtcp(text)) return null;
    const kind = action !== null ? "action" : msg.command === "NOTICE" ? "notice" : "message";
    // No mention highlight and no unread count: it was said before, not now.
    return makeLine({ ...base, kind, text: stripFormatting(action ?? text) });
  }

  /** The divider above the history: more to load, loading, or the very beginning. */
  setMarker(buffer) {
    if (!buffer.marker && !buffer.hasHistory && !this.history.isAtBeginning(buffer.key)) {
      return; // no history shown yet: no divider either
    }
    buffer.marker = this.history.isLoadingOlder(buffer.key) ? "loading"
      : this.history.isAtBeginning(buffer.key) ? "beginning" : "more";
    if (buffer.key === this.activeKey) this.view.showMarker(buffer);
  }

  /** Ask for the page before the oldest line of a room, if there may be one. */
  loadOlder(buffer = this.active) {
    if (!buffer) return; // a room, or a private conversation whose history was asked for
    if (this.history.loadOlder(buffer.key, buffer.name, buffer.edgeMsgid(false))) this.setMarker(buffer);
  }

  /** The user scrolled: at the top of a room, older lines load. */
  onScroll() {
    if (this.view.isNearTop()) this.loadOlder();
    if (this.newBelow && this.view.isNearBottom()) this.setNewBelow(0);
  }

  showNumericError(msg) {
    const sentence = explainRefusal(msg);
    if (sentence) {
      // In the room it is about, when that room is open here.
      const room = msg.params.slice(1, -1).find((p) => isChannel(p));
      this.tell(room, "error", sentence);
      return;
    }
    const text = msg.params.at(-1) ?? msg.command;
    const subject = msg.params.length > 2 ? msg.params[1] : "";
    this.error(subject ? `${subject}: ${text}` : text);
  }

  showMessage(buffer, nick, rawText, time, kind, self, msgid = undefined, tags = {}) {
    const action = actionText(rawText);
    if (action === null && isCtcp(rawText)) return; // CTCP requests: nothing to show
    // A multiline message keeps its line breaks; each line loses its formatting codes.
    const text = (action ?? rawText).split("\n").map(stripFormatting).join("\n");
    // In a private conversation every line is for us: none is highlighted as a mention.
    const mention = !self && buffer.kind === "room" && this.mentionPattern.test(text);
    // What we say ourselves brings the view down to it, past anything we hadn't scrolled to.
    if (self && buffer.key === this.activeKey && this.newBelow) {
      this.view.scrollToBottom();
      this.setNewBelow(0);
    }
    // Their line is here: they are not typing it any more.
    this.typing.clear(buffer.key, fold(nick));
    const replyTo = tags["+draft/reply"] ?? null;
    const parent = replyTo ? parentQuote(buffer.findLine(replyTo)) : null;
    this.addLine(
      buffer,
      { kind: action !== null ? "action" : kind, time, nick, text, self, mention, msgid, tags, multiline: text.includes("\n"),
        replyTo, parent },
      { countsAsUnread: !self },
    );
    if (!self && this.notifier && shouldNotify({ settings: this.settings, hidden: this.doc.hidden, buffer, mention })) {
      this.notifier.show({
        title: buffer.kind === "query" ? `${nick} (private message)` : `${nick} in ${buffer.name}`,
        body: action !== null ? `* ${nick} ${text}` : text,
        tag: buffer.key,
        onClick: () => this.activate(buffer.key),
      });
    }
  }

  onRegistered(nick) {
    this.setNick(nick);
    // History paging needs batches and msgids as well as CHATHISTORY itself.
    const caps = this.conn.caps;
    this.history.reset(["batch", "draft/chathistory", "message-tags", "server-time"].every((c) => caps.has(c)));
    this.asked = newAsked();
    this.typingSender.stop();
    this.serverOper = false;
    this.roomList = null; // a LIST in flight died with the old connection
    this.away.clear();
    this.awayReason = "";
    const partners = [...this.buffers.values()].filter((b) => b.kind === "query").map((b) => b.name);
    if (partners.length) this.conn.send("MONITOR", "+", partners.join(","));
    this.refreshBuffers();
  }

  onDisconnected() {
    this.account = null; // said again (900) by the next connection
    for (const buffer of this.buffers.values()) {
      if (buffer.kind === "room") buffer.stale = true;
    }
    this.showUsers(this.active);
  }

  /** Names that Tab can complete in the open buffer: everyone there but us. */
  completionNames() {
    const buffer = this.active;
    if (!buffer) return [];
    const names = buffer.kind === "room" ? [...buffer.members.values()] : [buffer.name];
    return names.filter((nick) => !this.isSelf(nick));
  }

  /** MONITOR said whether a conversation's partner is online; a change is told in it. */
  setOnline(query, online, { quiet = false } = {}) {
    const before = query.online;
    if (before === online) return;
    query.online = online;
    if (before !== null && !quiet) {
      this.addLine(query, { kind: "event", text: online ? `→ ${query.name} is online` : `← ${query.name} is offline` });
    }
    this.refreshBuffers();
    if (query.key === this.activeKey) {
      this.view.setTopic(query);
      this.showUsers(query);
    }
  }

  // -- replies, reactions, typing and search -------------------------------------

  /**
   * New lines of buffer (in place in the model, not drawn yet) meet what points at them:
   * replies among them find their parents, replies already shown find them among the
   * new lines, reactions waiting for them (and those in reactions, TAGMSGs) attach.
   */
  linkLines(buffer, lines, reactions) {
    const added = new Map(lines.filter((line) => line.msgid).map((line) => [line.msgid, line]));
    for (const line of lines) {
      if (line.replyTo && !line.parent) line.parent = parentQuote(added.get(line.replyTo) ?? buffer.findLine(line.replyTo));
      const waiting = line.msgid ? buffer.pendingReactions.get(line.msgid) : null;
      if (waiting) {
        buffer.pendingReactions.delete(line.msgid);
        for (const r of waiting) applyReaction(line, r.emoji, r.nick, r.remove);
      }
    }
    if (added.size) {
      for (const line of buffer.lines) {
        if (line.replyTo && !line.parent && added.has(line.replyTo)) {
          this.updateLine(buffer, line, { parent: parentQuote(added.get(line.replyTo)) });
        }
      }
    }
    for (const msg of reactions) this.reactionArrived(buffer, msg);
  }

  /** A TAGMSG with +draft/react (or +draft/unreact) for a line of buffer, live or from history. */
  reactionArrived(buffer, msg) {
    const reaction = reactionOf(msg.tags);
    if (!reaction) return;
    const msgid = msg.tags.msgid;
    if (msgid) {
      if (buffer.seen.has(msgid)) return; // a replay of one already counted
      buffer.seen.add(msgid);
    }
    const nick = nickOf(msg.source);
    const line = buffer.findLine(reaction.reply);
    if (line) {
      if (applyReaction(line, reaction.emoji, nick, reaction.remove)) this.redrawLine(buffer, line);
      return;
    }
    // Its message is not loaded (yet): kept for when it is (older pages, a jump), within reason.
    if (buffer.pendingReactions.size >= 2000) return;
    const waiting = buffer.pendingReactions.get(reaction.reply) ?? [];
    waiting.push({ emoji: reaction.emoji, nick, remove: reaction.remove });
    buffer.pendingReactions.set(reaction.reply, waiting);
  }

  /** A line changed (redacted): the replies quoting it quote it afresh. */
  requote(buffer, parent) {
    for (const line of buffer.lines) {
      if (line.replyTo && line.replyTo === parent.msgid) this.updateLine(buffer, line, { parent: parentQuote(parent) });
    }
  }

  /** Send our reaction to the line msgid of buffer (or take it back). */
  react(buffer, msgid, emoji, remove = false) {
    if (!this.conn.caps.has("message-tags")) {
      this.error("This server doesn't take reactions.");
      return;
    }
    if (!this.conn.sendTagged(reactionTags(msgid, emoji, remove), "TAGMSG", buffer.name)) {
      this.error("Not connected: that wasn't sent.");
      return;
    }
    const line = buffer.findLine(msgid);
    // Without echo-message our own TAGMSG won't come back: count it now.
    if (line && !this.conn.caps.has("echo-message") && applyReaction(line, emoji, this.nick, remove)) {
      this.redrawLine(buffer, line);
    }
  }

  /** A button of a line of the open conversation: Reply, React, its reply quote, or a reaction chip. */
  lineAction(action, msgid, button) {
    const buffer = this.active;
    if (!buffer) return;
    if (action === "jump") {
      this.jumpTo(buffer, button.dataset.target);
      return;
    }
    const line = buffer.findLine(msgid);
    if (!line) return;
    if (action === "reply") {
      this.view.replyChip.set(buffer.key, line);
    } else if (action === "react") {
      this.view.emojiPicker.open(button, QUICK_REACTIONS, (emoji) => {
        const mine = (line.reactions ?? []).find((r) => r.emoji === emoji);
        if (!mine || !reactedBy(mine, this.nick)) this.react(buffer, msgid, emoji);
        this.view.focusLine(line);
      }, `React to ${line.nick}’s message`);
    } else if (action === "toggle-reaction") {
      const emoji = button.dataset.emoji;
      const entry = (line.reactions ?? []).find((r) => r.emoji === emoji);
      this.react(buffer, msgid, emoji, Boolean(entry && reactedBy(entry, this.nick)));
    } else if (action === "delete") {
      askDelete(this, buffer, line, button);
    }
  }

  /**
   * Show the message msgid of buffer: scrolled to, highlighted and focused. One not
   * loaded is fetched with the lines around it (CHATHISTORY AROUND) and shown then.
   */
  jumpTo(buffer, msgid) {
    if (!msgid) return;
    if (buffer.key !== this.activeKey) this.activate(buffer.key);
    const line = buffer.findLine(msgid);
    if (line) {
      this.view.focusLine(line, true);
      return;
    }
    if (this.history.loadAround(buffer.key, buffer.name, msgid)) {
      this.pendingJump = { key: buffer.key, msgid };
      this.view.setTyping("Loading the original message…");
      return;
    }
    this.error("That message is not in the history this page can load.");
  }

  /** The lines around a message the user jumps to, placed by their time among those shown. */
  placeAround(buffer, action, lines, reactions, overlap) {
    const jump = this.pendingJump?.key === buffer.key && this.pendingJump.msgid === action.msgid;
    if (jump) this.pendingJump = null;
    if (buffer.key === this.activeKey) this.view.setTyping(this.typing.text(buffer.key));
    if (lines.length) {
      const first = lines[0].time.getTime();
      let index = buffer.lines.findIndex((line) => line.time.getTime() > first);
      if (index < 0) index = buffer.lines.length;
      // Lines between this page and the next ones shown are not loaded: say so between them.
      const gap = !overlap && index < buffer.lines.length
        ? [makeLine({ kind: "event", time: lines.at(-1).time, text: "· · · messages in between not loaded · · ·" })] : [];
      buffer.insert(index, [...lines, ...gap]);
      this.linkLines(buffer, lines, reactions);
      if (index === 0) this.setMarker(buffer);
      if (buffer.key === this.activeKey) this.view.showBuffer(buffer, this.nick, this.away);
    } else {
      for (const msg of reactions) this.reactionArrived(buffer, msg);
    }
    if (!jump) return;
    const line = buffer.findLine(action.msgid);
    if (line && buffer.key === this.activeKey) this.view.focusLine(line, true);
    else if (!line) this.tell(buffer.name, "error", "That message could not be loaded: it may have been deleted.");
  }

  /** The message box changed: a typing notice to the open conversation, as throttled. */
  typingInput(text) {
    const buffer = this.active;
    this.typingSender.input(buffer && !buffer.removed ? buffer.name : null, text);
  }

  /** TAGMSG +typing from someone in buffer. */
  typingArrived(buffer, nick, state) {
    if (this.isSelf(nick)) return;
    this.typing.set(buffer.key, fold(nick), nick, state);
  }

  /** Open the search panel, running query if given (/search words). */
  openSearch(query = "", opener = null) {
    this.view.searchPanel.open(query, opener);
  }

  /** Send a search (SEARCH <query>); false when offline. */
  search(query) {
    return this.conn.registered && this.conn.send("SEARCH", query);
  }

  /** A draft/search batch: its messages as results {room, nick, time, text, msgid, action}. */
  showSearchResults(messages) {
    const results = [];
    for (const msg of messages) {
      if (msg.command !== "PRIVMSG" && msg.command !== "NOTICE") continue;
      const raw = msg.params[1] ?? "";
      const action = actionText(raw);
      if (action === null && isCtcp(raw)) continue;
      // A private message comes as it was said: to us from the partner, or by us to them.
      const target = msg.params[0] ?? "";
      results.push({
        room: this.isSelf(target) ? nickOf(msg.source) : target, nick: nickOf(msg.source), time: messageTime(msg), msgid: msg.tags?.msgid ?? null,
        text: stripFormatting(action ?? raw).replace(/\s+/g, " "), action: action !== null,
      });
    }
    this.view.searchPanel.show(results);
  }

  /** A search result was chosen: its room opens at that message. */
  openResult(result) {
    // A private conversation opens again if it was closed; a room needs joining first.
    const buffer = isChannel(result.room) ? this.buffers.get(fold(result.room)) : this.buffer(result.room, "query");
    if (!buffer) {
      this.error(`You are not in ${result.room} any more: /join ${result.room} first.`);
      return;
    }
    if (!result.msgid) {
      this.activate(buffer.key);
      return;
    }
    this.jumpTo(buffer, result.msgid);
  }

  roomsWith(nick) {
    return [...this.buffers.values()].filter((b) => b.kind === "room" && b.members.has(fold(nick)));
  }
}

