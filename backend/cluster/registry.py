"""Who is where, cluster-wide: nick claims, the user and room hashes, and announcing them.

Redis keeps (see wire.py for the key names): ``nick:<folded>`` = node id, the atomic
cluster-wide nick claim (SET NX); ``users:<node>``, folded nick -> JSON user;
``room:<folded>``, folded nick -> node id; ``rooms``, folded room -> name; ``topics``,
folded room -> JSON topic; ``nodes``, the set of node ids. A node reads them once at
start (load_snapshot) and then follows the events; after an outage it writes its own
part again (rejoin) and announces its users, so the others drop what they missed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import redis

from ..core.chat import Chat
from ..core.envelope import Envelope
from ..irc import IrcError, Message, fold
from ..irc import numerics as n
from .mirror import Mirror, RemoteUser
from .sender import Held, Sender
from .wire import NODES, ROOMS, TOPICS, nick_key, payload, room_key, user_info, users_key

log = logging.getLogger("lobby.cluster")


class Registry:
    """This node's nick claims and its users' entries in Redis; client() is the Redis client or None."""

    def __init__(self, node: str, chat: Chat, mirror: Mirror, sender: Sender, client: Callable[[], Any]) -> None:
        self.node = node
        self.hub = chat.hub
        self._mirror = mirror
        self._sender = sender
        self._client = client

    def claim(self, nick: str) -> bool:
        """Claim nick for this node; True if newly claimed, False if this node held it already.

        Raises 433 if another node holds it. If Redis is unreachable the claim is local only
        (logged), so a node keeps serving its users.
        """
        r = self._client()
        if r is None:
            return False
        if self._sender.down:  # don't make the user wait on a Redis known to be away; claimed again when it is back
            log.warning("nick claim for %s not checked cluster-wide (Redis unreachable)", nick)
            return False
        key = nick_key(fold(nick))
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

    def load_snapshot(self, r: Any) -> None:
        """The users and rooms of the nodes already running, and the cluster's topics."""
        topics = {k: tuple(json.loads(v)) for k, v in r.hgetall(TOPICS).items()}
        self.hub.remember_topics({k: (t[0], t[1], int(t[2] * 1000)) for k, t in topics.items()})
        users: dict[str, RemoteUser] = {}
        for node in r.smembers(NODES):
            if node == self.node:
                continue
            for key, raw in r.hgetall(users_key(node)).items():
                member = self._mirror.remote(json.loads(raw), node)
                if member is not None:
                    users[key] = member
        for folded_room, name in r.hgetall(ROOMS).items():
            for nick_folded, node in r.hgetall(room_key(folded_room)).items():
                member = users.get(nick_folded)
                if member is not None and member.node == node:
                    self.hub.join(member, name)

    def rejoin(self, r: Any) -> None:
        """Write this node's users and rooms again, then announce them: Redis was restarted
        (emptied), or the others took this node for dead while it could not reach Redis."""
        log.info("announcing this node's users to the cluster again")
        r.sadd(NODES, self.node)
        hub = self.hub
        for view in hub.rooms():
            if view.topic:
                r.hset(TOPICS, fold(view.name), json.dumps([view.topic, view.topic_setter, view.topic_time]))
        collided = False
        for member in hub.users():
            if isinstance(member, RemoteUser):
                continue
            key = nick_key(fold(member.nick))
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
            r.hset(users_key(self.node), fold(member.nick), json.dumps(user_info(member)))
            for room in hub.rooms_of(member):
                r.hset(ROOMS, fold(room), room)
                r.hset(room_key(fold(room)), fold(member.nick), self.node)
        if collided:
            self.send_state("sync")  # the winners' nodes announce them again, now that they fit here
        self.announce()

    def announce(self) -> None:
        """Tell the other nodes every local user and their rooms; the roster at the end makes
        them drop whoever quit or parted while they could not hear of it."""
        hub = self.hub
        roster: dict[str, list[str]] = {}
        for member in hub.users():
            if isinstance(member, RemoteUser):
                continue
            info = user_info(member)
            self.send_state("hello", user=info)
            rooms = hub.rooms_of(member)
            roster[fold(member.nick)] = [fold(room) for room in rooms]
            for room in rooms:
                envelope = Envelope(Message("JOIN", (room,), getattr(member, "prefix", member.nick)))
                self.send_state("join", envelope, user=info, room=room)
        self.send_state("roster", roster=roster)

    def send_state(self, kind: str, envelope: Envelope | None = None, **extra: Any) -> None:
        """Queue an event announcing this node's state: unbounded, so that it never pushes out
        the events held before it (its size is bounded by the number of local users)."""
        self._sender.submit(Held(payload=payload(self.node, kind, envelope, **extra)), bounded=False)
