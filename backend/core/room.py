"""A room's state and its rules: members and their status (@ operator, + voice), modes, bans, quiets.

Everything here runs with the Hub's lock held (hub.py) and does no I/O: the Hub finds the
room, calls a method that checks or changes it, and returns what happened. A refusal is an
IrcError carrying the standard numeric.

Modes, as ISUPPORT says (CHANMODES=bq,k,l,Dimnstu; PREFIX=(ov)@+):
- `b` bans and `q` quiets: lists of nick!user@host masks with wildcards. A banned user can't
  join nor speak; a quieted one stays and reads but can't speak (Libera's `+q`).
- `k` key (needed to join), `l` member limit.
- `i` invite-only, `m` moderated (only voiced users and operators speak), `n` no messages
  from outside, `s` secret (not in LIST or to outsiders' WHO/NAMES), `t` only operators set the topic.
- `D` delayed join and `u` auditorium, for huge rooms (InspIRCd's delayjoin and auditorium,
  Ergo's +u): under +D a member who joins without a status is hidden from the others until
  they first speak or get voice or operator; under +u members without a status show only to
  operators and voiced members (seers() and shown_to()); `Sight`s are what a change brings
  into or out of someone's sight (a JOIN, or a PART, owed to some members).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from ..irc import IrcError, fold
from ..irc import numerics as n
from .envelope import Envelope, Route
from .masks import matches

LIST_MODES = "bq"
PARAM_MODES = "k"
PARAM_SET_MODES = "l"
FLAG_MODES = "Dimnstu"
STATUS_MODES = "ov"
PREFIXES = {"o": "@", "v": "+"}
DEFAULT_MODES = frozenset("nt")
MAXLIST = 100
KEY_MAX = 23


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

    @property
    def route(self) -> Route | None:
        """How Chat.publish may reach this member without calling deliver(), or None."""
        ...


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One ban or quiet: the mask, who set it and when."""

    mask: str
    setter: str
    time: float


@dataclass(frozen=True, slots=True)
class Change:
    """One mode change: +o alice, -k, +b *!*@host, ..."""

    adding: bool
    letter: str
    arg: str = ""

    def __str__(self) -> str:
        return ("+" if self.adding else "-") + self.letter


@dataclass(frozen=True, slots=True)
class Sight:
    """A member coming into (joined) or going out of the sight of others under +D or +u: their JOIN,
    or PART, is owed to `to`; None: to every member of the room but them, when the JOIN is told."""

    who: Member
    joined: bool
    to: tuple[Member, ...] | None = None


@dataclass(eq=False)
class Room:
    """A channel: name as first written, topic, members by folded nick, their status, modes and lists."""

    name: str
    created: float = field(default_factory=time.time)
    topic: str = ""
    topic_setter: str = ""
    topic_time: float = 0.0
    members: dict[str, Member] = field(default_factory=dict)
    # Each member's nick as shown, in the order of members: a view is made at every join, and
    # reading it here costs no call per member (a Client's nick is a property).
    nicks: dict[str, str] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)  # folded nick -> "o", "v" or "ov"
    modes: set[str] = field(default_factory=lambda: set(DEFAULT_MODES))
    key: str = ""
    limit: int = 0
    bans: dict[str, ListEntry] = field(default_factory=dict)  # folded mask -> entry
    quiets: dict[str, ListEntry] = field(default_factory=dict)
    invited: set[str] = field(default_factory=set)  # folded nicks, until they join
    # The account that created the room (folded): its operator whenever it joins, across restarts.
    founder: str = ""
    # Under +D: members (folded nicks) who joined and have neither spoken nor been given a status yet.
    hidden: set[str] = field(default_factory=set)

    # -- who may do what -----------------------------------------------------------

    def is_op(self, member: Member) -> bool:
        return "o" in self.status.get(fold(member.nick), "")

    def is_voiced(self, member: Member) -> bool:
        return bool(self.status.get(fold(member.nick), ""))

    def banned(self, member: Member) -> bool:
        return any(matches(entry.mask, member.prefix) for entry in self.bans.values())

    def quieted(self, member: Member) -> bool:
        return any(matches(entry.mask, member.prefix) for entry in self.quiets.values())

    def check_join(self, member: Member, key: str) -> None:
        """Raise the numeric that refuses member joining.

        An invitation (INVITE by an operator) lets its guest past +i and past a ban: an operator
        asked for them by name. The key and the limit still hold.
        """
        invited = fold(member.nick) in self.invited
        if self.banned(member) and not invited:
            raise IrcError(n.ERR_BANNEDFROMCHAN, self.name, "Cannot join channel (you are banned)")
        if "i" in self.modes and not invited:
            raise IrcError(n.ERR_INVITEONLYCHAN, self.name, "Cannot join channel (invite only)")
        if self.key and key != self.key:
            raise IrcError(n.ERR_BADCHANNELKEY, self.name, "Cannot join channel (wrong or missing key)")
        if self.limit and len(self.members) >= self.limit:
            raise IrcError(n.ERR_CHANNELISFULL, self.name, "Cannot join channel (the room is full)")

    def check_speak(self, member: Member, is_member: bool) -> None:
        """Raise 404 with the reason member may not speak here."""
        if is_member and not self.bans and not self.quiets and "m" not in self.modes:
            return  # the common case, once per message: nothing to look up
        if not is_member and "n" in self.modes:
            raise IrcError(n.ERR_CANNOTSENDTOCHAN, self.name, "Cannot send to channel (join it first)")
        if is_member and self.is_voiced(member):
            return
        if "m" in self.modes:
            raise IrcError(n.ERR_CANNOTSENDTOCHAN, self.name, "Cannot send to channel (the room is moderated)")
        if self.banned(member):
            raise IrcError(n.ERR_CANNOTSENDTOCHAN, self.name, "Cannot send to channel (you are banned)")
        if self.quieted(member):
            raise IrcError(n.ERR_CANNOTSENDTOCHAN, self.name, "Cannot send to channel (you are muted)")

    # -- changes -------------------------------------------------------------------

    def apply(self, change: Change, setter: str) -> Change | None:
        """Apply one checked change; the change as it took effect, or None when it changed nothing."""
        letter, arg = change.letter, change.arg
        if letter in STATUS_MODES:
            key = fold(arg)
            target = self.members.get(key)
            if target is None:
                raise IrcError(n.ERR_USERNOTINCHANNEL, arg, self.name, "They aren't on that channel")
            now = self.status.get(key, "")
            if change.adding == (letter in now):
                return None
            new = "".join(sorted((set(now) | {letter}) if change.adding else (set(now) - {letter}), key="ov".index))
            if new:
                self.status[key] = new
            else:
                self.status.pop(key, None)
            return Change(change.adding, letter, target.nick)
        if letter in LIST_MODES:
            entries = self.bans if letter == "b" else self.quiets
            mask = normal_mask(arg)
            if change.adding:
                if fold(mask) in entries:
                    return None
                if len(entries) >= MAXLIST:
                    raise IrcError(n.ERR_BANLISTFULL, self.name, letter, f"The list is full ({MAXLIST} entries)")
                entries[fold(mask)] = ListEntry(mask, setter, time.time())
            elif entries.pop(fold(mask), None) is None:
                return None
            return Change(change.adding, letter, mask)
        if letter == "k":
            if change.adding:
                if not valid_key(arg):
                    raise IrcError(n.ERR_INVALIDKEY, self.name, "Key must be 1-23 characters, no spaces or commas")
                self.key = arg
                return Change(True, "k", arg)
            if not self.key:
                return None
            self.key = ""
            return Change(False, "k", "*")
        if letter == "l":
            if change.adding:
                if not arg.isdigit() or not 0 < int(arg) <= 100_000:
                    raise IrcError(n.ERR_INVALIDMODEPARAM, self.name, "l", arg or "*", "Limit must be a number")
                self.limit = int(arg)
                return Change(True, "l", str(self.limit))
            if not self.limit:
                return None
            self.limit = 0
            return Change(False, "l")
        if change.adding == (letter in self.modes):
            return None
        (self.modes.add if change.adding else self.modes.discard)(letter)
        return change

    def change(self, change: Change, setter: str) -> tuple[Change | None, list[Sight]]:
        """apply(), and whom it brings into or out of whose sight (+D, +u): JOINs to tell before the
        MODE line, PARTs after it.

        A voice or operator status shows a hidden member (as InspIRCd's delayjoin does); under +u a
        status change also changes whom the member sees and is seen by. -D shows every hidden member.
        Setting +D, or +u or -u, brings nobody into sight: it holds for what comes after.
        """
        letter = change.letter
        if letter in STATUS_MODES and self.filtered() and (key := fold(change.arg)) in self.members:
            seers, seen = set(self._seer_keys(key)), set(self.shown_to(key))
            was_hidden = key in self.hidden
            if change.adding:
                self.hidden.discard(key)
            done = self.apply(change, setter)
            if done is None:
                if was_hidden:
                    self.hidden.add(key)
                return None, []
            return done, self._moved(key, seers, seen)
        if letter == "D" and not change.adding and self.hidden:
            done = self.apply(change, setter)
            if done is None:
                return None, []
            shown = [k for k in self.members if k in self.hidden]
            self.hidden.clear()
            return done, [Sight(self.members[k], True, self._audience(k)) for k in shown]
        return self.apply(change, setter), []

    def seat(self, key: str, member: Member) -> None:
        """member joins, under their folded nick key: listed, with their nick as shown."""
        self.members[key] = member
        self.nicks[key] = member.nick

    def rename(self, old: str, new: str, member: Member, nick: str) -> None:
        """A member's nick changed (folded old and new; nick as shown): their place, their nick
        as shown, their status and the rest follow them."""
        self.members.pop(old, None)
        self.members[new] = member
        self.nicks.pop(old, None)
        self.nicks[new] = nick
        if old in self.status:
            self.status[new] = self.status.pop(old)
        if old in self.hidden:
            self.hidden.discard(old)
            self.hidden.add(new)
        if old in self.invited:
            self.invited.discard(old)
            self.invited.add(new)

    def forget(self, nick_key: str) -> None:
        """A member left: their place, their nick as shown and their status go with them."""
        del self.members[nick_key]
        del self.nicks[nick_key]
        self.status.pop(nick_key, None)
        self.hidden.discard(nick_key)

    # -- who is shown to whom (+D, +u) ------------------------------------------------
    # Everyone sees themselves. A hidden (+D) member shows to nobody else. Under +u a member without
    # a status shows only to operators and voiced members, who see everyone (Ergo's rule; InspIRCd
    # hides operators too unless configured otherwise). seers() and shown_to() are the two sides of it.

    def filtered(self) -> bool:
        """Whether some members may be out of others' sight: the common case answers False at once."""
        return bool(self.hidden) or "u" in self.modes

    def seers(self, key: str) -> list[Member]:
        """The other members whom member `key` shows to: who hears of their JOIN, PART, QUIT, NICK, AWAY."""
        return [self.members[k] for k in self._seer_keys(key)]

    def shown_to(self, to: str) -> list[str]:
        """The members (folded nicks) that show to `to`, for its NAMES and WHO; itself included if a member.

        Under +u a member without a status sees the few with one, not the whole room.
        """
        if "u" in self.modes and to not in self.status:
            keys = [k for k in self.status if k in self.members and k != to]
            return [*keys, to] if to in self.members else keys
        if self.hidden:
            return [k for k in self.members if k not in self.hidden or k == to]
        return list(self.members)

    def reveal(self, key: str) -> Sight | None:
        """A hidden member spoke: shown from now on; their JOIN is owed to whoever sees them now."""
        if key not in self.hidden:
            return None
        self.hidden.discard(key)
        return Sight(self.members[key], True, self._audience(key))

    def _seer_keys(self, key: str) -> list[str]:
        if key in self.hidden:
            return []
        if "u" in self.modes and key not in self.status:
            return [k for k in self.status if k in self.members and k != key]
        return [k for k in self.members if k != key]

    def _audience(self, key: str) -> tuple[Member, ...] | None:
        """Who a member just shown is owed a JOIN by: None for everyone (the common case, told in a
        batch), else the operators and voiced members (+u, a member without a status)."""
        if "u" not in self.modes or key in self.status:
            return None
        return tuple(self.seers(key))

    def _moved(self, key: str, seers: set[str], seen: set[str]) -> list[Sight]:
        """What a change of member key's status did to sight, given who saw them and whom they saw before."""
        member = self.members[key]
        seers_now, seen_now = set(self._seer_keys(key)), set(self.shown_to(key))
        sights: list[Sight] = []
        came = tuple(self.members[k] for k in self.members if k in seers_now and k not in seers)
        went = tuple(self.members[k] for k in self.members if k in seers and k not in seers_now)
        if came:
            sights.append(Sight(member, True, came))
        if went:
            sights.append(Sight(member, False, went))
        for k in self.members:
            if k != key and (k in seen_now) != (k in seen):
                sights.append(Sight(self.members[k], k in seen_now, (member,)))
        return sights

    # -- what is shown ---------------------------------------------------------------

    def mode_string(self, show_key: bool) -> tuple[str, ...]:
        """324's mode string and arguments (the key only to those who may know it)."""
        letters = "".join(sorted(self.modes))
        args: list[str] = []
        if self.key:
            letters += "k"
            args.append(self.key if show_key else "*")
        if self.limit:
            letters += "l"
            args.append(str(self.limit))
        return ("+" + letters, *args)

    def settings(self) -> dict[str, object]:
        """What outlives a restart: topic, modes, key, limit, bans and quiets (store/rooms.py)."""
        return {
            "name": self.name, "created": self.created, "topic": self.topic, "topic_setter": self.topic_setter,
            "topic_time": self.topic_time, "modes": "".join(sorted(self.modes)), "key": self.key,
            "limit": self.limit,
            "bans": [[e.mask, e.setter, e.time] for e in self.bans.values()],
            "quiets": [[e.mask, e.setter, e.time] for e in self.quiets.values()],
            "founder": self.founder,
        }

    def restore(self, saved: dict[str, object]) -> None:
        """Take back settings() saved earlier."""
        self.created = float(saved.get("created", self.created))  # type: ignore[arg-type]
        self.topic = str(saved.get("topic", ""))
        self.topic_setter = str(saved.get("topic_setter", ""))
        self.topic_time = float(saved.get("topic_time", 0.0))  # type: ignore[arg-type]
        if "modes" in saved:
            self.modes = set(str(saved["modes"])) & set(FLAG_MODES)
        self.key = str(saved.get("key", ""))
        self.founder = str(saved.get("founder", self.founder))
        self.limit = int(saved.get("limit", 0))  # type: ignore[call-overload]
        for letter, entries in (("bans", self.bans), ("quiets", self.quiets)):
            for mask, setter, when in saved.get(letter, []):  # type: ignore[attr-defined]
                entries[fold(mask)] = ListEntry(mask, setter, float(when))

    def is_default(self) -> bool:
        """Nothing set beyond a new room's defaults: no need to remember it once empty."""
        return (not self.topic and self.modes == set(DEFAULT_MODES) and not self.key and not self.limit
                and not self.bans and not self.quiets and not self.founder)

    def prefixed(self, multi: bool) -> Iterator[tuple[str, Member]]:
        """(status prefix, member) for NAMES: "@" for an operator, "+" voice, "@+" both with multi-prefix."""
        for key, member in self.members.items():
            status = self.status.get(key, "")
            shown = "".join(PREFIXES[s] for s in status)
            yield (shown if multi else shown[:1]), member


def normal_mask(mask: str) -> str:
    """A ban mask in full form: `alice` -> `alice!*@*`, `*@host` -> `*!*@host`, `nick!user` -> `nick!user@*`."""
    if "!" not in mask and "@" not in mask:
        return f"{mask}!*@*"
    if "!" not in mask:
        return f"*!{mask}"
    if "@" not in mask:
        return f"{mask}@*"
    return mask


def valid_key(key: str) -> bool:
    """A room key: 1-23 characters, no spaces, commas or control characters."""
    return 0 < len(key) <= KEY_MAX and not any(ch in " ,:" or ord(ch) < 32 for ch in key)
