// What each IRC line from the server means for the page: one handler per command,
// each receiving the Chat (chat.js) and the parsed message. Handlers change the model
// (model.js, through the chat) and let the chat ask the views to draw it.

import { fold, isChannel, isUserSource, messageTime, nickOf, stripFormatting } from "./irc.js";
import {
  applyRoomMode,
  describeChange,
  emptyRoomModes,
  maskMatches,
  parseModeChanges,
  parseNamesWord,
  readIsupport,
} from "./modes.js";

// The WHOX token of the quiet WHO after our JOIN that tells who is away already.
const AWAY_WHO_TOKEN = "152";
// At most this many WHOIS per room to learn the reasons of those already away.
const AWAY_REASONS_MAX = 20;

/**
 * What we asked the server for, so that its answers are told or kept quiet: create, topic,
 * who and whois as before; quiet (with counts) and loud hold "<room> modes" and "<room> b|q" (a 324,
 * a ban or mute list) fetched for the settings panel (quiet) or typed as /mode (told).
 */
export function newAsked() {
  return { create: new Set(), topic: new Set(), who: new Map(), whois: new Set(), quiet: new Map(), loud: new Set() };
}

/** "bob!*@* (by alice)" for a ban or mute list entry. */
function listEntryText({ mask, by }) {
  return by ? `${mask} (set by ${nickOf(by)})` : mask;
}

const LIST_WORDS = { b: ["Banned", "Nobody is banned from"], q: ["Muted", "Nobody is muted in"] };

// One handler per command; each receives the chat and the parsed message.
export const HANDLERS = {
  "001"(chat, msg) {
    chat.onRegistered(msg.params[0]);
  },

  "005"(chat, msg) {
    const found = readIsupport(msg.params);
    if (found.prefix) chat.prefix = found.prefix;
    if (found.chanmodes) chat.chanmodes = found.chanmodes;
  },

  "372"(chat, msg) {
    chat.motd.push((msg.params.at(-1) ?? "").replace(/^- ?/, ""));
  },

  "422"() {},

  JOIN(chat, msg) {
    const nick = nickOf(msg.source);
    const buffer = chat.buffer(msg.params[0], "room");
    if (chat.isSelf(nick)) {
      buffer.name = msg.params[0];
      buffer.members.clear();
      buffer.ranks.clear();
      buffer.modes = emptyRoomModes();
      buffer.lists = { b: null, q: null };
      buffer.stale = false;
      buffer.removed = false;
      chat.selfSource = msg.source ?? chat.selfSource;
      // The room's flags, key and limit are fetched when its settings panel opens (324), and
      // followed from MODE lines while it is open: a JOIN asks nothing more than history.
      const first = buffer.lines.length === 0;
      // Where what we have ends, taken before anything of this join arrives: the
      // newest line with a msgid, else the server's time of our previous JOIN.
      const newestMsgid = buffer.edgeMsgid(true);
      const since = newestMsgid ? `msgid=${newestMsgid}` : buffer.joinTime ? `timestamp=${buffer.joinTime}` : null;
      buffer.joinTime = msg.tags.time ?? null;
      chat.addLine(buffer, { kind: "event", time: messageTime(msg), text: first ? `You joined ${buffer.name}` : `You rejoined ${buffer.name}` });
      buffer.joinLine = buffer.lines.at(-1);
      chat.history.joined(buffer.key, buffer.name, { rejoin: !first, since });
      // Who is away already: a quiet WHOX (flags H here, G gone); away-notify tells the rest
      // (without it the page would not hear of changes, so it doesn't ask at all).
      if (chat.conn.caps.has("away-notify") && chat.conn.send("WHO", buffer.name, `%tnf,${AWAY_WHO_TOKEN}`)) {
        chat.asked.who.set(buffer.key, (chat.asked.who.get(buffer.key) ?? 0) + 1);
      }
      if (!chat.motdShown && chat.motd.length) {
        chat.motdShown = true;
        for (const line of chat.motd) chat.addLine(buffer, { kind: "info", text: line });
      }
      // A room joined for the first time opens; a rejoin after a reconnect
      // leaves the user where they were.
      if (first) chat.activate(buffer.key);
    } else {
      chat.addChurn(buffer, { kind: "join", nick }, `→ ${nick} joined`, messageTime(msg));
    }
    buffer.members.set(fold(nick), nick);
    chat.showUsers(buffer);
  },

  PART(chat, msg) {
    const nick = nickOf(msg.source);
    const buffer = chat.buffers.get(fold(msg.params[0]));
    if (!buffer) return;
    if (chat.isSelf(nick)) {
      chat.closeBuffer(buffer.key);
      chat.info(`You left ${buffer.name}`);
      return;
    }
    buffer.members.delete(fold(nick));
    buffer.ranks.delete(fold(nick));
    const reason = msg.params[1] ? ` (${stripFormatting(msg.params[1])})` : "";
    chat.addChurn(buffer, { kind: "part", nick }, `← ${nick} left${reason}`, messageTime(msg));
    chat.showUsers(buffer);
  },

  QUIT(chat, msg) {
    const nick = nickOf(msg.source);
    const reason = msg.params[0] ? ` (${stripFormatting(msg.params[0])})` : "";
    for (const buffer of chat.roomsWith(nick)) {
      buffer.members.delete(fold(nick));
      buffer.ranks.delete(fold(nick));
      chat.addChurn(buffer, { kind: "quit", nick }, `← ${nick} quit${reason}`, messageTime(msg));
      chat.showUsers(buffer);
    }
    chat.away.delete(fold(nick));
    const query = chat.buffers.get(fold(nick));
    if (query && query.kind === "query") {
      // The conversation stays open and readable; its partner is offline now.
      chat.addLine(query, { kind: "event", time: messageTime(msg), text: `← ${nick} quit${reason}` });
      chat.setOnline(query, false, { quiet: true });
    }
  },

  NICK(chat, msg) {
    const old = nickOf(msg.source);
    const nick = msg.params[0];
    const self = fold(old) === fold(chat.conn.nick) || fold(nick) === fold(chat.conn.nick);
    if (self) {
      chat.setNick(chat.conn.nick);
      const at = chat.selfSource.indexOf("!");
      if (at > 0) chat.selfSource = nick + chat.selfSource.slice(at); // bans match the new name
    }
    const text = self ? `You are now known as ${nick}` : `${old} is now known as ${nick}`;
    const told = new Set();
    for (const buffer of chat.roomsWith(old)) {
      buffer.members.delete(fold(old));
      buffer.members.set(fold(nick), nick);
      const ranks = buffer.ranks.get(fold(old));
      buffer.ranks.delete(fold(old));
      if (ranks) buffer.ranks.set(fold(nick), ranks);
      if (self) chat.addLine(buffer, { kind: "event", time: messageTime(msg), text });
      else chat.addChurn(buffer, { kind: "nick", nick }, text, messageTime(msg));
      told.add(buffer.key);
    }
    if (chat.away.has(fold(old))) {
      const reason = chat.away.get(fold(old));
      chat.away.delete(fold(old));
      chat.away.set(fold(nick), reason);
    }
    const query = chat.buffers.get(fold(old));
    if (query && query.kind === "query") {
      chat.buffers.delete(query.key);
      query.name = nick;
      query.key = fold(nick);
      chat.buffers.set(query.key, query);
      if (chat.activeKey === fold(old)) chat.activeKey = query.key;
      chat.addLine(query, { kind: "event", time: messageTime(msg), text });
      chat.conn.send("MONITOR", "-", old);
      chat.conn.send("MONITOR", "+", nick);
      if (query.key === chat.activeKey) chat.view.showBuffer(query, chat.nick, chat.away);
    }
    if (self && told.size === 0) chat.info(text);
    chat.showUsers(chat.active);
    chat.refreshBuffers();
  },

  PRIVMSG(chat, msg) {
    HANDLERS.NOTICE(chat, msg, "message");
  },

  NOTICE(chat, msg, kind = "notice") {
    const [target, text = ""] = msg.params;
    const nick = nickOf(msg.source);
    if (!isUserSource(msg.source)) {
      // From the server itself (or before registration): show it where the user is.
      if (chat.active) chat.addLine(null, { kind: "info", time: messageTime(msg), text: stripFormatting(text) });
      return;
    }
    const self = chat.isSelf(nick);
    let buffer;
    if (isChannel(target)) buffer = chat.buffer(target, "room");
    else if (self) {
      // The echo of our own private message: it goes where we wrote it. If that conversation was
      // closed meanwhile (the echo was still on its way), it stays closed.
      buffer = chat.buffers.get(fold(target));
      if (!buffer || buffer.kind !== "query") return;
    } else buffer = chat.buffer(nick, "query");
    const msgid = msg.tags.msgid;
    if (msgid) {
      if (buffer.seen.has(msgid)) return;
      buffer.seen.add(msgid);
    }
    chat.showMessage(buffer, nick, text, messageTime(msg), kind, self, msgid, msg.tags);
  },

  // draft/message-redaction: a message taken back. Its line stays, saying so, so that replies
  // and the conversation around it still read in order.
  REDACT(chat, msg) {
    const [target, msgid] = msg.params;
    // A private one: the conversation with its author, or (our own, echoed back) with its target.
    const self = chat.isSelf(nickOf(msg.source));
    const buffer = chat.buffers.get(fold(isChannel(target) || self ? target : nickOf(msg.source)));
    const line = buffer?.findLine(msgid);
    if (!line) return;
    chat.updateLine(buffer, line, { redacted: self ? "You deleted this message" : "message deleted" });
    chat.requote(buffer, line);
  },

  // A message with tags and no text: a reaction (+draft/react, +draft/unreact) or a typing notice (+typing).
  TAGMSG(chat, msg) {
    const target = msg.params[0] ?? "";
    const nick = nickOf(msg.source);
    if (!isUserSource(msg.source)) return;
    const self = chat.isSelf(nick);
    // A room's, or a private conversation's: the other person's name (ours, when it is our own echo).
    const key = fold(isChannel(target) ? target : self ? target : nick);
    const buffer = chat.buffers.get(key);
    if (!buffer) return; // a typing notice or a reaction doesn't open a conversation
    const typing = msg.tags["+typing"];
    if (typing) chat.typingArrived(buffer, nick, typing);
    chat.reactionArrived(buffer, msg);
  },

  TOPIC(chat, msg) {
    const buffer = chat.buffers.get(fold(msg.params[0]));
    if (!buffer) return;
    // Topic changes are stored too: a reconnect's catch-up must not tell this one again.
    if (msg.tags.msgid) buffer.seen.add(msg.tags.msgid);
    buffer.topic = stripFormatting(msg.params[1] ?? "");
    const nick = nickOf(msg.source);
    const text = buffer.topic ? `${nick} set the topic: ${buffer.topic}` : `${nick} cleared the topic`;
    chat.addLine(buffer, { kind: "event", time: messageTime(msg), text });
    if (buffer.key === chat.activeKey) chat.view.setTopic(buffer);
  },

  "331"(chat, msg) {
    const buffer = chat.buffers.get(fold(msg.params[1]));
    if (!buffer) return;
    if (chat.asked.topic.delete(buffer.key)) chat.addLine(buffer, { kind: "info", text: `No topic is set in ${buffer.name}.` });
    buffer.topic = "";
    if (buffer.key === chat.activeKey) chat.view.setTopic(buffer);
  },

  "332"(chat, msg) {
    const buffer = chat.buffers.get(fold(msg.params[1]));
    if (!buffer) {
      chat.info(`Topic of ${msg.params[1]}: ${stripFormatting(msg.params[2] ?? "")}`);
      return;
    }
    buffer.topic = stripFormatting(msg.params[2] ?? "");
    // Shown in the room's header; a line as well would repeat it on every join (but /topic asked).
    if (chat.asked.topic.delete(buffer.key)) chat.addLine(buffer, { kind: "info", text: `Topic of ${buffer.name}: ${buffer.topic}` });
    if (buffer.key === chat.activeKey) chat.view.setTopic(buffer);
  },

  "353"(chat, msg) {
    const buffer = chat.buffers.get(fold(msg.params[2]));
    if (!buffer) return;
    buffer.pendingNames = buffer.pendingNames ?? new Map();
    for (const word of (msg.params[3] ?? "").split(" ")) {
      const member = parseNamesWord(word, chat.prefix);
      if (member.nick) buffer.pendingNames.set(fold(member.nick), member);
    }
  },

  "366"(chat, msg) {
    const buffer = chat.buffers.get(fold(msg.params[1]));
    if (!buffer || !buffer.pendingNames) return;
    buffer.members = new Map([...buffer.pendingNames].map(([key, m]) => [key, m.nick]));
    buffer.ranks = new Map([...buffer.pendingNames].filter(([, m]) => m.ranks).map(([key, m]) => [key, m.ranks]));
    buffer.pendingNames = null;
    buffer.stale = false;
    // A room we asked for where we are alone was just made (rooms vanish when empty).
    if (chat.asked.create.delete(buffer.key) && buffer.members.size === 1 && buffer.members.has(fold(chat.nick))) {
      chat.addLine(buffer, { kind: "info", text: `You created ${buffer.name}: it is new, and you are its only member.` });
    }
    chat.showUsers(buffer);
  },

  "352"(chat, msg) {
    // 352 <me> <channel> <user> <host> <server> <nick> <flags> :<hops> <realname>
    const [, , user, host, , nick, flags = "", last = ""] = msg.params;
    const realname = last.replace(/^\d+ /, "");
    const away = flags.startsWith("G") ? " (away)" : "";
    chat.info(`${nick}${away} — ${user}@${host}${realname ? ` — ${realname}` : ""}`);
  },

  "315"(chat, msg) {
    const key = fold(msg.params[1] ?? "");
    const quiet = chat.asked.who.get(key) ?? 0;
    if (quiet > 0) {
      // The end of our own WHO after joining: ask the reasons of those away, quietly too.
      if (quiet === 1) chat.asked.who.delete(key);
      else chat.asked.who.set(key, quiet - 1);
      const room = chat.buffers.get(key);
      const unknown = [...(room?.members.keys() ?? [])].filter((n) => chat.away.get(n) === "" && !chat.asked.whois.has(n));
      for (const nick of unknown.slice(0, AWAY_REASONS_MAX)) {
        if (chat.conn.send("WHOIS", room.members.get(nick))) chat.asked.whois.add(nick);
      }
      chat.showUsers(room);
      return;
    }
    chat.info(`End of the list for ${msg.params[1]}.`);
  },

  "354"(chat, msg) {
    // WHOX: 354 <me> <token> <nick> <flags>, for our quiet WHO only.
    const [, token, nick, flags = ""] = msg.params;
    if (token !== AWAY_WHO_TOKEN || !nick) return;
    if (flags.startsWith("G")) {
      if (!chat.away.has(fold(nick))) chat.away.set(fold(nick), "");
    } else {
      chat.away.delete(fold(nick));
    }
  },

  "311"(chat, msg) {
    chat.whoisReply(msg);
  },

  "317"(chat, msg) {
    chat.whoisReply(msg);
  },

  "319"(chat, msg) {
    chat.whoisReply(msg);
  },

  "301"(chat, msg) {
    const [, nick = "", reason = ""] = msg.params;
    chat.whoisReply(msg);
    chat.away.set(fold(nick), stripFormatting(reason));
    chat.showUsersWith(nick);
    if (chat.asked.whois.has(fold(nick))) return; // our quiet WHOIS for the reason
    chat.info(`${nick} is away: ${reason}`);
  },

  "318"(chat, msg) {
    chat.asked.whois.delete(fold(msg.params[1] ?? ""));
    chat.whoisEnd(msg.params[1] ?? "");
  },

  AWAY(chat, msg) {
    // away-notify: someone we share a room with went away (with a reason) or came back.
    const nick = nickOf(msg.source);
    const reason = msg.params[0];
    if (reason) chat.away.set(fold(nick), stripFormatting(reason));
    else chat.away.delete(fold(nick));
    chat.showUsersWith(nick);
  },

  "305"(chat) {
    chat.away.delete(fold(chat.nick));
    chat.info("You are back: no longer marked as away.");
    chat.showUsersWith(chat.nick);
  },

  "306"(chat) {
    chat.away.set(fold(chat.nick), chat.awayReason);
    chat.info(chat.awayReason ? `You are marked as away: ${chat.awayReason}. /back when you return.` :
      "You are marked as away. /back when you return.");
    chat.showUsersWith(chat.nick);
  },

  "730"(chat, msg) {
    // MONITOR: these are online (nick!user@host, comma-separated).
    for (const target of (msg.params[1] ?? "").split(",")) {
      const query = chat.buffers.get(fold(nickOf(target)));
      if (query?.kind === "query") chat.setOnline(query, true);
    }
  },

  "731"(chat, msg) {
    for (const target of (msg.params[1] ?? "").split(",")) {
      const query = chat.buffers.get(fold(nickOf(target)));
      if (query?.kind === "query") chat.setOnline(query, false);
    }
  },

  "321"(chat) {
    if (chat.roomList !== null) chat.roomList = [];
  },

  "322"(chat, msg) {
    // 322 <me> <room> <members> :<topic>
    if (chat.roomList === null) return;
    const [, name = "", users = "0", topic = ""] = msg.params;
    chat.roomList.push({ name, users: Number(users) || 0, topic: stripFormatting(topic) });
  },

  "323"(chat) {
    if (chat.roomList === null) return;
    chat.view.roomBrowser.show(chat.roomList, true);
    chat.roomList = null;
  },

  MODE(chat, msg) {
    const [target = "", modestring = "", ...args] = msg.params;
    if (!isChannel(target)) {
      // Our own user modes: +o is a server operator (after OPER), -o no longer.
      if (!chat.isSelf(target)) return;
      let add = true;
      for (const mode of modestring) {
        if (mode === "+" || mode === "-") add = mode === "+";
        else if (mode === "o") chat.serverOper = add;
      }
      chat.showUsers(chat.active);
      return;
    }
    const buffer = chat.buffers.get(fold(target));
    if (!buffer) return;
    if (msg.tags.msgid) buffer.seen.add(msg.tags.msgid);
    const actor = nickOf(msg.source);
    for (const change of parseModeChanges(modestring, args, chat.prefix, chat.chanmodes)) {
      chat.applyChange(buffer, change);
      const banned = change.mode === "b" && change.add && change.arg && !chat.isSelf(actor) &&
        maskMatches(change.arg, chat.selfSource || `${chat.nick}!*@*`);
      chat.addLine(buffer, banned
        ? { kind: "error", time: messageTime(msg), text: `You are banned from ${buffer.name} by ${actor}` }
        : { kind: "event", time: messageTime(msg), text: describeChange(actor, change, chat.nick) },
      { countsAsUnread: banned });
    }
    chat.showUsers(buffer);
  },

  "324"(chat, msg) {
    // 324 <me> <room> <modes> [args...]: flags, key and limit (ranks and lists come otherwise).
    const [, room = "", modestring = "", ...args] = msg.params;
    const buffer = chat.buffers.get(fold(room));
    const key = `${fold(room)} modes`;
    if (buffer) {
      buffer.modes = emptyRoomModes();
      for (const change of parseModeChanges(modestring, args, chat.prefix, chat.chanmodes)) {
        applyRoomMode(buffer.modes, change, chat.chanmodes);
      }
      chat.showUsers(buffer);
    }
    if (chat.answeredQuietly(key)) return;
    chat.tell(room, "info", `Modes of ${room}: ${[modestring, ...args].join(" ")}`);
  },

  "329"() {}, // when the room was made: nothing to show

  "367"(chat, msg) {
    HANDLERS["728"](chat, { ...msg, params: [msg.params[0], msg.params[1], "b", ...msg.params.slice(2)] });
  },

  "368"(chat, msg) {
    HANDLERS["729"](chat, { ...msg, params: [msg.params[0], msg.params[1], "b", ...msg.params.slice(2)] });
  },

  "728"(chat, msg) {
    // 728 <me> <room> q <mask> [<who> <when>] (367 is the same without the "b")
    const [, room = "", mode = "q", mask = "", by = ""] = msg.params;
    const buffer = chat.buffers.get(fold(room));
    if (!buffer || !mask) return;
    buffer.pendingLists[mode] = [...(buffer.pendingLists[mode] ?? []), { mask, by }];
  },

  "729"(chat, msg) {
    const [, room = "", mode = "q"] = msg.params;
    const buffer = chat.buffers.get(fold(room));
    const entries = buffer?.pendingLists[mode] ?? [];
    if (buffer) {
      buffer.lists[mode] = entries;
      buffer.pendingLists[mode] = null;
      chat.showUsers(buffer);
    }
    const key = `${fold(room)} ${mode}`;
    if (chat.answeredQuietly(key)) return;
    const [title, none] = LIST_WORDS[mode] ?? LIST_WORDS.b;
    if (entries.length === 0) chat.tell(room, "info", `${none} ${room}.`);
    else chat.tell(room, "info", `${title} in ${room}: ${entries.map(listEntryText).join(", ")}`);
  },

  KICK(chat, msg) {
    const [room = "", nick = "", reason = ""] = msg.params;
    const buffer = chat.buffers.get(fold(room));
    if (!buffer) return;
    const actor = nickOf(msg.source);
    // Without a reason the server gives the kicker's name: nothing worth repeating.
    const why = reason && fold(reason) !== fold(actor) ? `: ${stripFormatting(reason)}` : "";
    buffer.members.delete(fold(nick));
    buffer.ranks.delete(fold(nick));
    if (chat.isSelf(nick)) {
      // The room stays open to read, dimmed; /join (or the room list) goes back if allowed.
      buffer.removed = true;
      buffer.stale = true;
      chat.addLine(buffer, { kind: "error", time: messageTime(msg), text: `You were removed from ${buffer.name} by ${actor}${why}` },
        { countsAsUnread: true });
    } else {
      const subject = chat.isSelf(actor) ? "You" : actor;
      chat.addLine(buffer, { kind: "event", time: messageTime(msg), text: `${subject} removed ${nick}${why}` });
    }
    chat.showUsers(buffer);
  },

  INVITE(chat, msg) {
    const [nick = "", room = ""] = msg.params;
    const actor = nickOf(msg.source);
    if (chat.isSelf(nick)) chat.info(`${actor} invites you to ${room}: /join ${room}`);
    else chat.tell(room, "event", `${actor} invited ${nick}`); // invite-notify
  },

  "341"(chat, msg) {
    const [, nick = "", room = ""] = msg.params;
    chat.tell(room, "info", `You invited ${nick} to ${room}.`);
  },

  // RPL_LOGGEDIN: signed in to an account (SASL, or the page's sign-in through the bridge).
  "900"(chat, msg) {
    chat.account = msg.params[2] || null;
    chat.refreshOperatorTools();
  },

  "381"(chat) {
    chat.serverOper = true;
    chat.info("You are now a server operator: you may run every room.");
    chat.showUsers(chat.active);
  },

  ERROR(chat, msg) {
    chat.error(msg.params[0] ?? "The server closed the connection");
  },
};
