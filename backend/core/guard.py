"""Slowing down password guessing: a per-address (or per-account) failure throttle.

Pure: it keeps counts and times, reads an injected clock and never sleeps or starts a
thread. Registration (registration.py) asks it two things about a key such as a
client's address:

- admit(key): may a password from key be checked now? 0.0 means yes (and the slot is
  taken); otherwise how many seconds to wait before asking again. After a failure the
  key gets one check per delay, however many connections it opens at once.
- failed(key): a wrong password from key; returns how long its answer (464 and the
  disconnect) is held back. The delay doubles with each failure, from `base` up to
  `cap`. succeeded(key) forgets the key; so does `quiet` seconds without a failure.

The caller waits in the guessing connection's own thread, holding no lock, so only
the guesser is slowed down.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# Keys remembered at most; past it, the stalest are forgotten first.
MAX_KEYS = 10_000


@dataclass
class _Record:
    failures: int = 0
    last_failure: float = 0.0
    # No check for this key before this time (the clock's).
    next_check: float = 0.0


class FailureGuard:
    """Failure counts per key, and the delays they call for."""

    def __init__(
        self,
        base: float = 0.5,
        cap: float = 8.0,
        quiet: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base = base
        self.cap = cap
        self.quiet = quiet
        self.clock = clock
        self.max_keys = max_keys
        # Never called here: how the caller waits out a delay (tests give a fake with the clock).
        self.sleep = sleep
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def delay_after(self, failures: int) -> float:
        """The delay after the given number of failures in a row: base, doubling, at most cap."""
        if failures <= 0:
            return 0.0
        return min(self.cap, self.base * 2.0 ** min(failures - 1, 62))

    def admit(self, key: str) -> float:
        """0.0: check key's password now (its slot is taken); else seconds to wait, then ask again."""
        with self._lock:
            now = self.clock()
            record = self._current(key, now)
            if record is None or record.failures == 0:
                return 0.0
            if now < record.next_check:
                return record.next_check - now
            record.next_check = now + self.delay_after(record.failures)
            return 0.0

    def failed(self, key: str) -> float:
        """Count a failure for key; return how long to hold back the answer to it."""
        with self._lock:
            now = self.clock()
            record = self._current(key, now)
            if record is None:
                self._make_room()
                record = self._records[key] = _Record()
            record.failures += 1
            record.last_failure = now
            delay = self.delay_after(record.failures)
            record.next_check = max(record.next_check, now + delay)
            return delay

    def succeeded(self, key: str) -> None:
        """A right password from key: its failures are forgotten."""
        with self._lock:
            self._records.pop(key, None)

    def failures(self, key: str) -> int:
        """Failures counted for key and not yet forgotten."""
        with self._lock:
            record = self._current(key, self.clock())
            return record.failures if record is not None else 0

    def _current(self, key: str, now: float) -> _Record | None:
        """key's record, unless it has been quiet long enough to be forgotten (lock held)."""
        record = self._records.get(key)
        if record is not None and now - record.last_failure >= self.quiet and now >= record.next_check:
            del self._records[key]
            return None
        return record

    def _make_room(self) -> None:
        """Forget quiet keys, then the stalest, so that at most max_keys stay (lock held)."""
        if len(self._records) < self.max_keys:
            return
        now = self.clock()
        for key in [k for k, r in self._records.items() if now - r.last_failure >= self.quiet]:
            del self._records[key]
        while len(self._records) >= self.max_keys:
            stalest = min(self._records, key=lambda k: self._records[k].last_failure)
            del self._records[stalest]
