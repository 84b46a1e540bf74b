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
from dataclasses import dataclass
from operator import add, attrgetter

from ..irc import IrcError, fold
from ..irc import numerics as n
from .audience import Audience
from .client import Client, SharedUser
from .room import Change, ListEntry, Member, Room, Sight

# A status as NAMES shows it: "ov" -> "@+".
PREFIX_OF = {"o": "@", "v": "+", "ov": "@+"}
# The same with None (no status) -> "", and a NAMES prefix to its highest (without multi-prefix).
_PREFIX_OR_NONE: dict[str | None, str] = {None: "", "o": "@", "v": "+", "ov": "@+"}
_HIGHEST = {"": "", "@": "@", "+": "+", "@+": "@"}
_PREFIX = attrgetter("prefix")

__all__ = ["Change", "Hub", "ListEntry", "Member", "Room", "RoomView", "Sight"]


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
    # Each member's status prefix ("@", "+", "@+" or ""), in the order of nicks.
    status: tuple[str, ...] = ()
    modes: tuple[str, ...] = ("+",)
    secret: bool = False
    # How many members the room has: under +D or +u a view made for one member may show fewer.
    size: int = 0

    def prefixes(self) -> list[str]:
        """nick!user@host of each member (userhost-in-names); made only when asked, outside the lock."""
        return list(map(_PREFIX, self.members))

    def names(self, multi_prefix: bool, userhost: bool) -> list[str]:
        """NAMES entries: status prefix (the highest, or all with multi-prefix) and nick or nick!user@host."""
        # map() rather than a comprehension: made at every join, for every member of the room.
        shown = self.prefixes() if userhost else self.nicks
        marks = self.status if multi_prefix else map(_HIGHEST.__getitem__, self.status)
        return list(map(add, marks, shown))

    def has(self, member: Member) -> bool:
        """Whether member (or, for a connection, its user) is in the room."""
        member = _user(member)
        return any(m is member for m in self.members)


def _user(member: Member) -> Member:
    """The hub's member for a connection: its user's SharedUser when it shares it (multiclient)."""
    return member.member if isinstance(member, Client) else member


def _view(room: Room, show_key: bool = False, viewer: str | None = None) -> RoomView:
    """A snapshot of room; with viewer (a folded nick), only the members shown to them (+D, +u)."""
    # Keyed by folded nick already: no casefold per member. A view is made at every join, so
    # the per-member steps are map()s over C functions rather than Python loops.
    if viewer is not None and room.filtered():
        keys = room.shown_to(viewer)
        members = tuple(map(room.members.__getitem__, keys))
        nicks = tuple(map(room.nicks.__getitem__, keys))
        status = tuple(map(_PREFIX_OR_NONE.__getitem__, map(room.status.get, keys)))
    else:
        members = tuple(room.members.values())
        nicks = tuple(room.nicks.values())
        status = tuple(map(_PREFIX_OR_NONE.__getitem__, map(room.status.get, room.members)))
    return RoomView(room.name, room.created, room.topic, room.topic_setter, room.topic_time,
                    nicks, members, status, room.mode_string(show_key), "s" in room.modes, len(room.members))


class Hub:
    """Users and rooms behind one lock; see the module docstring for the rules."""

    def __init__(self, persistent_rooms: Iterable[str] = (), persistent_modes: str = "n") -> None:
        self._lock = threading.Lock()
        self._users: dict[str, Member] = {}
        self._rooms: dict[str, Room] = {}
        self._rooms_of: dict[Member, set[str]] = {}
        self._persistent = {fold(r): r for r in persistent_rooms}
        # The auto-join rooms have no creator to be their operator: by default anyone may set
        # their topic (no +t), as before rooms had operators; the configuration can say otherwise.
        self._persistent_modes = set(persistent_modes)
        # Settings outlive their rooms: a room that empties and is joined again keeps its topic,
        # modes and lists (Room.settings()); one with nothing set is forgotten.
        self._saved: dict[str, dict[str, object]] = {}
        # Each room's members sorted for delivering what is said there (core/audience.py), made on
        # the first message after the room last changed: a join, a part, a nick.
        self._audiences: dict[str, Audience] = {}

    def remember_topics(self, topics: dict[str, tuple[str, str, int]]) -> None:
        """Load saved topics (folded room -> text, setter's nick!user@host, ms since epoch), e.g. from history."""
        with self._lock:
            for key, (text, setter, ts_ms) in topics.items():
                saved = self._saved.setdefault(fold(key), {"name": key})
                saved.update(topic=text, topic_setter=setter, topic_time=ts_ms / 1000)
                if (room := self._rooms.get(fold(key))) is not None:
                    room.topic, room.topic_setter, room.topic_time = text, setter, ts_ms / 1000

    def remember_rooms(self, rooms: Iterable[dict[str, object]]) -> None:
        """Load rooms' saved settings (Room.settings(), e.g. from store/rooms.py), for when each is next made."""
        with self._lock:
            for saved in rooms:
                key = fold(str(saved["name"]))
                self._saved[key] = {**self._saved.get(key, {}), **saved}
                if (room := self._rooms.get(key)) is not None:
                    room.restore(saved)

    def settings(self, name: str) -> dict[str, object] | None:
        """A room's settings as they are now (for storing), or None when there is no such room."""
        with self._lock:
            room = self._rooms.get(fold(name))
            return room.settings() if room is not None else None

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
            member = _user(member)
            holder = self._users.get(new_key)
            if holder is not None and holder is not member:
                raise IrcError(n.ERR_NICKNAMEINUSE, new_nick, "Nickname is already in use")
            old_key = fold(member.nick)
            if self._users.get(old_key) is member:
                del self._users[old_key]
            self._users[new_key] = member
            for room_key in self._rooms_of.get(member, ()):
                room = self._rooms[room_key]
                room.rename(old_key, new_key, member, new_nick)
                self._audiences.pop(room_key, None)
            member.nick = new_nick
            return [member, *self._peers(member)]

    def remove(self, member: Member) -> list[Member]:
        """Take member off the network; return the peers who shared a room with it."""
        with self._lock:
            return self._remove(_user(member))

    def attach(self, holder: Member, conn: Client) -> SharedUser | None:
        """Make conn one more connection of holder's user (multiclient); None if holder is gone meanwhile.

        A user's first extra connection turns its hub member into a SharedUser of both, in the
        users, the rooms and their lists at once, so nobody sees a change of member.
        """
        with self._lock:
            key = fold(holder.nick)
            if self._users.get(key) is not holder or not isinstance(holder, Client):
                return None
            if isinstance(holder, SharedUser) and not holder.connections():
                return None  # its last connection is leaving: the nick is about to be free
            shared = holder if isinstance(holder, SharedUser) else None
            if shared is None:
                shared = SharedUser(holder)
                holder.shared = shared
                self._users[key] = shared
                rooms = self._rooms_of.pop(holder, set())
                self._rooms_of[shared] = rooms
                for room_key in rooms:
                    self._rooms[room_key].members[key] = shared
                    self._audiences.pop(room_key, None)
            conn.state = shared.state
            conn.shared = shared
            shared.add(conn)
            return shared

    def leave(self, conn: Client) -> tuple[Member, list[str], list[Member]] | None:
        """A registered connection ended: None if its user stays (multiclient: another connection
        remains, and nobody sees this one go); else the user, now off the network, the rooms it
        was in and the peers who shared one with it."""
        with self._lock:
            user = _user(conn)
            if isinstance(user, SharedUser) and user.drop(conn) > 0:
                return None
            rooms = [self._rooms[k].name for k in self._rooms_of.get(user, ())]
            return user, rooms, self._remove(user)

    def peers(self, member: Member) -> list[Member]:
        """Everyone who shares a room with member and sees them there (member excluded; +D, +u)."""
        with self._lock:
            member = _user(member)
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

    def join(
        self, member: Member, name: str, key: str = "", privileged: bool = False, account: str | None = None
    ) -> tuple[RoomView, list[Member]] | None:
        """Add member to a room, creating it (its creator becomes its operator, but in a permanent
        room; signed in to account, its founder, operator again whenever they join); None if
        already there, else (view, who sees the joiner, the joiner included). Raises 471/473/474/475
        when the room refuses them, unless privileged (a server operator, or another node's say-so).

        Under +D a joiner without a status is hidden (seen by nobody but themselves); under +u one
        is seen by the operators and voiced members only. The view is what the joiner sees.
        """
        key_ = fold(name)
        with self._lock:
            member = _user(member)
            room = self._rooms.get(key_)
            new = room is None
            room = self._room(key_, name)
            nick_key = fold(member.nick)
            if room.members.get(nick_key) is member:
                return None
            if not privileged:
                room.check_join(member, key)
            room.invited.discard(nick_key)
            room.seat(nick_key, member)
            self._audiences.pop(key_, None)
            if new and key_ not in self._persistent and not room.status and not room.founder:
                room.status[nick_key] = "o"
                if account is not None and not room.founder:
                    room.founder = fold(account)
            if account is not None and room.founder == fold(account):
                room.status[nick_key] = "".join(sorted(set(room.status.get(nick_key, "")) | {"o"}, key="ov".index))
            self._rooms_of.setdefault(member, set()).add(key_)
            if "D" in room.modes and nick_key not in room.status:
                room.hidden.add(nick_key)  # one set insert: a hidden joiner costs no pass over the members
            told = [*room.seers(nick_key), member] if room.filtered() else list(room.members.values())
            return _view(room, show_key=True, viewer=nick_key), told

    def part(self, member: Member, name: str) -> tuple[str, list[Member]]:
        """Remove member from a room; return its name and who saw them there (member included)."""
        key = fold(name)
        with self._lock:
            member = _user(member)
            room = self._member_room(member, name)
            told = [*room.seers(fold(member.nick)), member] if room.filtered() else list(room.members.values())
            self._rooms_of.get(member, set()).discard(key)
            self._leave(key, member)
            return room.name, told

    def set_topic(
        self, member: Member, name: str, topic: str, when: float | None = None, privileged: bool = False
    ) -> tuple[str, list[Member]]:
        """Set a room's topic; return its name and members. Members may, only operators when +t."""
        with self._lock:
            member = _user(member)
            room = self._member_room(member, name) if not privileged else self._existing(name)
            if "t" in room.modes and not privileged and not room.is_op(member):
                raise IrcError(n.ERR_CHANOPRIVSNEEDED, room.name, "You're not a channel operator (the topic is locked)")
            room.topic = topic
            room.topic_setter = member.prefix
            room.topic_time = time.time() if when is None else when
            return room.name, list(room.members.values())

    def speaker_room(self, member: Member, name: str) -> tuple[str, bool]:
        """The room's name as first written, and whether member is hidden there (+D, to be shown
        before what they say), if member may speak there; raise 403/404 otherwise.

        Once per message said in a room: no snapshot of the members is made.
        """
        with self._lock:
            member = _user(member)
            room = self._existing(name)
            key = fold(member.nick)
            inside = room.members.get(key) is member
            room.check_speak(member, inside)
            return room.name, inside and bool(room.hidden) and key in room.hidden

    def reveal(self, member: Member, name: str) -> Sight | None:
        """Show a member hidden in a room (+D) from now on: who is owed their JOIN; None if not hidden."""
        with self._lock:
            member = _user(member)
            room = self._rooms.get(fold(name))
            key = fold(member.nick)
            if room is None or not room.hidden or room.members.get(key) is not member:
                return None
            return room.reveal(key)

    def change_modes(
        self, member: Member, name: str, changes: list[Change], privileged: bool = False
    ) -> tuple[str, list[Change], list[IrcError], list[Member], list[Sight]]:
        """Apply mode changes as member: (room name, what took effect, refusals, members to tell,
        who came into or went out of whose sight: JOINs to tell before the MODE, PARTs after).

        Raises 482 when member isn't an operator there (nor privileged)."""
        with self._lock:
            member = _user(member)
            room = self._existing(name)
            if not privileged and not room.is_op(member):
                raise IrcError(n.ERR_CHANOPRIVSNEEDED, room.name, "You're not a channel operator")
            applied: list[Change] = []
            refused: list[IrcError] = []
            sights: list[Sight] = []
            for change in changes:
                try:
                    done, seen = room.change(change, member.prefix)
                except IrcError as err:
                    refused.append(err)
                    continue
                if done is not None:
                    applied.append(done)
                    sights += seen
            return room.name, applied, refused, list(room.members.values()), sights

    def entries(self, name: str, letter: str) -> tuple[str, list[ListEntry]]:
        """A room's ban (b) or quiet (q) list."""
        with self._lock:
            room = self._existing(name)
            return room.name, list((room.bans if letter == "b" else room.quiets).values())

    def kick(
        self, member: Member, name: str, nick: str, privileged: bool = False
    ) -> tuple[str, Member, list[Member]]:
        """Remove nick from a room as member: (room name, who was kicked, who must be told: them, the kicker,
        and whoever saw them there)."""
        with self._lock:
            member = _user(member)
            room = self._existing(name)
            if not privileged:
                if room.members.get(fold(member.nick)) is not member:
                    raise IrcError(n.ERR_NOTONCHANNEL, room.name, "You're not on that channel")
                if not room.is_op(member):
                    raise IrcError(n.ERR_CHANOPRIVSNEEDED, room.name, "You're not a channel operator")
            target = room.members.get(fold(nick))
            if target is None:
                raise IrcError(n.ERR_USERNOTINCHANNEL, nick, room.name, "They aren't on that channel")
            if room.filtered():
                told = list({id(m): m for m in (*room.seers(fold(target.nick)), target, member)}.values())
            else:
                told = list(room.members.values())
            self._rooms_of.get(target, set()).discard(fold(room.name))
            self._leave(fold(room.name), target)
            return room.name, target, told

    def invite(self, member: Member, name: str, target: Member, privileged: bool = False) -> str:
        """Let target into a room past +i (and a ban); return its name. 442/443/482 refuse it."""
        with self._lock:
            member, target = _user(member), _user(target)
            room = self._existing(name)
            if not privileged:
                if room.members.get(fold(member.nick)) is not member:
                    raise IrcError(n.ERR_NOTONCHANNEL, room.name, "You're not on that channel")
                if "i" in room.modes and not room.is_op(member):
                    raise IrcError(n.ERR_CHANOPRIVSNEEDED, room.name, "You're not a channel operator")
            if room.members.get(fold(target.nick)) is target:
                raise IrcError(n.ERR_USERONCHANNEL, target.nick, room.name, "is already on channel")
            room.invited.add(fold(target.nick))
            return room.name

    def room(self, name: str, asker: Member | None = None) -> RoomView | None:
        """A snapshot of a room, or None; given an asker, as they see it: its key only to a member,
        and only the members shown to them (+D, +u)."""
        with self._lock:
            room = self._rooms.get(fold(name))
            if room is None:
                return None
            if asker is None:
                return _view(room)
            key = fold(asker.nick)
            return _view(room, room.members.get(key) is _user(asker), key)

    def require_member(self, member: Member, name: str) -> str:
        """The name of a room member is in, as first written; raise 403/442 otherwise.

        Once per message said in a room: no snapshot of the members is made.
        """
        with self._lock:
            member = _user(member)
            return self._member_room(member, name).name

    def disown(self, account: str) -> list[str]:
        """Forget account as the founder of any room (the account is new, so those marks were a
        removed account's of the same name); the names of the rooms changed."""
        with self._lock:
            changed = [r for r in self._rooms.values() if r.founder and r.founder == fold(account)]
            for room in changed:
                room.founder = ""
            return [r.name for r in changed]

    def rooms(self) -> list[RoomView]:
        """Snapshots of every room."""
        with self._lock:
            return [_view(r) for r in self._rooms.values()]

    def rooms_of(self, member: Member) -> list[str]:
        """Names of the rooms member is in."""
        with self._lock:
            member = _user(member)
            return [self._rooms[k].name for k in self._rooms_of.get(member, ())]

    def audience(self, name: str) -> Audience | None:
        """A room's members sorted for delivery (made again if the room or any Route changed);
        None if there is no such room."""
        with self._lock:
            key = fold(name)
            audience = self._audiences.get(key)
            if audience is not None and audience.current:
                return audience
            room = self._rooms.get(key)
            if room is None:
                return None
            audience = self._audiences[key] = Audience.of(room.members.values())
            return audience

    def members_of(self, name: str) -> list[Member]:
        """Who is in a room right now."""
        with self._lock:
            room = self._rooms.get(fold(name))
            return list(room.members.values()) if room else []

    # -- internals (lock held) ------------------------------------------------

    def _room(self, key: str, name: str) -> Room:
        """The room, created (with any saved settings) if it doesn't exist."""
        room = self._rooms.get(key)
        if room is None:
            room = self._rooms[key] = Room(name)
            if key in self._persistent:
                room.modes = set(self._persistent_modes)
            saved = self._saved.pop(key, None)
            if saved is not None:
                room.restore(saved)
        return room

    def _existing(self, name: str) -> Room:
        room = self._rooms.get(fold(name))
        if room is None:
            raise IrcError(n.ERR_NOSUCHCHANNEL, name, "No such channel")
        return room

    def _member_room(self, member: Member, name: str) -> Room:
        room = self._existing(name)
        if room.members.get(fold(member.nick)) is not member:
            raise IrcError(n.ERR_NOTONCHANNEL, name, "You're not on that channel")
        return room

    def _leave(self, key: str, member: Member) -> None:
        room = self._rooms[key]
        nick_key = fold(member.nick)
        if room.members.get(nick_key) is member:
            room.forget(nick_key)
            self._audiences.pop(key, None)
        if not room.members and key not in self._persistent:
            del self._rooms[key]
            if not room.is_default():
                self._saved[key] = room.settings()

    def _remove(self, member: Member) -> list[Member]:
        peers = self._peers(member)
        key = fold(member.nick)
        if self._users.get(key) is member:
            del self._users[key]
        for room_key in self._rooms_of.pop(member, set()):
            self._leave(room_key, member)
        return peers

    def _peers(self, member: Member) -> list[Member]:
        """Who shares a room with member and sees them there (+D and +u may hide them)."""
        seen: dict[int, Member] = {}
        nick_key = fold(member.nick)
        for key in self._rooms_of.get(member, ()):
            room = self._rooms[key]
            for other in room.seers(nick_key) if room.filtered() else room.members.values():
                if other is not member:
                    seen[id(other)] = other
        return list(seen.values())
