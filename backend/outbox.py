"""A bounded outbound byte queue between the threads that produce lines and one writer.

Producers never block: put() refuses once the queued bytes would pass the limit,
and the caller disconnects that client ("SendQ exceeded") instead of letting a
slow reader hold up the sender or grow memory without bound. The writer takes
everything queued at once, so a burst leaves in one sendall.

A put() is on the fan-out path (once per recipient of every message), so it does
as little as it can: one plain lock, and a wake-up only for a writer that is
actually asleep. The writer sleeps on a second lock used as a binary semaphore
rather than a threading.Condition, whose wait() builds a new lock every time and
whose notify() runs in Python.
"""

from __future__ import annotations

import threading


class Outbox:
    """Bytes waiting to be sent to one client, at most limit bytes of them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        # Held while there is nothing for the writer to do; released once to wake it.
        self._wake = threading.Lock()
        self._wake.acquire()
        self._sleeping = False
        self._chunks: list[bytes] = []
        self._size = 0
        self._closed = False

    def put(self, data: bytes) -> bool:
        """Queue data; False if that would pass the limit. Data put after close is dropped."""
        with self._lock:
            if self._closed:
                return True
            if self._size + len(data) > self.limit:
                return False
            self._chunks.append(data)
            self._size += len(data)
            if self._sleeping:
                self._sleeping = False
                self._wake.release()
            return True

    def close(self, last: bytes = b"") -> None:
        """Accept nothing more but last; the writer drains what is queued, then stops."""
        with self._lock:
            if self._closed:
                return
            if last:
                self._chunks.append(last)
                self._size += len(last)
            self._closed = True
            if self._sleeping:
                self._sleeping = False
                self._wake.release()

    @property
    def closed(self) -> bool:
        """Whether close() has been called."""
        return self._closed

    def take(self) -> bytes | None:
        """Wait for data and return all of it joined; None once closed and drained."""
        while True:
            with self._lock:
                chunks = self._chunks
                if chunks:
                    self._chunks = []
                    self._size = 0
                    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
                if self._closed:
                    return None
                self._sleeping = True
            self._wake.acquire()
