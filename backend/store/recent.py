"""Each room's last lines in memory, so that joining a room costs no trip to the database.

Every join replays a room's last lines (core/replay.py). Read from SQLite, that is a round
trip to the history thread per join, and in a storm of thousands of joins the joiners queue
behind each other for it. History keeps here, for the rooms read lately, the newest rows it
stored, and answers a plain "latest N" from them.

What is kept must be exactly what the database would answer. A room is loaded from the
database on its first read and from then on follows every row added to it; a row that would
not sort last (an older timestamp, as a cluster's catch-up brings) and any deletion drop the
room, to be read again next time. A load that overlapped a write to its room is not kept:
the write may or may not be in what the load read.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque

from ..core.history import Stored
from .rows import Row, row_stored

# Rooms kept at most (the least lately read are dropped first).
ROOMS = 1024


class RecentLines:
    """The newest `lines` rows of up to `rooms` rooms, by casefolded room; safe from any thread."""

    def __init__(self, lines: int, rooms: int = ROOMS) -> None:
        self.lines = lines
        self.rooms = rooms
        self._lock = threading.Lock()
        # A row added is kept as History.add() queued it, made a Stored only when read: a message
        # is added once per message said, but read only by the joins that replay it.
        self._kept: OrderedDict[str, deque[Stored | Row]] = OrderedDict()
        # Rooms being loaded: how many writes to each since its loads began, and how many loads.
        self._loading: dict[str, list[int]] = {}

    def get(self, key: str, limit: int) -> list[Stored] | None:
        """The newest `limit` rows of a kept room, oldest first; None if it is not kept (or limit is too big)."""
        if limit > self.lines:
            return None
        with self._lock:
            rows = self._kept.get(key)
            if rows is None:
                return None
            self._kept.move_to_end(key)
            kept = list(rows)[-limit:] if limit > 0 else []
        return [row if isinstance(row, Stored) else row_stored(row) for row in kept]

    def begin(self, key: str) -> int:
        """Say a load of a room starts; returns what to give back to end()."""
        with self._lock:
            loading = self._loading.setdefault(key, [0, 0])
            loading[1] += 1
            return loading[0]

    def end(self, key: str, started: int, rows: list[Stored] | None) -> None:
        """Keep what a load read (its newest `lines` rows, oldest first) unless a write overlapped it.

        rows=None: the load failed; only the bookkeeping is undone.
        """
        with self._lock:
            loading = self._loading[key]
            loading[1] -= 1
            if loading[1] == 0:
                del self._loading[key]
            if rows is None or loading[0] != started or key in self._kept:
                return
            self._kept[key] = deque(rows[-self.lines :], maxlen=self.lines)
            while len(self._kept) > self.rooms:
                self._kept.popitem(last=False)

    def add(self, key: str, row: Stored | Row) -> None:
        """A row was stored: follow it in a kept room (called in the order rows are stored)."""
        with self._lock:
            self._wrote(key)
            rows = self._kept.get(key)
            if rows is None:
                return
            if rows and _ts(row) < _ts(rows[-1]):
                # The database sorts by time: this row is not the newest there.
                del self._kept[key]
                return
            rows.append(row)

    def drop(self, key: str) -> None:
        """Rows of a room were deleted: forget the room until it is read again."""
        with self._lock:
            self._wrote(key)
            self._kept.pop(key, None)

    def _wrote(self, key: str) -> None:
        loading = self._loading.get(key)
        if loading is not None:
            loading[0] += 1


def _ts(row: Stored | Row) -> int:
    return row.ts_ms if isinstance(row, Stored) else row[2]
