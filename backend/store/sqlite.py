"""Room history in SQLite: one thread owns the database, senders never wait on the disk.

Messages are handed to the writer thread through a bounded queue; the writer commits
whatever it finds there as one batch, at once, and comes back for more (a group
commit: the busier the chat, the bigger the batches). A message is relayed only once
it is in that queue, and when the writer can't keep up the queue fills and add()
blocks its sender for a moment (back-pressure): what a `kill -9` can lose is bounded
by the queue plus the batch being written, never by how far the writer fell behind.
Reads run on the same thread, after committing what is pending, so a query always
sees every message accepted before it and the connection is never shared between
threads. Private messages are kept only between two accounts (core/chat.py).

Readers (replay on join, CHATHISTORY) see a HistorySource. History is one, and with
`--redis` it reads the cluster's shared source first (the rooms' Redis streams),
falling back to this node's SQLite copy, which it keeps writing either way.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from ..core.envelope import epoch_ms
from ..core.history import DM_PREFIX, DM_SEPARATOR, HistorySource, Ref, SearchQuery, Stored, Unavailable
from ..irc import fold
from . import search as fts
from .handoff import Handoff
from .recent import RecentLines
from .rows import Row, stored

log = logging.getLogger("lobby.history")

# Messages waiting for the writer at most; also the most it commits in one batch.
QUEUE_ROWS = 500
# How long add() waits for room in a full queue before the message goes unstored (and the
# log says so): long enough to ride out a slow commit, short enough that a stalled disk
# can't stop the chat.
ADD_WAIT = 2.0
# How long a read waits for the writer thread to answer.
READ_WAIT = 30.0
# How many problems `lobby serve --check-db` reports at most (one is enough to refuse the file).
CHECK_PROBLEMS = 20
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id      INTEGER PRIMARY KEY,
    room    TEXT NOT NULL,      -- casefolded room name
    msgid   TEXT NOT NULL UNIQUE,
    ts_ms   INTEGER NOT NULL,   -- milliseconds since the epoch, as server-time shows it
    source  TEXT NOT NULL,      -- nick!user@host
    command TEXT NOT NULL,      -- PRIVMSG, NOTICE or TOPIC
    target  TEXT NOT NULL,      -- the room as written when the message was sent
    text    TEXT NOT NULL,
    tags    TEXT NOT NULL DEFAULT ''  -- the client-only tags (+draft/reply, +draft/react) as JSON, or ''
);
CREATE INDEX IF NOT EXISTS messages_by_room ON messages (room, ts_ms, id);
"""


class HistoryError(Exception):
    """The history database cannot be opened or used."""


class _Task:
    __slots__ = ("fn", "future", "loud")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any], loud: bool = True) -> None:
        self.fn = fn
        self.future: Future[Any] = Future()
        # Whether the writer logs a failure too (the start-up reads report theirs themselves).
        self.loud = loud


_STOP = object()
_COLUMNS = "msgid, ts_ms, source, command, target, text, tags"


class SqliteReader:
    """Reads of the SQLite store, run on its thread (the HistorySource of a node on its own)."""

    def __init__(self, call: Callable[[Callable[[sqlite3.Connection], Any]], Any]) -> None:
        self._call = call

    def latest(self, room: str, limit: int, after: Ref | None = None) -> list[Stored]:
        """The newest `limit` messages, optionally only those after a reference, oldest first."""
        if after is None:
            return self._page(room, "", (), "DESC", limit)
        return self._relative(room, after, ">", "DESC", limit)

    def before(self, room: str, ref: Ref, limit: int) -> list[Stored]:
        """Up to `limit` messages just before ref, oldest first."""
        return self._relative(room, ref, "<", "DESC", limit)

    def after(self, room: str, ref: Ref, limit: int) -> list[Stored]:
        """Up to `limit` messages just after ref, oldest first."""
        return self._relative(room, ref, ">", "ASC", limit)

    def around(self, room: str, ref: Ref, limit: int) -> list[Stored]:
        """About `limit` messages centred on ref (ref included when it is a message)."""
        older = self._relative(room, ref, "<", "DESC", limit // 2)
        newer = self._relative(room, ref, ">=", "ASC", limit - len(older))
        return older + newer

    def between(self, room: str, start: Ref, end: Ref, limit: int) -> list[Stored]:
        """Up to `limit` messages strictly between two references, paging from `start`."""
        a, b = self._position(room, start), self._position(room, end)
        if a is None or b is None:
            return []
        forwards = a <= b
        low, high = (a, b) if forwards else (b, a)
        where = "AND (ts_ms, id) > (?, ?) AND (ts_ms, id) < (?, ?)"
        return self._page(room, where, (*low, *high), "ASC" if forwards else "DESC", limit)

    def _relative(self, room: str, ref: Ref, op: str, order: str, limit: int) -> list[Stored]:
        pos = self._position(room, ref)
        if pos is None or limit <= 0:
            return []
        return self._page(room, f"AND (ts_ms, id) {op} (?, ?)", pos, order, limit)

    def _position(self, room: str, ref: Ref) -> tuple[int, int] | None:
        """(ts_ms, id) of a reference, comparable in SQL; a timestamp sits before its ms's messages."""
        if ref.ts_ms is not None:
            return (ref.ts_ms, 0)

        def query(db: sqlite3.Connection) -> tuple[int, int] | None:
            row = db.execute("SELECT ts_ms, id FROM messages WHERE msgid = ? AND room = ?",
                             (ref.msgid, fold(room))).fetchone()
            return (row[0], row[1]) if row else None

        pos: tuple[int, int] | None = self._call(query)
        return pos

    def _page(self, room: str, where: str, args: tuple[int, ...], order: str, limit: int) -> list[Stored]:
        sql = f"SELECT {_COLUMNS} FROM messages WHERE room = ? {where} ORDER BY ts_ms {order}, id {order} LIMIT ?"

        def query(db: sqlite3.Connection) -> list[Stored]:
            rows = [stored(row) for row in db.execute(sql, (fold(room), *args, limit))]
            return rows[::-1] if order == "DESC" else rows

        page: list[Stored] = self._call(query)
        return page


# Rows as History.add() makes them (rows.Row), given as one JSON array of arrays.
INSERT_BATCH = (
    "INSERT OR IGNORE INTO messages (room, msgid, ts_ms, source, command, target, text, tags)"
    " SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),"
    " json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'),"
    " json_extract(value, '$[6]'), json_extract(value, '$[7]') FROM json_each(?) ORDER BY key"
)


class History:
    """The history store; path ':memory:' keeps it in memory only."""

    def __init__(self, path: str, queue_rows: int = QUEUE_ROWS, add_wait: float = ADD_WAIT,
                 recent_lines: int = 0) -> None:
        self.path = path
        self.queue_rows = queue_rows
        self.add_wait = add_wait
        # Reads and the stop go through the same queue as the rows, so they keep their order.
        self._queue: Handoff[Any] = Handoff(queue_rows)
        self._dropped = 0
        self._dropped_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="history", daemon=True)
        self._ready: Future[None] = Future()
        self._failed_writes = 0
        # Whether the search index exists (index()); rows stored before it are indexed when it is built.
        self._indexed = False
        # This node's own copy; `shared` (set by the cluster backplane) is read first when set.
        self.local: HistorySource = SqliteReader(self._call)
        self.shared: HistorySource | None = None
        self._shared_lock = threading.Lock()
        self._shared_failing = False
        # The newest lines of the rooms read lately, for the replay on join (recent.py); only
        # while this node reads its own copy: a cluster's shared source has lines this node
        # may not have stored yet.
        self.recent = RecentLines(recent_lines) if recent_lines > 0 else None
        self._add_lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------

    def open(self, index: bool = True) -> None:
        """Open (or create) the database; raise HistoryError with a clear reason if we can't.

        index=False leaves building a missing search index to index(), e.g. until after the
        integrity check and the first reads, which name damage more clearly.
        """
        self._thread.start()
        try:
            self._ready.result(timeout=30)
        except HistoryError:
            self._thread.join(5)
            raise
        if index:
            self.index()

    def index(self) -> None:
        """Give a file from before search its full-text index, built from the rows stored (once)."""
        try:
            self._call(self._build_index, loud=False)
        except sqlite3.DatabaseError as err:
            raise HistoryError(f"history database {self.path!r} is damaged ({err}). {self.how_to_recover()}") from err

    def _build_index(self, db: sqlite3.Connection) -> None:
        fts.ensure_index(db)
        self._indexed = True  # from now on the writer indexes what it stores (on this same thread)

    def close(self) -> None:
        """Commit everything queued and stop the writer thread."""
        if self._thread.is_alive():
            if not self._queue.put(_STOP, timeout=10):
                log.error("history writer is stuck: stopping without it")
                return
            self._thread.join(10)

    # -- writing (any thread; waits only while the writer is behind) ------------------

    def add(self, room: str, msgid: str, when: float, source: str, command: str, text: str,
            tags: dict[str, str] | None = None) -> None:
        """Queue one room message for storage; while the queue is full, wait for room (back-pressure)."""
        key, ts_ms = fold(room), epoch_ms(when)
        row = (key, msgid, ts_ms, source, command, room, text, json.dumps(tags) if tags else "")
        recent = self.recent
        if recent is None:
            queued = self._queue.put(row, timeout=self.add_wait)
        else:
            with self._add_lock:  # queued and followed in memory in one order
                queued = self._queue.put_nowait(row)
                if queued:
                    recent.add(key, row)
            if not queued:
                # The writer is behind: wait for room without holding up the others, and
                # let the room be read from the database next time (the order is unsure).
                queued = self._queue.put(row, timeout=self.add_wait)
                if queued:
                    recent.drop(key)
        if not queued:
            # The disk has stalled: the chat goes on without storing, and says so.
            with self._dropped_lock:
                self._dropped += 1
                dropped = self._dropped
            if dropped == 1 or dropped % 1000 == 0:
                log.error("history writer is stuck: %d messages not stored so far", dropped)

    # -- reading (any thread; waits for the writer) ---------------------------------

    def latest(self, room: str, limit: int, after: Ref | None = None) -> list[Stored]:
        """The newest `limit` messages, optionally only those after a reference, oldest first."""
        recent = self.recent
        if after is None and recent is not None and self.shared is None and limit <= recent.lines:
            key = fold(room)
            kept = recent.get(key, limit)
            if kept is not None:
                return kept
            started = recent.begin(key)
            rows: list[Stored] | None = None
            try:
                rows = self.local.latest(room, recent.lines)
            finally:
                recent.end(key, started, rows)
            return rows[-limit:] if limit > 0 else []
        return self._read(room, lambda source: source.latest(room, limit, after))

    def before(self, room: str, ref: Ref, limit: int) -> list[Stored]:
        """Up to `limit` messages just before ref, oldest first."""
        return self._read(room, lambda source: source.before(room, ref, limit))

    def after(self, room: str, ref: Ref, limit: int) -> list[Stored]:
        """Up to `limit` messages just after ref, oldest first."""
        return self._read(room, lambda source: source.after(room, ref, limit))

    def around(self, room: str, ref: Ref, limit: int) -> list[Stored]:
        """About `limit` messages centred on ref (ref included when it is a message)."""
        return self._read(room, lambda source: source.around(room, ref, limit))

    def between(self, room: str, start: Ref, end: Ref, limit: int) -> list[Stored]:
        """Up to `limit` messages strictly between two references, oldest first.

        As in the chathistory spec, paging starts from `start`: forwards if it is the
        earlier reference, backwards from it otherwise.
        """
        return self._read(room, lambda source: source.between(room, start, end, limit))

    def search(self, query: SearchQuery) -> list[Stored]:
        """The newest messages matching query, newest first (always this node's SQLite copy and its index)."""
        found: list[Stored] = self._call(lambda db: fts.search(db, query) if self._indexed else [])
        return found

    def redact(self, room: str, msgid: str) -> Stored | None:
        """Delete one stored message of a room by msgid; the message as it was, or None if there was none.

        Read and delete run on the writer's thread after what is queued, so a message said an
        instant ago can be redacted too. Its search index row is left; searches join it away.
        """
        key = fold(room)

        def query(db: sqlite3.Connection) -> Stored | None:
            row = db.execute(f"SELECT {_COLUMNS} FROM messages WHERE room = ? AND msgid = ?", (key, msgid)).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM messages WHERE room = ? AND msgid = ?", (key, msgid))
            return stored(row)

        self._drop(key)
        try:
            found: Stored | None = self._call(query)
        finally:
            self._drop(key)  # a load that read the row meanwhile is not kept either
        return found

    def forget(self, room: str, msgids: list[str]) -> None:
        """Delete these messages of a room (or conversation) if they are there (after what is queued)."""
        key = fold(room)

        def query(db: sqlite3.Connection) -> None:
            db.executemany("DELETE FROM messages WHERE room = ? AND msgid = ?", [(key, m) for m in msgids])

        if msgids:
            self._drop(key)
            try:
                self._call(query)
            finally:
                self._drop(key)

    def _drop(self, key: str) -> None:
        if self.recent is not None:
            self.recent.drop(key)

    def reactions(self, room: str, parent: str, nick: str | None = None, value: str | None = None) -> list[str]:
        """The msgids of the reactions kept to message parent, oldest first; only those nick sent with
        value, when given (an unreact removes those)."""
        key = fold(room)

        def query(db: sqlite3.Connection) -> list[str]:
            rows = db.execute(
                "SELECT msgid, source, tags FROM messages WHERE room = ? AND command = 'TAGMSG'"
                " AND json_extract(tags, '$.\"+draft/reply\"') = ? ORDER BY ts_ms, id", (key, parent)).fetchall()
            out = []
            for msgid, source, tags in rows:
                react = stored(("", 0, source, "TAGMSG", "", "", tags)).tags.get("+draft/react")
                if nick is not None and fold(source.split("!", 1)[0]) != fold(nick):
                    continue
                if value is not None and react != value:
                    continue
                out.append(msgid)
            return out

        found: list[str] = self._call(query)
        return found

    def topics(self) -> dict[str, tuple[str, str, int]]:
        """The last topic set in each room: folded room -> (text, setter's nick!user@host, ts_ms).

        Read at start-up, it is the first query to touch every page of the table: damage
        that opening the file did not notice is a HistoryError here, not a traceback.
        """

        def query(db: sqlite3.Connection) -> dict[str, tuple[str, str, int]]:
            rows = db.execute(
                "SELECT room, text, source, MAX(ts_ms) FROM messages WHERE command = 'TOPIC' GROUP BY room"
            ).fetchall()
            return {room: (text, source, ts) for room, text, source, ts in rows}

        try:
            return self._call(query, loud=False)
        except sqlite3.DatabaseError as err:
            raise HistoryError(f"history database {self.path!r} is damaged ({err}). {self.how_to_recover()}") from err

    def check(self) -> None:
        """Run SQLite's integrity check over the whole file; raise HistoryError if it finds damage."""

        def query(db: sqlite3.Connection) -> list[str]:
            return [str(row[0]) for row in db.execute(f"PRAGMA integrity_check({CHECK_PROBLEMS})")]

        try:
            problems = self._call(query, loud=False)
        except sqlite3.DatabaseError as err:
            problems = [str(err)]
        if problems != ["ok"]:
            more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
            raise HistoryError(f"history database {self.path!r} failed its integrity check ({problems[0]}{more}). "
                               f"{self.how_to_recover()}")

    def how_to_recover(self) -> str:
        """One sentence telling the owner how to save what can still be read."""
        return (f"Save what can be read with: sqlite3 {self.path} .recover | sqlite3 recovered.db "
                "(then start with --db recovered.db, or move the damaged file away to start empty)")

    def rooms(self) -> list[str]:
        """Every room with stored messages, as last written (e.g. to put back a lost Redis stream)."""

        def query(db: sqlite3.Connection) -> list[str]:
            rows = db.execute("SELECT target FROM messages WHERE id IN (SELECT MAX(id) FROM messages GROUP BY room)"
                              " AND room NOT LIKE ?", (DM_PREFIX + "%",))
            return [target for (target,) in rows]

        return self._call(query)

    def conversations(self, account: str, limit: int) -> list[tuple[str, int]]:
        """The private conversations of account: (the other account, time of the last line), newest first."""
        me = fold(account)

        def query(db: sqlite3.Connection) -> list[tuple[str, int]]:
            rows = db.execute(
                "SELECT room, MAX(ts_ms) AS last FROM messages WHERE room LIKE ? OR room LIKE ?"
                " GROUP BY room ORDER BY last DESC LIMIT ?",
                (f"{DM_PREFIX}{me}{DM_SEPARATOR}%", f"{DM_PREFIX}%{DM_SEPARATOR}{me}", limit),
            ).fetchall()
            out = []
            for room, last in rows:
                first, _, second = room[len(DM_PREFIX):].partition(DM_SEPARATOR)
                if me in (first, second):
                    out.append((second if first == me else first, int(last)))
            return out

        return self._call(query)

    # -- internals --------------------------------------------------------------

    def _read(self, room: str, ask: Callable[[HistorySource], list[Stored]]) -> list[Stored]:
        """Ask the shared source if there is one, else (or if it can't answer) the SQLite copy.

        Private conversations are kept by the node of their users only: always the SQLite copy.
        """
        shared = None if room.startswith(DM_PREFIX) else self.shared
        if shared is not None:
            try:
                rows = ask(shared)
            except Unavailable as err:
                with self._shared_lock:
                    first, self._shared_failing = not self._shared_failing, True
                if first:  # once per outage, not once per join
                    log.warning("shared history unavailable (%s): answering from this node's copy", err)
            else:
                with self._shared_lock:
                    back, self._shared_failing = self._shared_failing, False
                if back:
                    log.warning("shared history available again")
                return rows
        return ask(self.local)

    def _call(self, fn: Callable[[sqlite3.Connection], T], loud: bool = True) -> T:
        task = _Task(fn, loud)
        deadline = time.monotonic() + READ_WAIT
        if not self._queue.put(task, timeout=READ_WAIT):
            raise TimeoutError("history writer is stuck")
        result: T = task.future.result(timeout=max(0.0, deadline - time.monotonic()))
        return result

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, timeout=2.0, isolation_level=None)
            if self.path != ":memory:":
                mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise sqlite3.OperationalError(f"cannot use WAL mode (got {mode})")
                db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(SCHEMA)
            if "tags" not in {row[1] for row in db.execute("PRAGMA table_info(messages)")}:
                db.execute("ALTER TABLE messages ADD COLUMN tags TEXT NOT NULL DEFAULT ''")  # a file from before
            db.execute("SELECT count(*) FROM messages").fetchone()
        except sqlite3.DatabaseError as err:
            raise HistoryError(f"cannot open history database {self.path!r}: {err}") from err
        return db

    def _run(self) -> None:
        try:
            db = self._connect()
        except HistoryError as err:
            self._ready.set_exception(err)
            return
        self._ready.set_result(None)
        while True:
            # Whatever has queued up meanwhile is one batch: no waiting to fill it. A read
            # or the stop in it is answered after committing the rows queued before it.
            pending: list[Row] = []
            for item in self._queue.take(self.queue_rows):
                if isinstance(item, tuple):
                    pending.append(item)
                    continue
                self._commit(db, pending)
                pending = []
                if item is _STOP:
                    db.close()
                    return
                try:
                    item.future.set_result(item.fn(db))
                except Exception as err:  # a failed read answers its caller, it doesn't stop the writer
                    if item.loud:
                        log.error("history query failed: %s", err)
                    item.future.set_exception(err)
            self._commit(db, pending)

    def _commit(self, db: sqlite3.Connection, rows: list[Row]) -> None:
        if not rows:
            return
        try:
            with db:
                db.execute("BEGIN")
                # Only this thread writes messages: whatever has a higher id after the insert is new
                # (a msgid stored already is ignored), and goes into the search index too.
                last = db.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()[0]
                # The batch goes in as one statement (one JSON array), not a statement per row:
                # sqlite3 lets go of the GIL around every statement it runs, and on a busy server
                # each time costs a wait to get it back, which made the writer the chat's bottleneck.
                db.execute(INSERT_BATCH, (json.dumps(rows, ensure_ascii=False, check_circular=False),))
                if self._indexed:
                    fts.index_batch(db, last, rows)
        except sqlite3.Error as err:
            # The chat goes on without storage; say so, every time it happens.
            self._failed_writes += len(rows)
            log.error("could not store %d messages (%d so far): %s", len(rows), self._failed_writes, err)
