"""Who a room message goes to, sorted once for every message said there until the room changes.

A room message is queued for each member (Chat.publish). Sorting the members by how they read
lines (render key) and where their bytes go (Route) is a pass of Python over the room; doing it
once per room, not once per message, leaves each message a map() per render key, in C. A room
keeps its Audience until someone joins, leaves or changes nick in it (Hub drops it then), or any
client's Route changes anywhere (its capabilities, a join under way: the route epoch below).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from .envelope import RenderKey
from .room import Member

_epoch_lock = threading.Lock()
_epoch = 0


def route_epoch() -> int:
    """How many times any client's Route has changed: an Audience made before is out of date."""
    return _epoch


def routes_changed() -> None:
    """A client's Route changed (call after setting it)."""
    global _epoch
    with _epoch_lock:
        _epoch += 1


@dataclass(frozen=True, slots=True)
class Group:
    """The members of an audience who read lines alike: their queues, their links, and they themselves."""

    key: RenderKey
    fan_outs: tuple[list[bytes], ...]
    links: tuple[object, ...]
    members: tuple[Member, ...]
    # (fan_outs, links) without one member's, by member: the few who speak in a room speak again.
    _without: dict[int, tuple[tuple[list[bytes], ...], tuple[object, ...]]] = field(default_factory=dict)

    def but(self, member: Member) -> tuple[tuple[list[bytes], ...], tuple[object, ...]]:
        """The queues and links of every member but one (the sender, who gets its own echo, and
        whose connection the flusher then need not visit)."""
        found = self._without.get(id(member))
        if found is not None:
            return found
        try:
            i = self.members.index(member)
        except ValueError:
            return self.fan_outs, self.links
        found = self._without[id(member)] = (self.fan_outs[:i] + self.fan_outs[i + 1 :],
                                              self.links[:i] + self.links[i + 1 :])
        return found


@dataclass(frozen=True, slots=True)
class Audience:
    """A room's members sorted for delivery: groups by render key, and the rest (no Route:
    reached through Member.deliver)."""

    epoch: int
    groups: tuple[Group, ...]
    others: tuple[Member, ...]

    @classmethod
    def of(cls, members: Iterable[Member]) -> Audience:
        """Sort members (the epoch is read first: a Route changed meanwhile makes it out of date)."""
        epoch = route_epoch()
        sorted_: dict[RenderKey, tuple[list[list[bytes]], list[object], list[Member]]] = {}
        others: list[Member] = []
        for member in members:
            route = member.route
            if route is None:
                others.append(member)
                continue
            key, fan_out, link = route
            group = sorted_.get(key)
            if group is None:
                group = sorted_[key] = ([], [], [])
            group[0].append(fan_out)
            group[1].append(link)
            group[2].append(member)
        groups = tuple(Group(key, tuple(f), tuple(k), tuple(m)) for key, (f, k, m) in sorted_.items())
        return cls(epoch, groups, tuple(others))

    @property
    def current(self) -> bool:
        """Whether no client's Route has changed since this was made."""
        return self.epoch == _epoch
