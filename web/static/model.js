// The page's model of the chat, as plain objects: each conversation (a room or a
// private one) with its lines, its members and their ranks, topic, modes, unread
// counts and where it was last read.
//
// No DOM here: chat.js changes the model, the views (view.js, logview.js) draw from
// it. A line is a plain object; its msgid (and its IRCv3 tags) stay on it so that
// later features (replies, reactions, search results) can find and update one line.

import { fold } from "./irc.js";
import { emptyRoomModes } from "./modes.js";

/** A conversation keeps at most this many lines; older ones can be paged back in from history. */
export const MAX_LINES = 1000;

/**
 * One line of a conversation:
 * {kind, time (Date), nick, text, msgid, tags, self, mention, history, multiline, continued,
 *  churn, events (a burst of comings and goings), redacted (what a deleted message says now),
 *  replyTo (the msgid a reply answers) and parent ({nick, text} of that message, null if not loaded),
 *  reactions ([{emoji, nicks}], reactions.js), groups/tips (the /help card)}.
 */
export function makeLine(fields) {
  return { time: new Date(), nick: "", text: "", tags: {}, ...fields };
}

/** A room or a private conversation ("buffer" in IRC clients), as the page knows it. */
export class Conversation {
  constructor(name, kind) {
    this.key = fold(name);
    this.name = name;
    this.kind = kind; // "room" | "query"
    this.lines = []; // plain line objects (makeLine), oldest first
    this.members = new Map(); // folded nick -> nick
    this.ranks = new Map(); // folded nick -> its rank letters, highest first ("ov", "v"); none: not there
    this.pendingNames = null; // a NAMES reply being received: folded nick -> {nick, ranks}
    this.modes = emptyRoomModes(); // flags, key and limit (324 and MODE lines)
    this.lists = { b: null, q: null }; // bans and quiets: [{mask, by}] once fetched, else null
    this.pendingLists = { b: null, q: null };
    this.topic = "";
    this.unread = 0;
    this.mentions = 0;
    this.seen = new Set(); // msgids, so a history replay after a reconnect shows nothing twice
    this.stale = false;
    this.removed = false; // kicked: the room stays open to read
    this.joinLine = null; // our latest "You joined/rejoined" line: history of that join goes above it
    this.joinTime = null; // the server's time of that JOIN, if it said
    this.marker = null; // the history divider's state once there is history: "more" | "loading" | "beginning"
    this.readMark = null; // {time, msgid} of the newest line read here (kept in readMarks)
    this.since = null; // the mark "new since you were last here" is counted from
    this.newAbove = null; // the line the "new since you were last here" divider is above, or null
    this.online = null; // a private conversation's partner: true/false once MONITOR said, else null
    this.burst = null; // the latest comings-and-goings line (its events: [{kind, nick, text}])
    this.pendingReactions = new Map(); // msgid of a line not loaded yet -> [{emoji, nick, remove}] for it
  }

  /** The msgid of the oldest (or newest) line that has one, or null. */
  edgeMsgid(newest) {
    const lines = newest ? [...this.lines].reverse() : this.lines;
    return lines.find((line) => line.msgid)?.msgid ?? null;
  }

  /** The line with this msgid, or null. */
  findLine(msgid) {
    if (!msgid) return null;
    return this.lines.find((line) => line.msgid === msgid) ?? null;
  }

  /** Add a line at the end; returns the oldest line when that had to go (MAX_LINES), else null. */
  push(line) {
    this.lines.push(line);
    if (this.lines.length <= MAX_LINES) return null;
    const old = this.lines.shift();
    // Gone from the page, so scrolling up may bring it back: it is no longer "shown".
    if (old.msgid) this.seen.delete(old.msgid);
    return old;
  }

  /** Lines said earlier, at index (older pages at 0, a join's replay above its join line). */
  insert(index, lines) {
    this.lines.splice(index, 0, ...lines);
  }

  /** Whether any line of this conversation came from history. */
  get hasHistory() {
    return this.lines.some((line) => line.history);
  }
}
