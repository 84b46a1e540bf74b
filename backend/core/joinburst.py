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
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..irc import fold
from .client import Client
from .envelope import Envelope, RenderKey
from .hub import Hub, Member, RoomView

log = logging.getLogger("lobby.joins")

# (the joiner, its JOIN, the same with account and real name for extended-join)
Entry = tuple[Member, Envelope, Envelope]


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
            view = result[0]
            short, long = welcome(view)
            first = not self._pending
            batch = self._pending.get(fold(view.name))
            if batch is None:
                batch = self._pending[fold(view.name)] = (view.name, [])
            batch[1].append((member, short, long))
            self.busy = True
        if self.wake is None:
            self.drain()
        elif first:
            self.wake()
        return result

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


def _tell(entries: list[Entry], members: list[Member]) -> None:
    # Where each joiner of this batch is in it (its last join, should it have joined twice); a
    # multiclient user's other connections were given the JOIN with the joiner's (rooms.py).
    position = {id(conn): i for i, (joiner, _, _) in enumerate(entries)
                for conn in ((joiner, *joiner.others()) if isinstance(joiner, Client) else (joiner,))}
    # Per render key and JOIN form: the batch as one chunk, and where each entry starts in it,
    # so that a joiner's share (the JOINs after its own) is a slice, not another join.
    chunks: dict[tuple[RenderKey, bool], tuple[bytes, list[int]]] = {}
    for user in members:
        if not isinstance(user, Client):
            start = position.get(id(user), -1) + 1
            for _, envelope, _ in entries[start:]:
                user.deliver(envelope)
            continue
        for member in user.connections():  # each connection of a multiclient user by its own caps
            _tell_one(member, entries, position, chunks)


def _tell_one(member: Client, entries: list[Entry], position: dict[int, int],
              chunks: dict[tuple[RenderKey, bool], tuple[bytes, list[int]]]) -> None:
    """One connection's share of a batch: the JOINs after its own, as one chunk."""
    start = position.get(id(member), -1) + 1
    if start >= len(entries):
        return
    extended = "extended-join" in member.caps
    key = (member.render_key, extended)
    made = chunks.get(key)
    if made is None:
        renderer = member.presenter.render_envelope if member.presenter is not None else None
        lines = [(long if extended else short).render(member.render_key, renderer) for _, short, long in entries]
        offsets = [0]
        for line in lines:
            offsets.append(offsets[-1] + len(line))
        made = chunks[key] = (b"".join(lines), offsets)
    blob, offsets = made
    data = blob[offsets[start]:] if start else blob
    if data:
        member.link.deliver_bytes(data)
