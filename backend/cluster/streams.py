"""Room history in Redis streams, shared by the nodes of a cluster (`lobby serve --redis`).

Each room has a capped stream whose entry ids come from the messages' own times
(`<ms>-<seq>`), so a `timestamp=` reference is a stream-id bound, and a hash
msgid -> entry id, so a `msgid=` reference is one HGET. A message that reaches the
stream late (held during an outage, or from a node whose clock is behind) is added
where it arrives, with an id from Redis's clock (XADD *); its own time stays in its
fields.

Messages are added by one Lua script (STORE) that skips a msgid the room already
has, so sending an entry again after a lost reply never duplicates it. The key
`history-ready` says the streams are in place: when Redis comes back empty it is
missing, STORE refuses (returns -1), and a node first puts the rooms' streams back
from its own copy (SEED), so the old lines come before the new ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from ..core.envelope import epoch_ms
from ..core.history import HistorySource, Ref, Stored, Unavailable
from ..irc import fold

# Room messages kept in each room's stream: trimmed back to STREAM_MAX once it holds
# STREAM_SLACK more (trimming in batches keeps the per-message cost flat).
STREAM_MAX = 1000
STREAM_SLACK = 100
# The values of one entry as the scripts take them (see entry_args).
_ENTRY_LEN = 8

# add(stream, index, a, i): XADD the entry a[i .. i+7] with an id from its time (or,
# if the stream is already past that time, an id from now) and index its msgid.
_ADD = """
local function add(stream, index, a, i)
  local fields = {'msgid', a[i], 'time', a[i + 2], 'source', a[i + 3], 'command', a[i + 4],
                  'room', a[i + 5], 'text', a[i + 6], 'tags', a[i + 7]}
  local id = redis.pcall('XADD', stream, a[i + 1] .. '-*', unpack(fields))
  if type(id) ~= 'string' then id = redis.call('XADD', stream, '*', unpack(fields)) end
  redis.call('HSET', index, a[i], id)
  return id
end
"""

# KEYS: stream, index, ready marker. ARGV: max length, slack, one entry.
# Returns 1 added, 0 already there, -1 Redis lost the streams (put them back first).
STORE = _ADD + """
if redis.call('EXISTS', KEYS[3]) == 0 then return -1 end
if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then return 0 end
add(KEYS[1], KEYS[2], ARGV, 3)
local max, len = tonumber(ARGV[1]), redis.call('XLEN', KEYS[1])
if len > max + tonumber(ARGV[2]) then
  local old = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', len - max + 1)
  for i = 1, #old - 1 do
    local f = old[i][2]
    for j = 1, #f - 1, 2 do
      if f[j] == 'msgid' then redis.call('HDEL', KEYS[2], f[j + 1]); break end
    end
  end
  redis.call('XTRIM', KEYS[1], 'MINID', old[#old][1])
end
return 1
"""

# KEYS: stream, index. ARGV: entries, oldest first. Only into a stream Redis no longer
# has: a stream that exists already (another node put it back first) is left alone.
SEED = _ADD + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[2])
for i = 1, #ARGV, 8 do add(KEYS[1], KEYS[2], ARGV, i) end
return #ARGV / 8
"""

# KEYS: stream, index. ARGV: msgids. Deletes those entries (a REDACT, an unreact); returns how many.
FORGET = """
local n = 0
for i = 1, #ARGV do
  local id = redis.call('HGET', KEYS[2], ARGV[i])
  if id then
    n = n + redis.call('XDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[2], ARGV[i])
  end
end
return n
"""


@dataclass(frozen=True)
class Keys:
    """The Redis keys of the shared history, under a prefix."""

    prefix: str

    def stream(self, room: str) -> str:
        """The room's capped stream of messages and topics."""
        return f"{self.prefix}history:{fold(room)}"

    def index(self, room: str) -> str:
        """The room's hash msgid -> stream entry id."""
        return f"{self.prefix}history-ids:{fold(room)}"

    @property
    def ready(self) -> str:
        """Set once the streams are in place; gone when Redis lost its data."""
        return self.prefix + "history-ready"


def entry_args(msgid: str, when: float, source: str, command: str, room: str, text: str,
               tags: dict[str, str] | None = None) -> list[str]:
    """One message as the STORE and SEED scripts take it (its client-only tags as JSON, or "")."""
    return [msgid, str(epoch_ms(when)), repr(when), source, command, room, text, json.dumps(tags) if tags else ""]


def stored_args(row: Stored) -> list[str]:
    """A row of a node's own copy as the SEED script takes it."""
    return [row.msgid, str(row.ts_ms), repr(row.ts_ms / 1000), row.source, row.command, row.target, row.text,
            json.dumps(row.tags) if row.tags else ""]


def entry_tags(fields: dict[str, str]) -> dict[str, str]:
    """The client-only tags of a stream entry (none for an entry from before they were kept)."""
    try:
        tags = json.loads(fields.get("tags") or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}


# A position in a stream: (ms, seq) of an entry, or (ms, -1) for a timestamp, which
# sits before every entry of its millisecond.
_Pos = tuple[int, int]


def _above(pos: _Pos) -> str:
    """XRANGE bound for 'after pos' (exclusive of an entry, inclusive of a timestamp's ms)."""
    ms, seq = pos
    if seq < 0:
        return f"{ms}-0" if ms >= 0 else "-"
    return f"({ms}-{seq}"


def _from(pos: _Pos) -> str:
    """XRANGE bound for 'pos and after'."""
    ms, seq = pos
    if seq < 0:
        return f"{ms}-0" if ms >= 0 else "-"
    return f"{ms}-{seq}"


def _below(pos: _Pos) -> str | None:
    """XRANGE bound for 'before pos', or None when nothing can be (Redis refuses "(0-0")."""
    ms, seq = pos
    if seq < 0:
        return f"({ms}-0" if ms > 0 else None
    return f"({ms}-{seq}" if (ms, seq) != (0, 0) else None


def _rows(entries: list[tuple[str, dict[str, str]]]) -> list[Stored]:
    rows = []
    for _, fields in entries:
        try:
            rows.append(Stored(fields["msgid"], epoch_ms(float(fields["time"])), fields["source"],
                               fields["command"], fields["room"], fields["text"], entry_tags(fields)))
        except (KeyError, ValueError):
            continue  # not an entry of ours: skip it rather than fail the reader
    return rows


class StreamHistory:
    """A HistorySource over the rooms' Redis streams.

    Raises Unavailable when Redis can't answer (the caller then reads its own copy).
    What lies before a stream's first entry (trimmed away, or said before the
    cluster existed) comes from `older`, this node's own copy, so paging back
    reaches the beginning of a room, as on a node on its own.
    """

    def __init__(self, client: Callable[[], redis.Redis | None], keys: Keys, older: HistorySource,
                 failed: Callable[[Exception], None] | None = None,
                 barrier: Callable[[], None] | None = None) -> None:
        self._client = client
        self.keys = keys
        self.older = older
        self._failed = failed  # told when Redis fails a read (the backplane then holds its events)
        # Called before each read: waits (briefly) until this node's own queued lines are in
        # the streams, so a user who joins right after a line was said here reads it.
        self._barrier = barrier or (lambda: None)

    def latest(self, room: str, limit: int, after: Ref | None = None) -> list[Stored]:
        """The newest `limit` messages, optionally only those after a reference, oldest first."""
        self._barrier()
        if after is None:
            return self._topped_up(room, self._rev(room, "+", "-", limit), limit, None)
        pos = self._position(room, after)
        if pos is None:
            return self.older.latest(room, limit, after)
        return self._rev(room, "+", _above(pos), limit)

    def before(self, room: str, ref: Ref, limit: int) -> list[Stored]:
        """Up to `limit` messages just before ref, oldest first."""
        self._barrier()
        pos = self._position(room, ref)
        if pos is None:  # a msgid the stream doesn't hold (trimmed away): older than it
            return self.older.before(room, ref, limit)
        return self._topped_up(room, self._before(room, pos, limit), limit, ref.ts_ms)

    def after(self, room: str, ref: Ref, limit: int) -> list[Stored]:
        """Up to `limit` messages just after ref, oldest first."""
        self._barrier()
        pos = self._position(room, ref)
        if pos is None:
            return self.older.after(room, ref, limit)
        return self._fwd(room, _above(pos), "+", limit)

    def around(self, room: str, ref: Ref, limit: int) -> list[Stored]:
        """About `limit` messages centred on ref (ref included when it is a message)."""
        self._barrier()
        pos = self._position(room, ref)
        if pos is None:
            return self.older.around(room, ref, limit)
        older = self._topped_up(room, self._before(room, pos, limit // 2), limit // 2, ref.ts_ms)
        return older + self._fwd(room, _from(pos), "+", limit - len(older))

    def between(self, room: str, start: Ref, end: Ref, limit: int) -> list[Stored]:
        """Up to `limit` messages strictly between two references, paging from `start`."""
        self._barrier()
        a, b = self._position(room, start), self._position(room, end)
        if a is None or b is None:
            return self.older.between(room, start, end, limit)
        forwards = a <= b
        low, high = (a, b) if forwards else (b, a)
        upper = _below(high)
        if upper is None:
            return []
        if forwards:
            return self._fwd(room, _above(low), upper, limit)
        return self._rev(room, upper, _above(low), limit)

    # -- internals --------------------------------------------------------------

    def _redis(self) -> Any:  # redis-py's stubs type replies loosely; the decoded shapes are known
        r = self._client()
        if r is None:
            raise Unavailable("Redis is unreachable")
        return r

    def _unavailable(self, err: Exception) -> Unavailable:
        if self._failed is not None and isinstance(err, (redis.ConnectionError, redis.TimeoutError, OSError)):
            self._failed(err)  # Redis is away or hangs, not merely refusing one command
        return Unavailable(str(err))

    def _position(self, room: str, ref: Ref) -> _Pos | None:
        if ref.ts_ms is not None:
            return (ref.ts_ms, -1)
        try:
            found = self._redis().hget(self.keys.index(room), ref.msgid or "")
        except (redis.RedisError, OSError) as err:
            raise self._unavailable(err) from err
        if not isinstance(found, str):
            return None
        ms, _, seq = found.partition("-")
        return (int(ms), int(seq))

    def _before(self, room: str, pos: _Pos, limit: int) -> list[Stored]:
        below = _below(pos)
        return [] if below is None else self._rev(room, below, "-", limit)

    def _topped_up(self, room: str, rows: list[Stored], limit: int, ts_ms: int | None) -> list[Stored]:
        """rows (the stream's, oldest first, ending where paging back started), preceded by
        what this node's copy holds from before the stream's first entry if the stream ran out."""
        if len(rows) >= limit:
            return rows
        first = rows[0] if rows else self._first(room)
        if first is None and ts_ms is None:  # the cluster has no stream for this room: only this node knows it
            return self.older.latest(room, limit)
        wanted = limit - len(rows)
        if first is None or (ts_ms is not None and ts_ms <= first.ts_ms):
            older = self.older.before(room, Ref(ts_ms=ts_ms), wanted)
        else:
            # Before the stream's first entry as this node's copy orders it (several lines may share its
            # millisecond); by time alone if this node never got that entry.
            older = (self.older.before(room, Ref(msgid=first.msgid), wanted)
                     or self.older.before(room, Ref(ts_ms=first.ts_ms), wanted))
        seen = {row.msgid for row in rows}
        return [row for row in older if row.msgid not in seen] + rows

    def _first(self, room: str) -> Stored | None:
        entries = self._fwd(room, "-", "+", 1)
        return entries[0] if entries else None

    def _fwd(self, room: str, low: str, high: str, count: int) -> list[Stored]:
        if count <= 0:
            return []
        try:
            entries = self._redis().xrange(self.keys.stream(room), low, high, count)
        except (redis.RedisError, OSError) as err:
            raise self._unavailable(err) from err
        return _rows(entries)

    def _rev(self, room: str, high: str, low: str, count: int) -> list[Stored]:
        if count <= 0:
            return []
        try:
            entries = self._redis().xrevrange(self.keys.stream(room), high, low, count)
        except (redis.RedisError, OSError) as err:
            raise self._unavailable(err) from err
        return _rows(entries[::-1])
