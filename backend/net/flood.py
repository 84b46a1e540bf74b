"""Flood control: a token bucket with "fake lag", as IRC servers have long done it.

A client may send a burst of lines at once; beyond that, lines are admitted at a
steady rate. Lines over the rate are not dropped: the connection's own reader
thread waits before handling them, so a paste arrives a little slowly and a
flooder only slows itself (its unread bytes stay in its own socket buffer). A
client that gets too far ahead is disconnected with "Excess Flood".
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Flooding(Exception):
    """The client is further ahead of its rate than we allow."""


class FloodGate:
    """Admits `burst` lines at once, then `rate` lines a second, at most `max_lag` seconds ahead."""

    def __init__(self, burst: int, rate: float, max_lag: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.rate = rate
        self.max_lag = max_lag
        self.clock = clock
        self._next = clock() - burst / rate

    def charge(self) -> float:
        """Account for one line; return how long to wait before handling it, or raise Flooding."""
        now = self.clock()
        self._next = max(self._next, now - self.burst / self.rate) + 1 / self.rate
        lag = self._next - now
        if lag > self.max_lag:
            raise Flooding(f"{lag:.1f} s ahead of the allowed rate")
        return max(0.0, lag)
