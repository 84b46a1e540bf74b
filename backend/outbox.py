"""A bounded outbound byte queue between the threads that produce lines and one writer.

Producers never block: put() refuses once the queued bytes would pass the limit,
and the caller disconnects that client ("SendQ exceeded") instead of letting a
slow reader hold up the sender or grow memory without bound. The writer takes
everything queued at once, so a burst leaves in one sendall.

A put() is on the fan-out path (once per recipient of every message), so it does
as little as it can: one plain lock, and a wake-up only for a writer that is
actually asleep. The writer sleeps on a second lock used as a binary semaphore
rather than a threading.Condition, whose wait() builds a new lock every time and
whose notify() runs in Python. offer() goes further: when the queue is empty and
nobody is writing, the producing thread sends the bytes itself without blocking,
and the writer thread is only woken for what the socket would not take.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

# Whether this thread may send at once in offer(). Hub.publish() turns it off: room
# messages under load come faster than one syscall each can keep up with while the
# publishing threads take turns at the GIL on every syscall, whereas a writer thread
# sends everything that piled up in one. Measured: fan-out 860k deliveries/s queued,
# 470k sent at once. Joins, parts, quits and replies to one client are sent at once.
inline = threading.local()


def inline_allowed() -> bool:
    """Whether offer() may send from this thread right now (see `inline`)."""
    return getattr(inline, "ok", True)


class Outbox:
    """Bytes waiting to be sent to one client, at most limit bytes of them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        # Held while there is nothing for the writer to do; released once to wake it.
        self._wake = threading.Lock()
        self._wake.acquire()
        self._sleeping = False
        # True while bytes are on their way into the socket (the writer's sendall or an offer()):
        # nothing else may write then, or lines could interleave or overtake each other.
        self._busy = False
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

    def offer(self, data: bytes, send_now: Callable[[bytes], int]) -> bool:
        """Like put(), but when nothing is queued or being written, try to send at once.

        send_now must never block (a send with MSG_DONTWAIT): it returns how many bytes
        the kernel took or raises OSError. Whatever it did not take is queued for the
        writer, ahead of anything queued meanwhile. This saves waking a writer thread
        per line: a JOIN told to 2,000 members wakes no thread at all.
        """
        with self._lock:
            if self._closed:
                return True
            if self._chunks or self._busy or not inline_allowed():
                if self._size + len(data) > self.limit:
                    return False
                self._chunks.append(data)
                self._size += len(data)
                if self._sleeping and not self._busy:
                    self._sleeping = False
                    self._wake.release()
                return True
            self._busy = True
        try:
            sent = send_now(data)
        except OSError:
            sent = 0  # full (BlockingIOError) or broken: the writer finds out which
        with self._lock:
            self._busy = False
            if sent < len(data):
                rest = data[sent:] if sent else data
                self._chunks.insert(0, rest)
                self._size += len(rest)
            if self._sleeping and (self._chunks or self._closed):
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
        """Wait for data and return all of it joined; None once closed and drained.

        The writer calls done() once it has sent what take() returned.
        """
        while True:
            with self._lock:
                chunks = self._chunks
                if not self._busy:
                    if chunks:
                        self._chunks = []
                        self._size = 0
                        self._busy = True
                        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
                    if self._closed:
                        return None
                self._sleeping = True
            self._wake.acquire()

    def done(self) -> None:
        """The writer finished sending what take() returned."""
        with self._lock:
            self._busy = False
