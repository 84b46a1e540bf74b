"""The node's server-wide bans (K-lines), kept apart from the commands that set them (klines.py)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from ..irc import fold
from .masks import matches
from .room import normal_mask


@dataclass(frozen=True)
class KLine:
    """One server-wide ban."""

    mask: str
    setter: str
    reason: str
    expires: float | None  # time.time(); None: until lifted


class KLines:
    """The node's K-lines, behind their own lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: dict[str, KLine] = {}

    def add(self, line: KLine) -> None:
        with self._lock:
            self._lines[fold(line.mask)] = line

    def remove(self, mask: str) -> bool:
        with self._lock:
            return self._lines.pop(fold(normal_mask(mask)), None) is not None

    def current(self) -> list[KLine]:
        """The K-lines still in force (expired ones are forgotten here)."""
        now = time.time()
        with self._lock:
            for key in [k for k, v in self._lines.items() if v.expires is not None and v.expires <= now]:
                del self._lines[key]
            return list(self._lines.values())

    def banning(self, prefix: str) -> KLine | None:
        """The K-line that matches nick!user@host, if any."""
        return next((line for line in self.current() if matches(line.mask, prefix)), None)
