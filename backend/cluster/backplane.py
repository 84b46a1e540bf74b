"""Several Lobby nodes sharing rooms through Redis (`lobby serve --redis redis://HOST:PORT/DB`).

Each node keeps its own connections and its own Hub. The Hub also holds a mirror of
the users on other nodes (RemoteUser members, whose deliver() does nothing), so
NAMES, WHO, WHOIS, ISON and nick checks read local state and never wait on Redis.

Redis holds (all keys under PREFIX):
- ``nick:<folded>`` = node id: the atomic cluster-wide nick claim (SET NX);
- ``users:<node>``: hash folded nick -> JSON user (nick, user, host, realname);
- ``room:<folded>``: hash folded nick -> node id, the members of a room on every node;
- ``rooms``: hash folded room -> room name; ``topics``: hash folded room -> JSON topic;
- ``nodes``: set of node ids; ``alive:<node>``: heartbeat key with an expiry;
- ``history:<folded room>``: the room's shared history, a capped stream of its messages
  and topics whose entry ids come from their times; ``history-ids:<folded room>``: hash
  msgid -> entry id; ``history-ready``: set while the streams are in place (see
  clusterhistory.py). Replay on join and CHATHISTORY read them on every node, and each
  node also keeps its own SQLite copy (for a restart, and while Redis is away);
- ``events``: the one pub/sub channel; each payload is JSON with the origin node,
  the event type and the IRC message fields, time and msgid, so every node shows the
  same msgid and time.

Threads: a subscriber applies other nodes' events to the local Hub and delivers them
to local members; a heartbeat thread refreshes this node's key every second and
every two seconds looks for nodes whose key expired (their users become QUITs here
and their nicks and memberships are freed in Redis); a sender sends this node's events
in order, many to a pipeline, holds them while Redis is unreachable (bounded) and, once
Redis answers again, puts back what it lost, announces this node's users and sends what
it held. All stop
in close(). No Redis call is made while the hub lock is held: the Hub is only touched
through its own methods, before or after talking to Redis.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from ..core.chat import Chat
from ..core.envelope import Envelope
from ..core.events import (
    AwayChanged,
    Event,
    Joined,
    Parted,
    PrivateMessage,
    Quit,
    Registered,
    Renamed,
    RoomMessage,
    TopicChanged,
)
from ..core.hub import Member
from ..irc import IrcError, Message, fold
from ..irc import numerics as n
from ..store.sqlite import History
from .streams import SEED, STORE, STREAM_MAX, STREAM_SLACK, Keys, StreamHistory, entry_args, stored_args

log = logging.getLogger("lobby.cluster")

PREFIX = "lobby:"
CHANNEL = PREFIX + "events"
HEARTBEAT_EVERY = 1.0
HEARTBEAT_TTL_MS = 5000
CHECK_EVERY = 2.0
HISTORY = Keys(PREFIX)
# Events held while Redis is unreachable; past this the oldest are dropped (and the log says how many).
HELD_MAX = 5000
# Held events sent in one pipeline (one round trip) once Redis is back.
SEND_BATCH = 500
# Waits between attempts to reach Redis again: doubling from the first to the last.
RETRY_FIRST = 0.25
RETRY_MAX = 2.0
# History reads (replay on join, CHATHISTORY) give up on Redis this soon and read the node's own
# copy instead: a user joining never waits long on a Redis that hangs.
READ_TIMEOUT = 2.0
# Msgids of other nodes' messages already delivered here: one sent twice (its reply lost, then
# sent again) is delivered once.
SEEN_MAX = 10000

# Frees a node's nicks and room memberships (only those still pointing at it) and forgets it.
_FORGET_NODE = """
local p, node = ARGV[1], ARGV[2]
local users = redis.call('HKEYS', p .. 'users:' .. node)
for _, k in ipairs(users) do
  if redis.call('GET', p .. 'nick:' .. k) == node then redis.call('DEL', p .. 'nick:' .. k) end
end
for _, room in ipairs(redis.call('HKEYS', p .. 'rooms')) do
  for _, k in ipairs(users) do
    if redis.call('HGET', p .. 'room:' .. room, k) == node then redis.call('HDEL', p .. 'room:' .. room, k) end
  end
end
redis.call('DEL', p .. 'users:' .. node)
redis.call('SREM', p .. 'nodes', node)
return #users
"""

# Deletes a key only while it still holds the given value (a nick claim still ours).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def redact(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class BackplaneError(Exception):
    """Redis can't be reached or used at start-up."""


@dataclass(eq=False)
class RemoteUser:
    """A user connected to another node, as the local Hub sees it."""

    nick: str
    user: str
    host: str
    realname: str
    node: str
    away: str | None = None

    @property
    def prefix(self) -> str:
        return f"{self.nick}!{self.user or self.nick}@{self.host}"

    def deliver(self, envelope: Envelope) -> None:
        """Nothing: the node that holds this user delivers to it."""


@dataclass(eq=False, slots=True)
class _Held:
    """One event for Redis: state writes, a stream entry, a pub/sub payload (any of them),
    sent together in this order."""

    writes: Callable[[Any], None] | None = None  # adds HSET/HDEL (or a nick release) to a pipeline
    room: str | None = None  # whose stream keeps `entry`
    entry: list[str] | None = None  # the STORE script's entry (clusterhistory.entry_args)
    payload: str | None = None  # published on CHANNEL
    seq: int = 0  # order of arrival, so the sender removes exactly what it sent


def _user_info(user: Member) -> dict[str, str]:
    return {"nick": user.nick, "user": user.user, "host": user.host, "realname": user.realname,
            "away": user.away or ""}


class Backplane:
    """This node's link to the others through one Redis server."""

    def __init__(self, url: str, chat: Chat, history: History | None) -> None:
        self.url = url
        self.chat = chat
        self.history = history
        self.node = uuid.uuid4().hex[:12]
        self._redis: redis.Redis | None = None
        self._pubsub: Any = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._forget_node: Any = None
        self._release: Any = None
        self._seed: Any = None
        self._store_sha = ""
        # Held events (see _submit): appended and removed under _lock; the sender waits on _wake.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        # Notified when the sender took events off a full queue (see _submit).
        self._drained = threading.Condition(self._lock)
        self._held: deque[_Held] = deque()
        self._seq = 0
        self._dropped = 0  # held events dropped in this outage (HELD_MAX reached)
        self._down = False  # Redis failed us: hold events, and recover before sending them
        self._must_recover = False
        self._seen: OrderedDict[str, None] = OrderedDict()  # subscriber thread only
        self.streams: StreamHistory | None = None
        self._reads: redis.Redis | None = None  # history reads: short timeouts, one retry

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Connect, subscribe, load the other nodes' users and rooms, start the threads.

        Raises BackplaneError when Redis can't be reached.
        """
        try:
            # Two retries (redis-py's default is ten): enough to get past a connection Redis closed, while a
            # Redis that hangs is given up on (and events held) within about 15 s, not a minute.
            r = redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5,
                                     health_check_interval=10, retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2))
            r.ping()
            self._redis = r
            self._forget_node = r.register_script(_FORGET_NODE)
            self._release = r.register_script(_RELEASE)
            self._seed = r.register_script(SEED)
            self._store_sha = r.script_load(STORE)
            self._beat()
            r.sadd(PREFIX + "nodes", self.node)
            # Subscribe before reading the snapshot: events in between are applied twice, harmlessly.
            self._pubsub = r.pubsub(ignore_subscribe_messages=True)
            self._pubsub.subscribe(CHANNEL)
            self._load_snapshot(r)
            self._restore_history(r)
            self._load_history(r)
        except (redis.RedisError, ValueError, OSError) as err:
            self.close(tell=False)
            raise BackplaneError(f"cannot use Redis at {redact(self.url)}: {err}") from err
        history = self.history
        if history is not None:
            # Replay and CHATHISTORY read the shared streams from now on (this node's copy when they can't).
            self._reads = redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=READ_TIMEOUT,
                                               socket_connect_timeout=READ_TIMEOUT, retry=Retry(NoBackoff(), 1))
            self.streams = StreamHistory(self._reader, HISTORY, history.local, self._mark_down, self.wait_sent)
            history.shared = self.streams
        for target, name in ((self._subscribe_loop, "cluster-sub"), (self._heartbeat_loop, "cluster-beat"),
                             (self._send_loop, "cluster-send")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("node %s joined the cluster at %s", self.node, redact(self.url))

    def close(self, tell: bool = True) -> None:
        """Stop the threads; with tell, send what is held, free this node's nicks and memberships
        and tell the others."""
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(3.0)
        history = self.history
        if history is not None and self.streams is not None and history.shared is self.streams:
            history.shared = None
        r = self._redis
        if tell and r is not None:
            self._send_held_at_close(r)
            try:
                self._forget_node(args=[PREFIX, self.node])
                r.delete(PREFIX + "alive:" + self.node)
                r.publish(CHANNEL, json.dumps({"node": self.node, "type": "down"}))
            except redis.RedisError as err:
                log.warning("could not tell the cluster this node is leaving: %s", err)
        if self._pubsub is not None:
            with contextlib.suppress(redis.RedisError, OSError):
                self._pubsub.close()
        if r is not None:
            r.close()
        if self._reads is not None:
            self._reads.close()
        self._redis = None

    def crash(self) -> None:
        """Drop everything without telling Redis, as a killed process would (for tests)."""
        self.close(tell=False)

    # -- nick claims ----------------------------------------------------------

    def claim(self, nick: str) -> bool:
        """Claim nick for this node; True if newly claimed, False if this node held it already.

        Raises 433 if another node holds it. If Redis is unreachable the claim is local only
        (logged), so a node keeps serving its users.
        """
        r = self._redis
        if r is None:
            return False
        if self._down:  # don't make the user wait on a Redis known to be away; claimed again when it is back
            log.warning("nick claim for %s not checked cluster-wide (Redis unreachable)", nick)
            return False
        key = PREFIX + "nick:" + fold(nick)
        try:
            if r.set(key, self.node, nx=True):
                return True
            holder = r.get(key)
        except redis.RedisError as err:
            log.warning("nick claim for %s not checked cluster-wide (Redis: %s)", nick, err)
            return False
        if holder == self.node:
            return False
        if holder is None:  # released meanwhile: try once more
            return self.claim(nick)
        raise IrcError(n.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")

    def release(self, nick: str) -> None:
        """Give up this node's claim on nick."""
        key = PREFIX + "nick:" + fold(nick)
        self._submit(_Held(writes=lambda p: self._release(keys=[key], args=[self.node], client=p)))

    # -- this node's events, told to the others ----------------------------------

    def publish(self, event: Event) -> None:
        """The cluster port: tell the other nodes what happened here (queued for the sender thread)."""
        if isinstance(event, RoomMessage):
            self.room_message(event.room, event.envelope)
        elif isinstance(event, TopicChanged):
            self.topic(event.room, event.envelope)
        elif isinstance(event, Joined):
            self.joined(event.user, event.room, event.envelope)
        elif isinstance(event, Parted):
            self.parted(event.user, event.room, event.envelope)
        elif isinstance(event, Quit):
            self.quit(event.user, list(event.rooms), event.envelope)
        elif isinstance(event, Renamed):
            self.renamed(event.old_nick, event.user, list(event.rooms), event.envelope)
        elif isinstance(event, AwayChanged):
            self.away(event.user)
        elif isinstance(event, Registered):
            self.registered(event.user)
        elif isinstance(event, PrivateMessage) and isinstance(event.target, RemoteUser):
            self.private(event.target, event.envelope)

    # Each event's writes use values taken when it happened: it may be sent later (held).

    def registered(self, session: Member) -> None:
        info, nick = _user_info(session), fold(session.nick)
        self._submit(_Held(writes=lambda p: p.hset(PREFIX + "users:" + self.node, nick, json.dumps(info)),
                           payload=self._payload("hello", user=info)))

    def joined(self, session: Member, room: str, envelope: Envelope) -> None:
        nick = fold(session.nick)

        def writes(p: Any) -> None:
            p.hset(PREFIX + "rooms", fold(room), room)
            p.hset(PREFIX + "room:" + fold(room), nick, self.node)

        self._submit(_Held(writes=writes, payload=self._payload("join", envelope, user=_user_info(session), room=room)))

    def parted(self, session: Member, room: str, envelope: Envelope) -> None:
        nick = fold(session.nick)
        self._submit(_Held(writes=lambda p: p.hdel(PREFIX + "room:" + fold(room), nick),
                           payload=self._payload("part", envelope, nick=session.nick, room=room)))

    def quit(self, session: Member, rooms: list[str], envelope: Envelope) -> None:
        nick = fold(session.nick)

        def writes(p: Any) -> None:
            p.hdel(PREFIX + "users:" + self.node, nick)
            for room in rooms:
                p.hdel(PREFIX + "room:" + fold(room), nick)
            self._release(keys=[PREFIX + "nick:" + nick], args=[self.node], client=p)

        self._submit(_Held(writes=writes, payload=self._payload("quit", envelope, nick=session.nick)))

    def renamed(self, old: str, session: Member, rooms: list[str], envelope: Envelope) -> None:
        info = _user_info(session)
        new = fold(session.nick)

        def writes(p: Any) -> None:
            p.hdel(PREFIX + "users:" + self.node, fold(old))
            p.hset(PREFIX + "users:" + self.node, new, json.dumps(info))
            for room in rooms:
                p.hdel(PREFIX + "room:" + fold(room), fold(old))
                p.hset(PREFIX + "room:" + fold(room), new, self.node)
            if fold(old) != new:
                self._release(keys=[PREFIX + "nick:" + fold(old)], args=[self.node], client=p)

        self._submit(_Held(writes=writes, payload=self._payload("nick", envelope, nick=old, new=session.nick)))

    def topic(self, room: str, envelope: Envelope) -> None:
        m = envelope.message
        value = json.dumps([m.params[-1], (m.source or "").split("!")[0], envelope.time])
        self._submit(self._room_event(room, envelope, lambda p: p.hset(PREFIX + "topics", fold(room), value)))

    def room_message(self, room: str, envelope: Envelope) -> None:
        """A room message or topic: kept in the room's stream, then told to the other nodes."""
        self._submit(self._room_event(room, envelope))

    def _room_event(self, room: str, envelope: Envelope, writes: Callable[[Any], None] | None = None) -> _Held:
        m = envelope.message
        entry = entry_args(envelope.msgid, envelope.time, m.source or "", m.command, room, m.params[-1])
        return _Held(writes=writes, room=room, entry=entry, payload=self._payload("room", envelope, room=room))

    def away(self, session: Member) -> None:
        info, nick = _user_info(session), fold(session.nick)
        self._submit(_Held(writes=lambda p: p.hset(PREFIX + "users:" + self.node, nick, json.dumps(info)),
                           payload=self._payload("away", nick=session.nick, text=session.away or "")))

    def private(self, target: RemoteUser, envelope: Envelope) -> None:
        self._send("private", envelope, target=target.nick, to_node=target.node)

    def _send(self, kind: str, envelope: Envelope | None = None, **extra: Any) -> None:
        self._submit(_Held(payload=self._payload(kind, envelope, **extra)))

    def _send_state(self, kind: str, envelope: Envelope | None = None, **extra: Any) -> None:
        """Like _send, for announcing this node's state after an outage: held, it never pushes
        out the events held before it (its size is bounded by the number of local users)."""
        self._submit(_Held(payload=self._payload(kind, envelope, **extra)), bounded=False)

    def _payload(self, kind: str, envelope: Envelope | None = None, **extra: Any) -> str:
        payload: dict[str, Any] = {"node": self.node, "type": kind, **extra}
        if envelope is not None:
            m = envelope.message
            payload.update(command=m.command, params=list(m.params), source=m.source, tags=m.tags,
                           time=envelope.time, msgid=envelope.msgid)
        return json.dumps(payload)

    # -- sending, and holding what can't be sent --------------------------------------

    def _submit(self, item: _Held, bounded: bool = True) -> None:
        """Queue one event for the sender thread, which sends what is queued in one pipeline.

        The caller (a user's reader thread) never waits for a Redis round trip: its own
        node's users see the message at once, and a burst costs one round trip, not one
        each (measured: two nodes on one box went from 0.4 to 0.65 of one node's fan-out).
        While Redis answers, a full queue makes the caller wait for room (back-pressure,
        nothing dropped); while it doesn't, the oldest held events give way (logged).
        """
        if self._redis is None:
            return
        with self._lock:
            while bounded and not self._down and len(self._held) >= HELD_MAX and not self._stop.is_set():
                self._drained.wait(1.0)
            self._hold(item, bounded=bounded)

    def wait_sent(self, timeout: float = 1.0) -> None:
        """Wait, at most timeout seconds, until what this node queued so far has reached Redis.

        Not at all while Redis is away: then the streams can't have it, and reads fall back.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._seq
            while not self._down and self._held and self._held[0].seq <= target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._drained.wait(remaining)

    def _hold(self, item: _Held, first: bool = False, bounded: bool = True) -> None:
        """Keep an event for the sender (lock held); past HELD_MAX drop the oldest, and say so."""
        if not first:
            self._seq += 1
            item.seq = self._seq
            self._held.append(item)
        else:
            self._held.appendleft(item)
        if bounded and len(self._held) > HELD_MAX:
            self._held.popleft()
            self._dropped += 1
            if self._dropped == 1:
                log.error("more than %d events held while Redis is unreachable: dropping the oldest", HELD_MAX)
        self._wake.notify()

    def _mark_down(self, reason: object) -> None:
        """Redis failed us: hold events from now on, and recover before sending them."""
        with self._lock:
            was_down, self._down, self._must_recover = self._down, True, True
            self._wake.notify()
            self._drained.notify_all()  # nobody waits for a Redis that is away
        if not was_down:
            log.warning("Redis unreachable (%s): holding this node's events until it is back", reason)

    def _execute(self, r: Any, items: list[_Held]) -> list[_Held]:
        """Send items in one pipeline; return those whose stream entry must be stored again
        (Redis lost the streams or the script: it comes back after recovery).

        Raises on connection errors; a command Redis refuses is logged and not retried.
        """
        pipe = r.pipeline(transaction=False)
        stores: list[tuple[int, _Held]] = []
        for item in items:
            if item.writes is not None:
                item.writes(pipe)
            if item.entry is not None and item.room is not None:
                stores.append((len(pipe), item))
                pipe.evalsha(self._store_sha, 3, HISTORY.stream(item.room), HISTORY.index(item.room), HISTORY.ready,
                             STREAM_MAX, STREAM_SLACK, *item.entry)
            if item.payload is not None:
                pipe.publish(CHANNEL, item.payload)
        results = pipe.execute(raise_on_error=False)
        again = [_Held(room=item.room, entry=item.entry, seq=item.seq) for index, item in stores
                 if results[index] == -1 or isinstance(results[index], redis.exceptions.NoScriptError)]
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, redis.exceptions.NoScriptError):
                log.error("Redis refused a command of this node's events: %s", result)
        return again

    def _send_loop(self) -> None:
        """Send what is queued, oldest first, many to a pipeline; after an outage, recover first."""
        delay = RETRY_FIRST
        sent = 0  # during the current outage, for the "answers again" line
        while not self._stop.is_set():
            with self._lock:
                if not self._held and not self._down:
                    self._wake.wait(1.0)
                    continue
                outage = self._down
                recover, self._must_recover = self._must_recover, False
                batch = [self._held[i] for i in range(min(SEND_BATCH, len(self._held)))]
            r = self._redis
            if r is None:
                return
            try:
                if recover:
                    self._recover(r)
                again = self._execute(r, batch) if batch else []
            except (redis.RedisError, OSError) as err:
                self._mark_down(err)
                self._stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            delay = RETRY_FIRST
            if outage:
                sent += len(batch) - len(again)
            with self._lock:
                while self._held and batch and self._held[0].seq <= batch[-1].seq:
                    self._held.popleft()
                self._drained.notify_all()
                for item in reversed(again):
                    self._hold(item, first=True)
                if again:
                    self._must_recover = True
                elif not self._held and not self._must_recover and self._down:
                    self._down = False
                    dropped, self._dropped = self._dropped, 0
                    log.warning("Redis answers again: sent the %d events held meanwhile%s", sent,
                                f" ({dropped} older ones were dropped)" if dropped else "")
                    sent = 0
            if again:
                self._stop.wait(delay)  # the events went out; only their stream entries wait for the recovery

    def _send_held_at_close(self, r: Any) -> None:
        """A clean stop: one last try at sending what is held; say how much could not be."""
        with self._lock:
            held = list(self._held)
            self._held.clear()
        if not held:
            return
        try:
            if self._must_recover:  # only what storing needs: announcing users would be pointless now
                self._store_sha = r.script_load(STORE)
                self._restore_history(r)
            again = self._execute(r, held)
        except (redis.RedisError, OSError) as err:
            log.error("stopping with %d events not sent to the cluster (Redis: %s)", len(held), err)
            return
        if again:
            log.error("stopping with %d room messages not stored in the shared history", len(again))

    # -- other nodes' events, applied here ----------------------------------------

    def _subscribe_loop(self) -> None:
        lost = False
        while not self._stop.is_set():
            try:
                item = self._pubsub.get_message(timeout=0.5)
            except (redis.RedisError, OSError, ValueError) as err:
                if self._stop.is_set():
                    return
                log.warning("lost the Redis subscription: %s; retrying", err)
                self._mark_down(err)  # events were missed: recover (and copy the streams) once it is back
                lost = True
                self._stop.wait(1.0)
                continue
            if lost:
                # Subscribed again: events sent meanwhile are lost, so every node announces its users anew.
                lost = False
                log.warning("subscribed to Redis again; asking every node for its users")
                self._send_state("sync")
                self._announce()
            if item is None or item.get("type") != "message":
                continue
            try:
                event = json.loads(item["data"])
                if event.get("node") != self.node:
                    self.apply(event)
            except Exception:
                log.exception("could not apply cluster event %r", item.get("data"))

    def apply(self, event: dict[str, Any]) -> None:
        """Apply one event from another node to the local Hub and deliver it to local members."""
        hub = self.chat.hub
        kind = event["type"]
        node = event["node"]
        envelope = None
        if "command" in event:
            envelope = Envelope(Message(event["command"], tuple(event["params"]), event["source"], event["tags"]),
                                time=event["time"], msgid=event["msgid"])
        if kind in ("room", "private") and envelope is not None:
            # Sent again after a reply was lost (see _send_loop): deliver it once.
            if envelope.msgid in self._seen:
                return
            self._seen[envelope.msgid] = None
            if len(self._seen) > SEEN_MAX:
                self._seen.popitem(last=False)
        if kind == "down":
            self._node_gone(node, "Server shut down")
        elif kind == "hello":
            self._remote(event["user"], node)
        elif kind == "join" and envelope is not None:
            member = self._remote(event["user"], node)
            if member is None:
                return
            result = hub.join(member, event["room"])
            if result is not None:
                for local in result[1]:
                    local.deliver(envelope)
        elif kind == "part" and envelope is not None:
            member = self._find_remote(event["nick"], node)
            if member is None:
                return
            try:
                _, told = hub.part(member, event["room"])
            except IrcError:
                return
            for local in told:
                local.deliver(envelope)
        elif kind == "quit" and envelope is not None:
            member = self._find_remote(event["nick"], node)
            if member is not None:
                for local in hub.remove(member):
                    local.deliver(envelope)
        elif kind == "nick" and envelope is not None:
            member = self._find_remote(event["nick"], node)
            if member is None:
                return
            try:
                told = hub.rename(member, event["new"])
            except IrcError:
                log.warning("remote rename %s -> %s clashes with a local user", event["nick"], event["new"])
                return
            for local in told:
                local.deliver(envelope)
        elif kind == "room" and envelope is not None:
            room = event["room"]
            if envelope.message.command == "TOPIC":
                member = self._find_remote((envelope.message.source or "").split("!")[0], node)
                if member is not None:
                    with contextlib.suppress(IrcError):
                        hub.set_topic(member, room, envelope.message.params[-1], when=envelope.time)
            self.chat.store(room, envelope)  # stored before anyone here can see it
            for local in hub.members_of(room):
                local.deliver(envelope)
        elif kind == "away":
            member = self._find_remote(event["nick"], node)
            if member is not None:
                member.away = event["text"] or None
        elif kind == "sync":
            self._announce()
        elif kind == "roster":
            self._apply_roster(node, event["roster"])
        elif kind == "private" and envelope is not None and event.get("to_node") == self.node:
            target = hub.find(event["target"])
            if target is not None and not isinstance(target, RemoteUser):
                target.deliver(envelope)

    def _apply_roster(self, node: str, roster: dict[str, list[str]]) -> None:
        """A node's full list of users and their rooms: drop what the mirror has in excess."""
        hub = self.chat.hub
        for member in hub.users():
            if not isinstance(member, RemoteUser) or member.node != node:
                continue
            rooms = roster.get(fold(member.nick))
            if rooms is None:
                envelope = Envelope(Message("QUIT", ("Left while the cluster was split",), member.prefix))
                for local in hub.remove(member):
                    local.deliver(envelope)
                continue
            for room in hub.rooms_of(member):
                if fold(room) not in rooms:
                    with contextlib.suppress(IrcError):
                        name, told = hub.part(member, room)
                        envelope = Envelope(Message("PART", (name,), member.prefix))
                        for local in told:
                            local.deliver(envelope)

    def _remote(self, info: dict[str, str], node: str) -> RemoteUser | None:
        hub = self.chat.hub
        current = hub.find(info["nick"])
        if isinstance(current, RemoteUser) and current.node == node:
            current.away = info.get("away") or None
            return current
        if current is not None:
            log.warning("remote user %s on node %s clashes with a user here; ignored", info["nick"], node)
            return None
        member = RemoteUser(info["nick"], info.get("user", ""), info.get("host", ""), info.get("realname", ""), node,
                            info.get("away") or None)
        try:
            hub.claim_nick(member, member.nick)
        except IrcError:
            return None
        return member

    def _find_remote(self, nick: str, node: str) -> RemoteUser | None:
        member = self.chat.hub.find(nick)
        return member if isinstance(member, RemoteUser) and member.node == node else None

    def _load_snapshot(self, r: Any) -> None:
        """The users and rooms of the nodes already running, and the cluster's topics."""
        topics = {k: tuple(json.loads(v)) for k, v in r.hgetall(PREFIX + "topics").items()}
        self.chat.hub.remember_topics({k: (t[0], t[1], int(t[2] * 1000)) for k, t in topics.items()})
        users: dict[str, RemoteUser] = {}
        for node in r.smembers(PREFIX + "nodes"):
            if node == self.node:
                continue
            for key, raw in r.hgetall(PREFIX + "users:" + node).items():
                member = self._remote(json.loads(raw), node)
                if member is not None:
                    users[key] = member
        for room_key, name in r.hgetall(PREFIX + "rooms").items():
            for nick_key, node in r.hgetall(PREFIX + "room:" + room_key).items():
                member = users.get(nick_key)
                if member is not None and member.node == node:
                    self.chat.hub.join(member, name)

    def _load_history(self, r: Any) -> None:
        """Copy every room's stream into this node's history (duplicates are ignored there)."""
        history = self.history
        if history is None:
            return
        count = 0
        for room_key in r.hkeys(PREFIX + "rooms"):
            for _, fields in r.xrange(HISTORY.stream(room_key)):
                history.add(fields["room"], fields["msgid"], float(fields["time"]), fields["source"],
                            fields["command"], fields["text"])
                count += 1
        if count:
            log.info("copied %d room messages from the cluster's history", count)

    # -- heartbeats -------------------------------------------------------------

    def _beat(self) -> None:
        if self._redis is not None:
            self._redis.set(PREFIX + "alive:" + self.node, str(time.time()), px=HEARTBEAT_TTL_MS)

    def _heartbeat_loop(self) -> None:
        next_check = time.monotonic() + CHECK_EVERY
        while not self._stop.wait(HEARTBEAT_EVERY):
            try:
                self._beat()
                if self._redis is not None and not self._redis.sismember(PREFIX + "nodes", self.node):
                    # The sender recovers (announces this node again) before sending anything more.
                    self._mark_down(f"node {self.node} is not known to Redis: Redis restarted, or this node "
                                    "was taken for dead")
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + CHECK_EVERY
                    self._check_nodes()
            except (redis.RedisError, OSError) as err:
                if not self._stop.is_set():
                    self._mark_down(err)
            except Exception:
                log.exception("cluster heartbeat failed")

    def _reader(self) -> redis.Redis | None:
        """The client history reads use, or None while Redis is known to be away (read the local copy)."""
        return None if self._down or self._redis is None else self._reads

    def _recover(self, r: Any) -> None:
        """Redis answers again (sender thread, before sending what is held): put back what it lost,
        announce this node's users and rooms, and copy into the local copy what the others said."""
        self._store_sha = r.script_load(STORE)
        self._restore_history(r)
        self._rejoin(r)
        self._load_history(r)

    def _restore_history(self, r: Any) -> None:
        """If Redis lost the shared history (restarted empty), put each room's stream back from
        this node's copy, before any new message goes in; then mark the streams ready."""
        history = self.history
        if r.exists(HISTORY.ready):
            return
        rooms = count = 0
        for room in history.rooms() if history is not None else []:
            rows = history.local.latest(room, STREAM_MAX) if history is not None else []
            args = [value for row in rows for value in stored_args(row)]
            added = self._seed(keys=[HISTORY.stream(room), HISTORY.index(room)], args=args) if args else 0
            if added:
                rooms += 1
                count += int(added)
        r.set(HISTORY.ready, self.node)
        if count:
            log.warning("put back %d messages of %d rooms into the shared history from this node's copy", count, rooms)

    def _rejoin(self, r: Any) -> None:
        """Announce this node's users and rooms again: Redis was restarted (emptied), or the
        others took this node for dead while it could not reach Redis, or events were lost."""
        log.info("announcing this node's users to the cluster again")
        r.sadd(PREFIX + "nodes", self.node)
        hub = self.chat.hub
        for view in hub.rooms():
            if view.topic:
                r.hset(PREFIX + "topics", fold(view.name), json.dumps([view.topic, view.topic_setter, view.topic_time]))
        collided = False
        for member in hub.users():
            if isinstance(member, RemoteUser):
                continue
            key = PREFIX + "nick:" + fold(member.nick)
            if not r.set(key, self.node, nx=True) and r.get(key) != self.node:
                log.warning("nick %s was taken on another node meanwhile: disconnecting the user here", member.nick)
                # Out of the hub at once (its QUIT told here), so the other node's holder can be mirrored.
                quit_envelope = Envelope(Message("QUIT", ("Nick collision",), getattr(member, "prefix", member.nick)))
                for local in hub.remove(member):
                    local.deliver(quit_envelope)
                kill = getattr(member, "kill", None)
                if kill is not None:
                    kill("Nick collision")
                collided = True
                continue
            r.hset(PREFIX + "users:" + self.node, fold(member.nick), json.dumps(_user_info(member)))
            for room in hub.rooms_of(member):
                r.hset(PREFIX + "rooms", fold(room), room)
                r.hset(PREFIX + "room:" + fold(room), fold(member.nick), self.node)
        if collided:
            self._send_state("sync")  # the winners' nodes announce them again, now that they fit here
        self._announce()

    def _announce(self) -> None:
        """Tell the other nodes every local user and their rooms; the roster at the end makes
        them drop whoever quit or parted while they could not hear of it."""
        hub = self.chat.hub
        roster: dict[str, list[str]] = {}
        for member in hub.users():
            if isinstance(member, RemoteUser):
                continue
            info = _user_info(member)
            self._send_state("hello", user=info)
            rooms = hub.rooms_of(member)
            roster[fold(member.nick)] = [fold(room) for room in rooms]
            for room in rooms:
                envelope = Envelope(Message("JOIN", (room,), getattr(member, "prefix", member.nick)))
                self._send_state("join", envelope, user=info, room=room)
        self._send_state("roster", roster=roster)

    def _check_nodes(self) -> None:
        r: Any = self._redis
        if r is None:
            return
        nodes = [x for x in r.smembers(PREFIX + "nodes") if x != self.node]
        # Nodes whose users are still mirrored here count too, in case another node forgot them first.
        nodes += [u.node for u in self.chat.hub.users() if isinstance(u, RemoteUser) and u.node not in nodes]
        for node in set(nodes):
            if not r.exists(PREFIX + "alive:" + node):
                count = self._forget_node(args=[PREFIX, node])
                log.warning("node %s stopped answering; freed %s of its users", node, count)
                self._node_gone(node, "Server went away")

    def _node_gone(self, node: str, reason: str) -> None:
        """Every user of a node that left quits for the local members who shared a room with them."""
        hub = self.chat.hub
        for member in hub.users():
            if isinstance(member, RemoteUser) and member.node == node:
                envelope = Envelope(Message("QUIT", (reason,), member.prefix))
                for local in hub.remove(member):
                    local.deliver(envelope)
