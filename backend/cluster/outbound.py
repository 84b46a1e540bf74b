"""This node's events, told to the others: each becomes one Held for the sender.

An event's Held carries the Redis writes that keep the registry right (users:<node>,
room:<room>, rooms, topics, a released nick claim), a stream entry for a room
message or topic, and the payload published on CHANNEL. Each Held's writes use the
values taken when the event happened: it may be sent much later (held in an outage).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..core.envelope import Envelope
from ..core.events import (
    AwayChanged,
    Event,
    Joined,
    Kicked,
    ModeChanged,
    Parted,
    PrivateMessage,
    Quit,
    RealnameChanged,
    Redacted,
    Registered,
    Renamed,
    RoomMessage,
    TopicChanged,
)
from ..core.history import DM_PREFIX, kept, kept_tags, kept_text
from ..core.hub import Member
from ..irc import fold
from .mirror import RemoteUser
from .scripts import Scripts
from .sender import Held
from .streams import FORGET, entry_args
from .wire import HISTORY, ROOMS, TOPICS, nick_key, payload, room_key, user_info, users_key


class Outbound:
    """Turns this node's events into Helds and submits them (submit is Sender.submit)."""

    def __init__(self, node: str, submit: Callable[[Held], None], scripts: Scripts) -> None:
        self.node = node
        self._submit = submit
        self._scripts = scripts

    def publish(self, event: Event) -> None:
        """Queue what the other nodes must hear of event (nothing, for a private message to a user here)."""
        match event:
            case RoomMessage(room, envelope):
                *lines, last = envelope.parts()
                for part in lines:  # a multiline message is kept line by line, like the node's own copy
                    self._submit(Held(room=room, entry=self._entry(room, part)))
                self._submit(self._room_event(room, envelope, stored=last))
            case TopicChanged(room, envelope):
                self._topic(room, envelope)
            case Joined(user, room, envelope):
                self._joined(user, room, envelope)
            case Parted(user, room, envelope):
                self._parted(user, room, envelope)
            case Quit(user, rooms, envelope):
                self._quit(user, rooms, envelope)
            case Renamed(old_nick, user, rooms, envelope):
                self._renamed(old_nick, user, rooms, envelope)
            case Registered(user):
                self._user(user, "hello", user=user_info(user))
            case ModeChanged(room, envelope):
                self._submit(Held(payload=self._payload("mode", envelope, room=room)))
            case Kicked(room, target, envelope):
                nick = fold(target.nick)
                self._submit(Held(writes=lambda p: p.hdel(room_key(fold(room)), nick),
                                  payload=self._payload("kick", envelope, room=room, target=target.nick)))
            case AwayChanged(user, envelope):
                self._user(user, "away", envelope, nick=user.nick, text=user.away or "")
            case RealnameChanged(user, envelope):
                self._user(user, "setname", envelope, nick=user.nick, realname=user.realname)
            case Redacted(key, msgids, envelope, target):
                self._redacted(key, msgids, envelope, target)
            case PrivateMessage(RemoteUser() as target, envelope):
                self._submit(Held(payload=self._payload("private", envelope, target=target.nick,
                                                        to_node=target.node)))

    def _redacted(self, key: str, msgids: tuple[str, ...], envelope: Envelope | None, target: Member | None) -> None:
        """Kept lines taken back: out of a room's stream, and out of every node's copy (the others are told).
        A private conversation has no stream (it is kept by its users' node); its REDACT goes to the other
        end's node."""
        ids = list(msgids)
        if key.startswith(DM_PREFIX):
            if isinstance(target, RemoteUser):
                self._submit(Held(payload=self._payload("redact", envelope, key=key, msgids=ids,
                                                        target=target.nick, to_node=target.node)))
            return

        def writes(p: Any) -> None:
            p.eval(FORGET, 2, HISTORY.stream(key), HISTORY.index(key), *ids)

        self._submit(Held(writes=writes, payload=self._payload("redact", envelope, key=key, msgids=ids)))

    def release(self, nick: str) -> None:
        """Give up this node's claim on nick (queued, in order with the events before it)."""
        key = nick_key(fold(nick))
        self._submit(Held(writes=lambda p: self._release(key, p)))

    def _release(self, key: str, pipe: Any) -> None:
        # Only a claim still ours: another node may hold the nick by now (after an outage).
        self._scripts.release(keys=[key], args=[self.node], client=pipe)

    def _payload(self, kind: str, envelope: Envelope | None = None, **extra: Any) -> str:
        return payload(self.node, kind, envelope, **extra)

    def _user(self, member: Member, kind: str, envelope: Envelope | None = None, **extra: Any) -> None:
        """Registered ("hello"), away or setname: the user's entry in users:<node>, told to the others."""
        info, nick = user_info(member), fold(member.nick)
        self._submit(Held(writes=lambda p: p.hset(users_key(self.node), nick, json.dumps(info)),
                          payload=self._payload(kind, envelope, **extra)))

    def _joined(self, user: Member, room: str, envelope: Envelope) -> None:
        nick = fold(user.nick)

        def writes(p: Any) -> None:
            p.hset(ROOMS, fold(room), room)
            p.hset(room_key(fold(room)), nick, self.node)

        self._submit(Held(writes=writes, payload=self._payload("join", envelope, user=user_info(user), room=room)))

    def _parted(self, user: Member, room: str, envelope: Envelope) -> None:
        nick = fold(user.nick)
        self._submit(Held(writes=lambda p: p.hdel(room_key(fold(room)), nick),
                          payload=self._payload("part", envelope, nick=user.nick, room=room)))

    def _quit(self, user: Member, rooms: tuple[str, ...], envelope: Envelope) -> None:
        nick = fold(user.nick)

        def writes(p: Any) -> None:
            p.hdel(users_key(self.node), nick)
            for room in rooms:
                p.hdel(room_key(fold(room)), nick)
            self._release(nick_key(nick), p)

        self._submit(Held(writes=writes, payload=self._payload("quit", envelope, nick=user.nick)))

    def _renamed(self, old: str, user: Member, rooms: tuple[str, ...], envelope: Envelope) -> None:
        info = user_info(user)
        new = fold(user.nick)

        def writes(p: Any) -> None:
            p.hdel(users_key(self.node), fold(old))
            p.hset(users_key(self.node), new, json.dumps(info))
            for room in rooms:
                p.hdel(room_key(fold(room)), fold(old))
                p.hset(room_key(fold(room)), new, self.node)
            if fold(old) != new:
                self._release(nick_key(fold(old)), p)

        self._submit(Held(writes=writes, payload=self._payload("nick", envelope, nick=old, new=user.nick)))

    def _topic(self, room: str, envelope: Envelope) -> None:
        m = envelope.message
        value = json.dumps([m.params[-1], m.source or "", envelope.time])
        self._submit(self._room_event(room, envelope, lambda p: p.hset(TOPICS, fold(room), value)))

    def _room_event(self, room: str, envelope: Envelope, writes: Callable[[Any], None] | None = None,
                    stored: Envelope | None = None) -> Held:
        """A room message or topic: kept in the room's stream (stored: what is kept, when not the
        envelope itself), then told to the other nodes."""
        entry = None
        if kept(envelope.message):  # tags alone (typing, unreact) are relayed, never kept; reactions are
            entry = self._entry(room, stored or envelope)
        return Held(writes=writes, room=room, entry=entry, payload=self._payload("room", envelope, room=room))

    def _entry(self, room: str, envelope: Envelope) -> list[str]:
        m = envelope.message
        return entry_args(envelope.msgid, envelope.time, m.source or "", m.command, room, kept_text(m), kept_tags(m))
