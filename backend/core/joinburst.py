"""Joins told to a room's members a batch at a time, instead of one delivery per member per join.

When thousands join one room at once, telling every member of every JOIN as it happens costs
N joins x N members deliveries, each a Python call down to the member's Outbox (issue 19).
So a JOIN is queued here, and whoever drains the queue (the network layer's flusher thread,
once per pass; or the joining thread itself when nobody drains) gives each member every
JOIN queued since the last drain as one chunk: one delivery per member per batch.

What each member is owed stays exact. A drain takes its member snapshot under the same lock
as the joins themselves (join() holds it around Hub.join and the queuing), so a batch's
snapshot holds exactly those who joined before or during it. A member that joined within the batch gets only the
JOINs after its own (its NAMES listed everyone before it). And nothing overtakes a JOIN:
Chat.publish drains first whenever a batch is waiting or being delivered (`busy`). A member
who leaves before the drain is not told of JOINs in a room it is no longer in: to it, they
came after it left.

Rooms with +D or +u (core/room.py) queue here too, in the same order as the joins: a hidden
joiner's JOIN is not queued at all (no pass over the members for it); a member shown later
(they spoke, got a voice, or -D) has their JOIN queued then, for everyone but themselves; and
a JOIN that only some may see (+u) names them, so a drain tells those alone.
"""

from __future__ import annotations

import logging
import threading
from bisect import bisect_right
from collections.abc import Callable, Iterable

from ..irc import IrcError, Message, fold
from .client import Client, SharedUser
from .envelope import Envelope, RenderKey
from .hub import Change, Hub, Member, RoomView, Sight

log = logging.getLogger("lobby.joins")

# (who, their JOIN, the same with account and real name for extended-join, who may see it: None for
# every member, who joined: True for a join, whose members are told only the JOINs after their own,
# False for a member shown later, whom every other member is told of)
Entry = tuple[Member, Envelope, Envelope, tuple[Member, ...] | None, bool]


class JoinBurst:
    """JOIN lines waiting to be told to rooms' members (see the module docstring)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        # Held around a Hub.join and its queuing, and to take a batch with its member snapshot.
        self._lock = threading.Lock()
        # One drain at a time, so batches reach members in order.
        self._drain_lock = threading.Lock()
        self._pending: dict[str, tuple[str, list[Entry]]] = {}
        # Set while something is queued or being delivered: Chat.publish drains first then.
        self.busy = False
        # Called when a first JOIN is queued, to have someone drain soon (the flusher). None:
        # nobody will, so the joining thread drains at once (socket-free tests, tools).
        self.wake: Callable[[], None] | None = None

    def join(
        self,
        member: Member,
        name: str,
        key: str,
        privileged: bool,
        account: str | None,
        welcome: Callable[[RoomView], tuple[Envelope, Envelope]],
    ) -> tuple[RoomView, list[Member]] | None:
        """Hub.join; then welcome(view) tells the joiner (its JOIN, topic, NAMES) and gives the
        JOIN for the others (short, and extended-join's), which is queued for them.

        All under one lock: a drain's member snapshot never holds a joiner whose JOIN is not
        queued yet (it would be told of JOINs from before it, already in its NAMES), and a
        joiner is never told of a later JOIN before its own JOIN and NAMES.
        """
        with self._lock:
            result = self.hub.join(member, name, key, privileged=privileged, account=account)
            if result is None:
                return None
            view, told = result
            short, long = welcome(view)
            if len(told) == view.size:  # seen by everyone: the common case
                first = self._queue(view.name, (member, short, long, None, True))
            else:  # +D hides the joiner, or +u shows them to a few: those are named (none when hidden)
                user = member.member if isinstance(member, Client) else member
                seers = tuple(m for m in told if m is not user)
                first = bool(seers) and self._queue(view.name, (member, short, long, seers, True))
        self._queued(first)
        return result

    def reveal(self, member: Member, name: str) -> Sight | None:
        """Show a member hidden in a room (+D; they spoke): their JOIN is queued for those who now
        see them, in order with the joins around it. None if they were not hidden."""
        with self._lock:
            sight = self.hub.reveal(member, name)
            first = sight is not None and self._queue_sights(name, (sight,))
        self._queued(first)
        return sight

    def change_modes(
        self, member: Member, name: str, changes: list[Change], privileged: bool = False
    ) -> tuple[str, list[Change], list[IrcError], list[Member], list[Sight]]:
        """Hub.change_modes, with the JOINs it brings into sight (+D, +u) queued in order with the
        joins (told before the MODE line, which drains first); the PARTs it owes are returned,
        to be told after the MODE line."""
        with self._lock:
            name, applied, refused, members, sights = self.hub.change_modes(member, name, changes, privileged)
            first = self._queue_sights(name, [s for s in sights if s.joined])
        self._queued(first)
        return name, applied, refused, members, [s for s in sights if not s.joined]

    def _queue(self, name: str, entry: Entry) -> bool:
        """Queue one JOIN (lock held); whether it is the first one waiting."""
        first = not self._pending
        batch = self._pending.get(fold(name))
        if batch is None:
            batch = self._pending[fold(name)] = (name, [])
        batch[1].append(entry)
        self.busy = True
        return first

    def _queue_sights(self, name: str, sights: Iterable[Sight]) -> bool:
        first = False
        for sight in sights:
            if sight.to is None or sight.to:
                short, long = join_lines(sight.who, name)
                first = self._queue(name, (sight.who, short, long, sight.to, False)) or first
        return first

    def _queued(self, first: bool) -> None:
        """Have what was just queued drained: now, when nobody drains, else by waking the drainer."""
        if self.wake is None:
            self.drain()
        elif first:
            self.wake()

    def drain(self) -> None:
        """Tell members every JOIN queued so far, one chunk per member per room."""
        if not self.busy:
            return
        with self._drain_lock:
            with self._lock:
                pending, self._pending = self._pending, {}
                snapshots = [(entries, self.hub.members_of(name)) for name, entries in pending.values()]
            try:
                for entries, members in snapshots:
                    try:
                        _tell(entries, members)
                    except Exception:
                        # A bug in one room's batch must not cost the other rooms theirs.
                        log.exception("telling %d JOINs failed", len(entries))
            finally:
                with self._lock:
                    self.busy = bool(self._pending)


def join_lines(who: Member, room: str) -> tuple[Envelope, Envelope]:
    """who's JOIN to room, plain and with account and real name (extended-join)."""
    short = Envelope(Message("JOIN", (room,), who.prefix))
    account = who.account if isinstance(who, Client) else None
    return short, Envelope(Message("JOIN", (room, account or "*", who.realname), who.prefix), short.time, short.msgid)


def tell_sights(hub: Hub, room: str, sights: Iterable[Sight]) -> None:
    """Deliver JOINs or PARTs of members coming into or going out of sight at once (not batched): the
    PARTs after a MODE line, and a cluster node's own view of another node's change (cluster/mirror.py)."""
    everyone: list[Member] | None = None
    for sight in sights:
        if sight.joined:
            short, long = join_lines(sight.who, room)
        else:
            short = long = Envelope(Message("PART", (room,), sight.who.prefix))
        if sight.to is None and everyone is None:
            everyone = hub.members_of(room)
        for user in sight.to if sight.to is not None else everyone or ():
            if user is not sight.who:
                _deliver(user, short, long)


def _deliver(user: Member, short: Envelope, long: Envelope) -> None:
    """A JOIN to one member, in the form each of its connections asked for."""
    if not isinstance(user, Client):
        user.deliver(short)
        return
    for conn in user.connections():
        conn.deliver(long if "extended-join" in conn.caps else short)


def _connections(who: Member) -> tuple[Member, ...]:
    """who and every connection of its user (multiclient), to know them by in a batch."""
    if isinstance(who, SharedUser):
        return (who, *who.connections())
    if isinstance(who, Client):
        return (who, who.member, *who.others())
    return (who,)


def _tell(entries: list[Entry], members: list[Member]) -> None:
    # Where each joiner of this batch is in it (its last join, should it have joined twice); a
    # multiclient user's other connections were given the JOIN with the joiner's (rooms.py).
    position = {id(conn): i for i, (joiner, _, _, _, joined) in enumerate(entries) if joined
                for conn in _connections(joiner)}
    if any(entry[3] is not None for entry in entries):
        # +u: JOINs only some may see, each told to those (named when it was queued); the rest,
        # for everyone, as below, each member's position counted among those.
        inside = {id(m) for m in members}
        for _, short, long, to, _ in entries:
            for user in to or ():
                if id(user) in inside:
                    _deliver(user, short, long)
        kept = [i for i, entry in enumerate(entries) if entry[3] is None]
        entries = [entries[i] for i in kept]
        position = {conn: bisect_right(kept, i) - 1 for conn, i in position.items()}
    # A member shown in this batch (+D) is not told its own JOIN; it is told the others', before or after.
    own = {id(conn): i for i, (who, _, _, _, joined) in enumerate(entries) if not joined
           for conn in _connections(who)}
    # Per render key and JOIN form: the batch as one chunk, and where each entry starts in it,
    # so that a joiner's share (the JOINs after its own) is a slice, not another join.
    chunks: dict[tuple[RenderKey, bool], tuple[bytes, list[int]]] = {}
    for user in members:
        if not isinstance(user, Client):
            start = position.get(id(user), -1) + 1
            skip = own.get(id(user), -1)
            for i in range(start, len(entries)):
                if i != skip:
                    user.deliver(entries[i][1])
            continue
        for member in user.connections():  # each connection of a multiclient user by its own caps
            _tell_one(member, entries, position, own, chunks)


def _tell_one(member: Client, entries: list[Entry], position: dict[int, int], own: dict[int, int],
              chunks: dict[tuple[RenderKey, bool], tuple[bytes, list[int]]]) -> None:
    """One connection's share of a batch: the JOINs after its own, but its own being shown, as one chunk."""
    start = position.get(id(member), -1) + 1
    if start >= len(entries):
        return
    extended = "extended-join" in member.caps
    key = (member.render_key, extended)
    made = chunks.get(key)
    if made is None:
        renderer = member.presenter.render_envelope if member.presenter is not None else None
        lines = [(long if extended else short).render(member.render_key, renderer) for _, short, long, _, _ in entries]
        offsets = [0]
        for line in lines:
            offsets.append(offsets[-1] + len(line))
        made = chunks[key] = (b"".join(lines), offsets)
    blob, offsets = made
    data = blob[offsets[start]:] if start else blob
    skip = own.get(id(member), -1)
    if skip >= start:
        data = blob[offsets[start]:offsets[skip]] + blob[offsets[skip + 1]:]
    if data:
        member.link.deliver_bytes(data)
