"""A bounded outbound byte queue between the threads that produce lines and one writer.

Producers never block: put() refuses once the queued bytes would pass the limit,
and the caller disconnects that client ("SendQ exceeded") instead of letting a
slow reader hold up the sender or grow memory without bound. The writer takes
everything queued at once, so a burst leaves in one sendall.
"""

from __future__ import annotations

import threading


class Outbox:
    """Bytes waiting to be sent to one client, at most limit bytes of them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._cond = threading.Condition(threading.Lock())
        self._chunks: list[bytes] = []
        self._size = 0
        self._closed = False

    def put(self, data: bytes) -> bool:
        """Queue data; False if that would pass the limit. Data put after close is dropped."""
        with self._cond:
            if self._closed:
                return True
            if self._size + len(data) > self.limit:
                return False
            self._chunks.append(data)
            self._size += len(data)
            if len(self._chunks) == 1:
                self._cond.notify()
            return True

    def close(self, last: bytes = b"") -> None:
        """Accept nothing more but last; the writer drains what is queued, then stops."""
        with self._cond:
            if self._closed:
                return
            if last:
                self._chunks.append(last)
                self._size += len(last)
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """Whether close() has been called."""
        return self._closed

    def take(self) -> bytes | None:
        """Wait for data and return all of it joined; None once closed and drained."""
        with self._cond:
            while not self._chunks and not self._closed:
                self._cond.wait()
            if not self._chunks:
                return None
            data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
            self._chunks = []
            self._size = 0
            return data
