"""A bounded queue from many threads to one, whose producers take no lock while it has room.

The history writer is fed a row for every room message, from every reader thread. With
queue.Queue every put and every get takes the one mutex, so a producer that comes while the
writer holds it (or waits for the GIL holding it) blocks, and a GIL handoff follows: in a busy
room that cost more than storing the row. Here a put is a deque append (atomic under the GIL)
and a look at one flag; locks are taken only to put the consumer to sleep or wake it, and
while the queue is full.

The bound is kept loosely: producers racing for the last places may each get one, so the
queue can pass `limit` by up to one item per producing thread. It is there to bound what a
stalled disk holds up, not to be exact.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Handoff(Generic[T]):
    """Items from any thread to one consumer (take()), in the order they were put."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: deque[T] = deque()
        self._lock = threading.Lock()
        # Held while the consumer sleeps; released once to wake it (as in net/outbox.py).
        self._wake = threading.Lock()
        self._wake.acquire()
        self._sleeping = False
        # Producers waiting for room; the consumer tells them when it has taken some.
        self._room = threading.Condition(threading.Lock())
        self._waiting = 0

    def __len__(self) -> int:
        return len(self._items)

    def put_nowait(self, item: T) -> bool:
        """Queue item unless the queue is full; False if it was."""
        if len(self._items) >= self.limit:
            return False
        self._items.append(item)
        # After the append: either the consumer sees the item before it sleeps, or this sees
        # it asleep (take() sets the flag before it looks).
        if self._sleeping:
            self._rouse()
        return True

    def put(self, item: T, timeout: float) -> bool:
        """Queue item, waiting up to timeout seconds for room; False if there was none."""
        if self.put_nowait(item):
            return True
        deadline = time.monotonic() + timeout
        with self._room:
            self._waiting += 1
            try:
                while len(self._items) >= self.limit:
                    left = deadline - time.monotonic()
                    timed_out = left <= 0 or not self._room.wait(left)
                    if timed_out and len(self._items) >= self.limit:
                        return False
            finally:
                self._waiting -= 1
        self._items.append(item)
        if self._sleeping:
            self._rouse()
        return True

    def _rouse(self) -> None:
        with self._lock:
            if self._sleeping:
                self._sleeping = False
                self._wake.release()

    def take(self, most: int) -> list[T]:
        """The consumer's wait: up to `most` of the oldest items, once there is at least one."""
        items = self._items
        while not items:
            with self._lock:
                self._sleeping = True
            if items:
                with self._lock:
                    if self._sleeping:  # nobody woke us: no release to consume
                        self._sleeping = False
                        break
                self._wake.acquire()  # a producer has released it already
                break
            self._wake.acquire()
        count = min(len(items), most)
        taken = [items.popleft() for _ in range(count)]
        if self._waiting:
            with self._room:
                self._room.notify_all()
        return taken
