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
- ``history:<folded room>``: a capped stream of the room's messages and topics, which a
  node starting later copies into its own history (SQLite) so replay matches;
- ``events``: the one pub/sub channel; each payload is JSON with the origin node,
  the event type and the IRC message fields, time and msgid, so every node shows the
  same msgid and time.

Threads: a subscriber applies other nodes' events to the local Hub and delivers them
to local members; a heartbeat thread refreshes this node's key every second and
every two seconds looks for nodes whose key expired (their users become QUITs here
and their nicks and memberships are freed in Redis). Both stop in close().
No Redis call is made while the hub lock is held: the Hub is only touched through its
own methods, before or after talking to Redis.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.typing import EncodableT, FieldT

from . import numerics as n
from .envelope import Envelope
from .numerics import IrcError
from .protocol import Message, fold

if TYPE_CHECKING:
    from .server import ChatServer
    from .session import Session

log = logging.getLogger("lobby.cluster")

PREFIX = "lobby:"
CHANNEL = PREFIX + "events"
HEARTBEAT_EVERY = 1.0
HEARTBEAT_TTL_MS = 5000
CHECK_EVERY = 2.0
# Room messages kept in each room's Redis stream (about: MAXLEN ~ trims in whole blocks).
STREAM_MAX = 1000

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


def _user_info(session: Session | Any) -> dict[str, str]:
    return {"nick": session.nick, "user": getattr(session, "user", ""), "host": getattr(session, "host", ""),
            "realname": getattr(session, "realname", ""), "away": getattr(session, "away", None) or ""}


class Backplane:
    """This node's link to the others through one Redis server."""

    def __init__(self, url: str, server: ChatServer) -> None:
        self.url = url
        self.server = server
        self.node = uuid.uuid4().hex[:12]
        self._redis: redis.Redis | None = None
        self._pubsub: Any = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._forget_node: Any = None
        self._release: Any = None

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Connect, subscribe, load the other nodes' users and rooms, start the threads.

        Raises BackplaneError when Redis can't be reached.
        """
        try:
            r = redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5,
                                     health_check_interval=10)
            r.ping()
            self._redis = r
            self._forget_node = r.register_script(_FORGET_NODE)
            self._release = r.register_script(_RELEASE)
            self._beat()
            r.sadd(PREFIX + "nodes", self.node)
            # Subscribe before reading the snapshot: events in between are applied twice, harmlessly.
            self._pubsub = r.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            self._pubsub.subscribe(CHANNEL)
            self._load_snapshot(r)
            self._load_history(r)
        except (redis.RedisError, ValueError, OSError) as err:
            self.close(tell=False)
            raise BackplaneError(f"cannot use Redis at {redact(self.url)}: {err}") from err
        for target, name in ((self._subscribe_loop, "cluster-sub"), (self._heartbeat_loop, "cluster-beat")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("node %s joined the cluster at %s", self.node, redact(self.url))

    def close(self, tell: bool = True) -> None:
        """Stop the threads; with tell, free this node's nicks and memberships and tell the others."""
        self._stop.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(3.0)
        r = self._redis
        if tell and r is not None:
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
        if self._redis is None:
            return
        try:
            self._release(keys=[PREFIX + "nick:" + fold(nick)], args=[self.node])
        except redis.RedisError as err:
            log.warning("could not release nick %s (Redis: %s)", nick, err)

    # -- this node's events, told to the others ----------------------------------

    def registered(self, session: Session) -> None:
        info = _user_info(session)
        self._run(lambda r: r.hset(PREFIX + "users:" + self.node, fold(session.nick), json.dumps(info)))
        self._send("hello", user=info)

    def joined(self, session: Session, room: str, envelope: Envelope) -> None:
        def store(r: redis.Redis) -> None:
            pipe = r.pipeline()
            pipe.hset(PREFIX + "rooms", fold(room), room)
            pipe.hset(PREFIX + "room:" + fold(room), fold(session.nick), self.node)
            pipe.execute()

        self._run(store)
        self._send("join", envelope, user=_user_info(session), room=room)

    def parted(self, session: Session, room: str, envelope: Envelope) -> None:
        self._run(lambda r: r.hdel(PREFIX + "room:" + fold(room), fold(session.nick)))
        self._send("part", envelope, nick=session.nick, room=room)

    def quit(self, session: Session, rooms: list[str], envelope: Envelope) -> None:
        def store(r: redis.Redis) -> None:
            pipe = r.pipeline()
            pipe.hdel(PREFIX + "users:" + self.node, fold(session.nick))
            for room in rooms:
                pipe.hdel(PREFIX + "room:" + fold(room), fold(session.nick))
            pipe.execute()

        self._run(store)
        self.release(session.nick)
        self._send("quit", envelope, nick=session.nick)

    def renamed(self, old: str, session: Session, rooms: list[str], envelope: Envelope) -> None:
        def store(r: redis.Redis) -> None:
            pipe = r.pipeline()
            pipe.hdel(PREFIX + "users:" + self.node, fold(old))
            pipe.hset(PREFIX + "users:" + self.node, fold(session.nick), json.dumps(_user_info(session)))
            for room in rooms:
                pipe.hdel(PREFIX + "room:" + fold(room), fold(old))
                pipe.hset(PREFIX + "room:" + fold(room), fold(session.nick), self.node)
            pipe.execute()

        self._run(store)
        if fold(old) != fold(session.nick):
            self.release(old)
        self._send("nick", envelope, nick=old, new=session.nick)

    def topic(self, room: str, envelope: Envelope) -> None:
        m = envelope.message
        value = json.dumps([m.params[-1], (m.source or "").split("!")[0], envelope.time])
        self._run(lambda r: r.hset(PREFIX + "topics", fold(room), value))
        self.room_message(room, envelope)

    def room_message(self, room: str, envelope: Envelope) -> None:
        """A room message or topic: kept in the room's stream, then told to the other nodes."""
        m = envelope.message
        entry: dict[FieldT, EncodableT] = {
            "msgid": envelope.msgid, "time": repr(envelope.time), "source": m.source or "",
            "command": m.command, "room": room, "text": m.params[-1],
        }
        payload = self._payload("room", envelope, room=room)

        def store_and_send(r: redis.Redis) -> None:
            pipe = r.pipeline(transaction=False)  # one round trip for both
            pipe.xadd(PREFIX + "history:" + fold(room), entry, maxlen=STREAM_MAX, approximate=True)
            pipe.publish(CHANNEL, payload)
            pipe.execute()

        self._run(store_and_send)

    def away(self, session: Session) -> None:
        info = _user_info(session)
        self._run(lambda r: r.hset(PREFIX + "users:" + self.node, fold(session.nick), json.dumps(info)))
        self._send("away", nick=session.nick, text=session.away or "")

    def private(self, target: RemoteUser, envelope: Envelope) -> None:
        self._send("private", envelope, target=target.nick, to_node=target.node)

    def _send(self, kind: str, envelope: Envelope | None = None, **extra: Any) -> None:
        payload = self._payload(kind, envelope, **extra)
        self._run(lambda r: r.publish(CHANNEL, payload))

    def _payload(self, kind: str, envelope: Envelope | None = None, **extra: Any) -> str:
        payload: dict[str, Any] = {"node": self.node, "type": kind, **extra}
        if envelope is not None:
            m = envelope.message
            payload.update(command=m.command, params=list(m.params), source=m.source, tags=m.tags,
                           time=envelope.time, msgid=envelope.msgid)
        return json.dumps(payload)

    def _run(self, action: Any) -> None:
        r = self._redis
        if r is None:
            return
        try:
            action(r)
        except redis.RedisError as err:
            log.warning("Redis call failed, other nodes may miss an event: %s", err)

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
                lost = True
                self._stop.wait(1.0)
                continue
            if lost:
                # Subscribed again: events sent meanwhile are lost, so every node announces its users anew.
                lost = False
                log.warning("subscribed to Redis again; asking every node for its users")
                self._send("sync")
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
        hub = self.server.hub
        kind = event["type"]
        node = event["node"]
        envelope = None
        if "command" in event:
            envelope = Envelope(Message(event["command"], tuple(event["params"]), event["source"], event["tags"]),
                                time=event["time"], msgid=event["msgid"])
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
            self.server.on_room_event(room, envelope)  # stored before anyone here can see it
            hub.publish(room, envelope, relay=False)
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
        hub = self.server.hub
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
        hub = self.server.hub
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
        member = self.server.hub.find(nick)
        return member if isinstance(member, RemoteUser) and member.node == node else None

    def _load_snapshot(self, r: Any) -> None:
        """The users and rooms of the nodes already running, and the cluster's topics."""
        topics = {k: tuple(json.loads(v)) for k, v in r.hgetall(PREFIX + "topics").items()}
        self.server.hub.remember_topics({k: (t[0], t[1], int(t[2] * 1000)) for k, t in topics.items()})
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
                    self.server.hub.join(member, name)

    def _load_history(self, r: Any) -> None:
        """Copy every room's stream into this node's history (duplicates are ignored there)."""
        history = self.server.history
        if history is None:
            return
        count = 0
        for room_key in r.hkeys(PREFIX + "rooms"):
            for _, fields in r.xrange(PREFIX + "history:" + room_key):
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
                    self._rejoin()
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + CHECK_EVERY
                    self._check_nodes()
            except redis.RedisError as err:
                if not self._stop.is_set():
                    log.warning("Redis heartbeat failed: %s", err)
            except Exception:
                log.exception("cluster heartbeat failed")

    def _rejoin(self) -> None:
        """Announce this node's users and rooms again: Redis was restarted (emptied), or the
        others took this node for dead while it could not reach Redis."""
        r: Any = self._redis
        if r is None:
            return
        log.warning("node %s is not known to Redis (Redis restarted, or this node was taken for dead): "
                    "announcing its users again", self.node)
        r.sadd(PREFIX + "nodes", self.node)
        hub = self.server.hub
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
            self._send("sync")  # the winners' nodes announce them again, now that they fit here
        self._announce()

    def _announce(self) -> None:
        """Tell the other nodes every local user and their rooms; the roster at the end makes
        them drop whoever quit or parted while they could not hear of it."""
        hub = self.server.hub
        roster: dict[str, list[str]] = {}
        for member in hub.users():
            if isinstance(member, RemoteUser):
                continue
            info = _user_info(member)
            self._send("hello", user=info)
            rooms = hub.rooms_of(member)
            roster[fold(member.nick)] = [fold(room) for room in rooms]
            for room in rooms:
                envelope = Envelope(Message("JOIN", (room,), getattr(member, "prefix", member.nick)))
                self._send("join", envelope, user=info, room=room)
        self._send("roster", roster=roster)

    def _check_nodes(self) -> None:
        r: Any = self._redis
        if r is None:
            return
        nodes = [x for x in r.smembers(PREFIX + "nodes") if x != self.node]
        # Nodes whose users are still mirrored here count too, in case another node forgot them first.
        nodes += [u.node for u in self.server.hub.users() if isinstance(u, RemoteUser) and u.node not in nodes]
        for node in set(nodes):
            if not r.exists(PREFIX + "alive:" + node):
                count = self._forget_node(args=[PREFIX, node])
                log.warning("node %s stopped answering; freed %s of its users", node, count)
                self._node_gone(node, "Server went away")

    def _node_gone(self, node: str, reason: str) -> None:
        """Every user of a node that left quits for the local members who shared a room with them."""
        hub = self.server.hub
        for member in hub.users():
            if isinstance(member, RemoteUser) and member.node == node:
                envelope = Envelope(Message("QUIT", (reason,), member.prefix))
                for local in hub.remove(member):
                    local.deliver(envelope)
