"""The Hub: who is online, which rooms exist, and who is in them.

All of it sits behind one lock. Each method makes one whole change and returns
who must be told; the caller sends after the lock is released, so no network I/O
ever happens under the lock (Ergo's rule). Delivery is Member.deliver, which
only queues bytes and never blocks; Chat.publish (core/chat.py) is where it happens.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from ..irc import IrcError, fold
from ..irc import numerics as n
from .envelope import Envelope


class Member(Protocol):
    """A user in the hub: a Client here, or a user of another node (cluster/mirror.py)."""

    nick: str
    user: str
    host: str
    realname: str
    away: str | None

    @property
    def prefix(self) -> str:
        """nick!user@host."""
        ...

    def deliver(self, envelope: Envelope) -> None:
        """Queue an envelope for sending; never blocks."""
        ...


@dataclass(eq=False)
class Room:
    """A channel: its name as first written, topic and members by folded nick."""

    name: str
    created: float = field(default_factory=time.time)
    topic: str = ""
    topic_setter: str = ""
    topic_time: float = 0.0
    members: dict[str, Member] = field(default_factory=dict)


@dataclass(frozen=True)
class RoomView:
    """A consistent snapshot of a room, taken under the lock."""

    name: str
    created: float
    topic: str
    topic_setter: str
    topic_time: float
    nicks: tuple[str, ...]
    members: tuple[Member, ...]

    def prefixes(self) -> list[str]:
        """nick!user@host of each member (userhost-in-names); made only when asked, outside the lock."""
        return [m.prefix for m in self.members]


def _view(room: Room) -> RoomView:
    members = tuple(room.members.values())
    return RoomView(room.name, room.created, room.topic, room.topic_setter, room.topic_time,
                    tuple(m.nick for m in members), members)


class Hub:
    """Users and rooms behind one lock; see the module docstring for the rules."""

    def __init__(self, persistent_rooms: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._users: dict[str, Member] = {}
        self._rooms: dict[str, Room] = {}
        self._rooms_of: dict[Member, set[str]] = {}
        self._persistent = {fold(r) for r in persistent_rooms}
        # Topics outlive their rooms: a room that empties and is joined again keeps its topic.
        self._topics: dict[str, tuple[str, str, float]] = {}

    def remember_topics(self, topics: dict[str, tuple[str, str, int]]) -> None:
        """Load saved topics (folded room -> text, setter's nick!user@host, ms since epoch), e.g. from history."""
        with self._lock:
            for key, (text, setter, ts_ms) in topics.items():
                self._topics[fold(key)] = (text, setter, ts_ms / 1000)
                if (room := self._rooms.get(fold(key))) is not None:
                    room.topic, room.topic_setter, room.topic_time = self._topics[fold(key)]

    # -- users --------------------------------------------------------------

    def claim_nick(self, member: Member, nick: str) -> None:
        """Register member under nick, or raise 433 if someone holds it."""
        key = fold(nick)
        with self._lock:
            holder = self._users.get(key)
            if holder is not None and holder is not member:
                raise IrcError(n.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
            self._users[key] = member
            self._rooms_of.setdefault(member, set())

    def rename(self, member: Member, new_nick: str) -> list[Member]:
        """Change member's nick; return everyone who must see the NICK (member included)."""
        new_key = fold(new_nick)
        with self._lock:
            holder = self._users.get(new_key)
            if holder is not None and holder is not member:
                raise IrcError(n.ERR_NICKNAMEINUSE, new_nick, "Nickname is already in use")
            old_key = fold(member.nick)
            if self._users.get(old_key) is member:
                del self._users[old_key]
            self._users[new_key] = member
            for room_key in self._rooms_of.get(member, ()):
                members = self._rooms[room_key].members
                members.pop(old_key, None)
                members[new_key] = member
            member.nick = new_nick
            return [member, *self._peers(member)]

    def remove(self, member: Member) -> list[Member]:
        """Take member off the network; return the peers who shared a room with it."""
        with self._lock:
            peers = self._peers(member)
            key = fold(member.nick)
            if self._users.get(key) is member:
                del self._users[key]
            for room_key in self._rooms_of.pop(member, set()):
                self._leave(room_key, member)
            return peers

    def peers(self, member: Member) -> list[Member]:
        """Everyone who shares a room with member (member excluded)."""
        with self._lock:
            return self._peers(member)

    def find(self, nick: str) -> Member | None:
        """The member holding nick, if any."""
        with self._lock:
            return self._users.get(fold(nick))

    def user_count(self) -> int:
        """How many registered users are online."""
        with self._lock:
            return len(self._users)

    def room_count(self) -> int:
        """How many rooms exist (without the snapshots rooms() makes)."""
        with self._lock:
            return len(self._rooms)

    def users(self) -> list[Member]:
        """Every registered user."""
        with self._lock:
            return list(self._users.values())

    # -- rooms --------------------------------------------------------------

    def join(self, member: Member, name: str) -> tuple[RoomView, list[Member]] | None:
        """Add member to a room, creating it; None if already there, else (view, members)."""
        key = fold(name)
        with self._lock:
            room = self._rooms.get(key)
            if room is None:
                room = self._rooms[key] = Room(name)
                if key in self._topics:
                    room.topic, room.topic_setter, room.topic_time = self._topics[key]
            nick_key = fold(member.nick)
            if room.members.get(nick_key) is member:
                return None
            room.members[nick_key] = member
            self._rooms_of.setdefault(member, set()).add(key)
            return _view(room), list(room.members.values())

    def part(self, member: Member, name: str) -> tuple[str, list[Member]]:
        """Remove member from a room; return its name and who was in it (member included)."""
        key = fold(name)
        with self._lock:
            room = self._rooms.get(key)
            if room is None:
                raise IrcError(n.ERR_NOSUCHCHANNEL, name, "No such channel")
            if room.members.get(fold(member.nick)) is not member:
                raise IrcError(n.ERR_NOTONCHANNEL, name, "You're not on that channel")
            told = list(room.members.values())
            self._rooms_of.get(member, set()).discard(key)
            self._leave(key, member)
            return room.name, told

    def set_topic(
        self, member: Member, name: str, topic: str, when: float | None = None
    ) -> tuple[str, list[Member]]:
        """Set a room's topic; return its name and members. Only members may set it."""
        with self._lock:
            room = self._member_room(member, name)
            room.topic = topic
            room.topic_setter = member.prefix
            room.topic_time = time.time() if when is None else when
            self._topics[fold(name)] = (topic, member.prefix, room.topic_time)
            return room.name, list(room.members.values())

    def room(self, name: str) -> RoomView | None:
        """A snapshot of a room, or None."""
        with self._lock:
            room = self._rooms.get(fold(name))
            return _view(room) if room else None

    def require_member(self, member: Member, name: str) -> str:
        """The name of a room member is in, as first written; raise 403/442 otherwise.

        Once per message said in a room: no snapshot of the members is made.
        """
        with self._lock:
            return self._member_room(member, name).name

    def rooms(self) -> list[RoomView]:
        """Snapshots of every room."""
        with self._lock:
            return [_view(r) for r in self._rooms.values()]

    def rooms_of(self, member: Member) -> list[str]:
        """Names of the rooms member is in."""
        with self._lock:
            return [self._rooms[k].name for k in self._rooms_of.get(member, ())]

    def members_of(self, name: str) -> list[Member]:
        """Who is in a room right now."""
        with self._lock:
            room = self._rooms.get(fold(name))
            return list(room.members.values()) if room else []

    # -- internals (lock held) ------------------------------------------------

    def _member_room(self, member: Member, name: str) -> Room:
        room = self._rooms.get(fold(name))
        if room is None:
            raise IrcError(n.ERR_NOSUCHCHANNEL, name, "No such channel")
        if room.members.get(fold(member.nick)) is not member:
            raise IrcError(n.ERR_NOTONCHANNEL, name, "You're not on that channel")
        return room

    def _leave(self, key: str, member: Member) -> None:
        room = self._rooms[key]
        nick_key = fold(member.nick)
        if room.members.get(nick_key) is member:
            del room.members[nick_key]
        if not room.members and key not in self._persistent:
            del self._rooms[key]

    def _peers(self, member: Member) -> list[Member]:
        seen: dict[int, Member] = {}
        for key in self._rooms_of.get(member, ()):
            for other in self._rooms[key].members.values():
                if other is not member:
                    seen[id(other)] = other
        return list(seen.values())
