// Room history for the page: collecting batches, and the CHATHISTORY paging that
// loads older lines and fills the gap a reconnect leaves.
//
// No DOM and no sockets: History is told what happens (our JOIN, a PONG, a
// finished batch, a FAIL) and answers with what the chat should do with the
// lines; it sends its requests through the send function it is given. Chat
// (chat.js) puts the lines where they belong and view.js draws them.
//
// Telling the answers apart: a client that negotiates draft/chathistory gets no
// replay on join from the server (it would double what such clients fetch), so
// right after our JOIN we ask for the latest lines ourselves, then send a PING:
// the server handles lines in order, so every batch for that room before its
// PONG is that first page (shown like a replay), and every one after it answers
// our other requests, in the order we sent them. A line said while we join may
// come both live and in that page; Chat shows a msgid once.

export const OLDER_PAGE = 50;
// The lines shown on joining a room.
export const JOIN_PAGE = 50;
export const CATCH_UP_PAGE = 100;
// The lines fetched around a message the user jumps to (a reply's parent, a search result).
export const AROUND_PAGE = 50;
// A reconnect after a very long absence stops catching up here (and keeps the
// replay of the latest lines) rather than pulling a whole day into the page.
export const MAX_CATCH_UP_PAGES = 20;
const SYNC_PREFIX = "lobby-history-";

/** The batches being received: lines tagged batch=ID are kept until "BATCH -ID". */
export class Batches {
  constructor() {
    this.open = new Map(); // id -> {type, params, messages}
  }

  /** A BATCH line: "+id type params..." opens one; "-id" closes it and returns it (else null). */
  handle(msg) {
    const ref = msg.params[0] ?? "";
    const id = ref.slice(1);
    if (ref.startsWith("+") && id) {
      // The opening line's tags and source matter to some kinds (a multiline message's msgid and sender).
      this.open.set(id, {
        type: (msg.params[1] ?? "").toLowerCase(), params: msg.params.slice(2), messages: [],
        tags: msg.tags ?? {}, source: msg.source ?? null,
      });
      return null;
    }
    if (ref.startsWith("-")) {
      const batch = this.open.get(id) ?? null;
      this.open.delete(id);
      return batch;
    }
    return null;
  }

  /** Keep a line that belongs to an open batch; false when it belongs to none (handle it now). */
  add(msg) {
    const batch = this.open.get(msg.tags?.batch);
    if (!batch) return false;
    batch.messages.push(msg);
    return true;
  }

  clear() {
    this.open.clear();
  }
}

/** A CHATHISTORY request as IRC parameters. */
export function chathistoryParams(sub, target, ref, limit) {
  return ["CHATHISTORY", sub, target, ref, String(limit)];
}

class RoomState {
  constructor() {
    this.syncToken = null; // set from our JOIN until its PONG: batches meanwhile are the join replay
    this.catchingUp = false; // a reconnect's AFTER pages are on their way
    this.catchUpPages = 0;
    this.heldReplay = null; // the join replay, kept aside while catching up
    this.loadingOlder = false;
    this.atBeginning = false;
  }
}

/**
 * What the page asks the server for, and what each answer means.
 *
 * Every method that takes a batch or a FAIL returns an action for Chat, or null:
 * {kind: "replay" | "older" | "missed", room, messages, beginning?}
 *  - replay: the join replay (show above our "You joined" line);
 *  - older: a page before the oldest line shown (show at the top);
 *  - missed: lines said while we were away (show above "You rejoined");
 *  - around: the lines around a message the user wants to see (msgid), wherever they fall.
 */
export class History {
  constructor(send) {
    this.send = send; // send(command, ...params)
    this.enabled = false;
    this.rooms = new Map(); // folded room -> RoomState
    this.tokens = new Map(); // sync token -> folded room
    this.pending = []; // our requests in the order sent: {key, room, kind, limit}
    this.nextToken = 1;
    this.batches = new Batches();
  }

  /** A new connection: requests in flight died with the old one. enabled: the server pages history. */
  reset(enabled) {
    this.enabled = enabled;
    // Only this survives: the page still shows those rooms' first lines, so
    // there is still nothing older to ask for.
    const beginnings = [...this.rooms].filter(([, state]) => state.atBeginning).map(([key]) => key);
    this.rooms.clear();
    for (const key of beginnings) this.state(key).atBeginning = true;
    this.tokens.clear();
    this.pending = [];
    this.batches.clear();
  }

  state(key) {
    let state = this.rooms.get(key);
    if (!state) {
      state = new RoomState();
      this.rooms.set(key, state);
    }
    return state;
  }

  /**
   * We joined a room (key: its folded name). On a rejoin, `since` is where what
   * we have ends: "msgid=<newest line shown>", or "timestamp=<our last JOIN>"
   * when no line had a msgid. What was said after it is fetched (without
   * either, the latest lines), and the join replay is held until that is done.
   */
  joined(key, room, { rejoin = false, since = null } = {}) {
    // Answers still due for an earlier membership would land on this one: drop them.
    for (const request of this.pending) if (request.key === key) request.stale = true;
    const state = new RoomState();
    state.atBeginning = rejoin && this.isAtBeginning(key);
    this.rooms.set(key, state);
    if (!this.enabled) return;
    if (!rejoin) this.send(...chathistoryParams("LATEST", room, "*", JOIN_PAGE));
    state.syncToken = `${SYNC_PREFIX}${this.nextToken++}`;
    this.tokens.set(state.syncToken, key);
    this.send("PING", state.syncToken);
    if (!rejoin) return;
    state.catchingUp = true;
    state.heldReplay = [];
    if (since) this.request(key, room, "missed", "AFTER", since, CATCH_UP_PAGE);
    else this.request(key, room, "missed", "LATEST", "*", CATCH_UP_PAGE);
  }

  /** A PONG: true when it was one of our sync PINGs (nothing else to do with it). */
  pong(token) {
    const key = this.tokens.get(token);
    if (key === undefined) return typeof token === "string" && token.startsWith(SYNC_PREFIX);
    this.tokens.delete(token);
    const state = this.rooms.get(key);
    if (state && state.syncToken === token) state.syncToken = null;
    return true;
  }

  request(key, room, kind, sub, ref, limit) {
    this.pending.push({ key, room, kind, limit, stale: false });
    this.send(...chathistoryParams(sub, room, ref, limit));
  }

  /** Whether older lines can be asked for now (not while a page is on its way or at the start). */
  canLoadOlder(key) {
    const state = this.rooms.get(key);
    return this.enabled && state !== undefined && state.syncToken === null && !state.loadingOlder &&
      !state.atBeginning;
  }

  /** Ask for the page before oldestMsgid; false when there is nothing to ask now. */
  loadOlder(key, room, oldestMsgid) {
    if (!oldestMsgid || !this.canLoadOlder(key)) return false;
    this.state(key).loadingOlder = true;
    this.request(key, room, "older", "BEFORE", `msgid=${oldestMsgid}`, OLDER_PAGE);
    return true;
  }

  /** Ask for the lines around msgid (a reply's parent, a search result); its answer is an "around" action. */
  loadAround(key, room, msgid) {
    if (!this.enabled || !msgid) return false;
    this.request(key, room, "around", "AROUND", `msgid=${msgid}`, AROUND_PAGE);
    this.pending.at(-1).msgid = msgid;
    return true;
  }

  isLoadingOlder(key) {
    return Boolean(this.rooms.get(key)?.loadingOlder);
  }

  isAtBeginning(key) {
    return Boolean(this.rooms.get(key)?.atBeginning);
  }

  /** Older lines were dropped from the page (its line limit): the beginning is no longer shown. */
  forgotOldest(key) {
    const state = this.rooms.get(key);
    if (state) state.atBeginning = false;
  }

  /** A finished chathistory batch for the room with folded name key. */
  batch(key, room, messages) {
    const state = this.state(key);
    if (state.syncToken !== null) {
      if (state.heldReplay !== null) {
        state.heldReplay.push(...messages);
        return null;
      }
      return { kind: "replay", room, messages };
    }
    const index = this.pending.findIndex((request) => request.key === key);
    if (index < 0) return { kind: "replay", room, messages }; // unasked: show it like a replay
    const [request] = this.pending.splice(index, 1);
    if (request.stale) return null;
    return this.answer(state, request, messages, false);
  }

  /** FAIL CHATHISTORY ...: the oldest request in flight got no batch. */
  failed() {
    const request = this.pending.shift();
    if (!request || request.stale) return null;
    return this.answer(this.state(request.key), request, [], true);
  }

  answer(state, request, messages, failed) {
    if (request.kind === "around") return { kind: "around", room: request.room, messages, msgid: request.msgid, failed };
    if (request.kind === "older") {
      state.loadingOlder = false;
      // Fewer lines than asked: there is nothing before them.
      if (!failed && messages.length < request.limit) state.atBeginning = true;
      return { kind: "older", room: request.room, messages, beginning: state.atBeginning, failed };
    }
    // A reconnect's catch-up: go on from the newest line while pages come back full.
    const last = messages.at(-1)?.tags?.msgid;
    state.catchUpPages += 1;
    const full = !failed && messages.length >= request.limit && last;
    if (full && state.catchUpPages < MAX_CATCH_UP_PAGES) {
      this.request(request.key, request.room, "missed", "AFTER", `msgid=${last}`, CATCH_UP_PAGE);
      return { kind: "missed", room: request.room, messages };
    }
    // Done. The held replay adds only what the pages didn't bring (Chat drops
    // what it already shows): everything, when the server didn't know our msgid.
    const held = state.heldReplay ?? [];
    state.heldReplay = null;
    state.catchingUp = false;
    return { kind: "missed", room: request.room, messages: [...messages, ...held] };
  }
}
