"""A bounded outbound byte queue for one client, and who is responsible for sending it.

Producers never block: a put that would pass the limit is refused, and the caller
disconnects that client ("SendQ exceeded") instead of letting a slow reader hold up
the sender or grow memory without bound. The limit is for a client that has fallen
behind: one whose socket has refused bytes (`_stalled`). Until then a queue may hold up to
BURST times the limit, since a burst the server makes in one go (a room shown at once with
-D, a pass of the flusher that took long in a join storm: thousands of JOINs) is waiting on
the server, not on the client. A TLS client's queue always goes through its writer (stalled
from the first byte), so for it the limit is strict.

Three kinds of thread send from an Outbox, never two at once (`_busy`), so lines
never interleave or overtake each other:
- the thread that produced a line, at once and without blocking, when nothing is
  queued (offer: a reply to one client wakes no other thread);
- the server's flusher thread, for fan-out (fan_out or defer, then flush: one thread sends
  for every recipient, many lines per send, instead of waking a writer per recipient);
- the connection's own writer thread, for whatever the socket would not take without
  blocking (`_stalled`), for TLS connections (put), and to drain at close what the socket
  would not take then. Most connections never need one, so it is started the first time
  it is (`start_writer`).

A connection that is going away must not cost a thread: when thousands leave at once,
thousands of writer threads starting to push QUITs at dead sockets would fight over the
GIL and freeze everyone else. So close() sends the last bytes from the closing thread
without blocking, and the writer starts only for what a live socket would not take; a
socket that is broken (the send failed with anything but "would block"), or whose peer
has gone (close(drop_rest=True)), has what is queued dropped: nobody is left to read it.

Whenever bytes are queued, exactly one of these is on its way to send them: a thread
inside its send (`_busy`), the flusher (`_scheduled`), or the writer (`_stalled`, or
`_closed`). Whoever finishes a send hands on what was queued meanwhile.

The writer sleeps on a second lock used as a binary semaphore rather than a
threading.Condition, whose wait() builds a new lock every time and whose notify()
runs in Python: these methods run once per recipient of every message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from enum import Enum

# Sends without blocking (a send with MSG_DONTWAIT): how many bytes the kernel took.
SendNow = Callable[[bytes], int]


# How far past its limit a client's queue may grow while its socket still takes all it is given.
BURST = 8


class Queued(Enum):
    """What defer() did with the bytes."""

    QUEUED = 1  # someone is already on their way to send them
    SCHEDULE = 2  # the caller must list this connection with the flusher
    FULL = 3  # refused: the queue would pass its limit


def _send(send_now: SendNow, data: bytes) -> int | None:
    """Bytes the socket took without blocking; None if it is broken and will never take any."""
    try:
        return send_now(data)
    except BlockingIOError:
        return 0
    except OSError:
        return None


# Bound once: an Enum member read through its class costs a lookup, and defer() runs once per
# recipient of every message.
_QUEUED, _SCHEDULE, _FULL = Queued.QUEUED, Queued.SCHEDULE, Queued.FULL


def _nothing() -> None:
    pass


class Outbox:
    """Bytes waiting to be sent to one client, at most limit bytes of them."""

    def __init__(self, limit: int, start_writer: Callable[[], None] | None = None) -> None:
        self.limit = limit
        self._burst = limit * BURST
        # Called (lock held) whenever the writer is needed; it must start the writer thread
        # if it isn't running yet and return without waiting for it.
        self._start_writer = start_writer
        self._lock = threading.Lock()
        # Held while there is nothing for the writer to do; released once to wake it.
        self._wake = threading.Lock()
        self._wake.acquire()
        self._sleeping = False
        self._busy = False
        self._scheduled = False
        self._stalled = False
        self._chunks: list[bytes] = []
        self._size = 0
        # Fan-out queued without the lock, by fan_out (Chat.publish, once per recipient of every
        # message): under the GIL a list's append, a slice of it and a del of a slice are each
        # atomic, so appending needs no lock, and whoever next takes the lock moves what
        # is here to the queue proper, in order, before anything else (_absorb). The flusher is
        # handed the connection by the same publish, after the append: it comes to it.
        self._fanned: list[bytes] = []
        self.fan_out = self._fanned
        # What fan_out queued passed the limit: the connection must be dropped (SendQ exceeded).
        self.overflowed = False
        self._closed = False
        # What deliver() calls (fan_out_to): list us with the flusher; refuse over the limit.
        self._schedule: Callable[[], None] = _nothing
        self._full: Callable[[], None] = _nothing
        # The peer can no longer read: whatever is queued or put from now on is dropped.
        self._gone = False

    def _append(self, data: bytes) -> bool:
        size = self._size + len(data)
        if size > self.limit and self._behind(size):
            return False
        self._chunks.append(data)
        self._size = size
        return True

    def _behind(self, size: int) -> bool:
        """Whether a queue of size bytes, past the limit, is one to refuse (lock held): the
        socket has refused bytes, or even a burst would not be that big (see BURST)."""
        return self._stalled or size > self._burst

    def _take_fanned(self) -> list[bytes]:
        """What fan_out queued so far, taken out (lock held)."""
        fanned = self._fanned
        count = len(fanned)
        taken = fanned[:count]
        del fanned[:count]  # not clear(): a fan_out may have appended meanwhile
        return taken

    def _absorb(self) -> None:
        """Move what fan_out queued into the queue proper (lock held; call only if there is some)."""
        taken = self._take_fanned()
        if self._closed or self._gone:
            return
        size = self._size + sum(map(len, taken))
        if size > self.limit and self._behind(size):
            self.overflowed = True
            return
        self._chunks.extend(taken)
        self._size = size
        if self._stalled:
            self._rouse()

    def _rouse(self) -> None:
        """Wake the writer if it sleeps in take(), to look again (lock held)."""
        if self._sleeping:
            self._sleeping = False
            self._wake.release()

    def _wake_writer(self) -> None:
        """Make the writer responsible for what is queued (lock held)."""
        self._stalled = True
        if self._start_writer is not None:
            self._start_writer()
        self._rouse()

    def _drop(self) -> None:
        """Nobody can read what is queued any more: forget it, and take nothing more (lock held)."""
        self._gone = True
        self._chunks = []
        self._size = 0
        self._rouse()  # a writer waiting for work finds none, and ends once closed

    def _handed_back(self, data: bytes, sent: int | None) -> bool:
        """After a send (lock held): queue what the socket refused; True if more came meanwhile.

        sent is None when the socket is broken: then nothing more goes to it, and no writer starts.
        """
        self._busy = False
        if sent is None or self._gone:
            self._drop()
            return False
        if sent < len(data):
            rest = data[sent:] if sent else data
            self._chunks.insert(0, rest)
            self._size += len(rest)
            self._wake_writer()
            return False
        if self._closed:
            self._rouse()
            return False
        return bool(self._chunks)

    def put(self, data: bytes) -> bool:
        """Queue data for the writer thread; False if that would pass the limit."""
        with self._lock:
            if self._fanned:
                self._absorb()
            if self._closed or self._gone:
                return True
            if not self._append(data):
                return False
            self._wake_writer()
            return True

    def offer(self, data: bytes, send_now: SendNow) -> bool:
        """Like put(), but when nobody is sending or about to, send at once from this thread.

        send_now must never block; whatever it did not take is queued for the writer,
        ahead of anything queued meanwhile.
        """
        with self._lock:
            if self._fanned:
                self._absorb()
            if self._closed or self._gone:
                return True
            if self._chunks or self._busy or self._scheduled or self._stalled:
                return self._append(data)
            self._busy = True
        sent = _send(send_now, data)
        with self._lock:
            more = self._handed_back(data, sent)
            if more:
                # Fan-out queued behind this send, and the socket is taking what it is given:
                # the flusher sends it (a thread started for it would cost more than the send).
                self._scheduled = True
                if self._schedule is _nothing:
                    self._wake_writer()
                    more = False
        if more:
            self._schedule()
        return True

    def defer(self, data: bytes) -> Queued:
        """Queue data for the flusher; SCHEDULE means the caller must list us with it."""
        # Once per recipient of every message: _append is written out here on purpose.
        with self._lock:
            if self._fanned:
                self._absorb()
            if self._closed or self._gone:
                return _QUEUED
            size = self._size + len(data)
            if size > self.limit and self._behind(size):
                return _FULL
            idle = not (self._chunks or self._busy or self._scheduled or self._stalled)
            self._chunks.append(data)
            self._size = size
            if idle:
                self._scheduled = True
                return _SCHEDULE
            return _QUEUED

    def fan_out_to(self, schedule: Callable[[], None], full: Callable[[], None]) -> Callable[[bytes], None]:
        """deliver() bound to what defer()'s caller does with its answer: the fan-out path in one call."""
        self._schedule = schedule
        self._full = full
        return self.deliver

    def deliver(self, data: bytes) -> None:
        """defer(), then schedule() if the flusher must be told, or full() if refused (see fan_out_to)."""
        # Once per recipient of every message: defer() and its caller's branch, written out in one frame.
        with self._lock:
            if self._fanned:
                self._absorb()
            if self._closed or self._gone:
                return
            size = self._size + len(data)
            if size > self.limit and self._behind(size):
                refused = True
            else:
                refused = False
                idle = not (self._chunks or self._busy or self._scheduled or self._stalled)
                self._chunks.append(data)
                self._size = size
                if not idle:
                    return
                self._scheduled = True
        if refused:
            self._full()
        else:
            self._schedule()

    def flush(self, send_now: SendNow) -> bool:
        """The flusher's turn: send everything queued without blocking.

        True if more was queued during the send and the caller must schedule us again.
        """
        with self._lock:
            self._scheduled = False
            fanned = self._fanned
            if fanned and not (self._chunks or self._busy or self._stalled or self._closed or self._gone):
                # The usual case in a busy room: nothing queued but room fan-out. It is sent as
                # it is, without passing through the queue (and its count of bytes) first.
                data = b"".join(self._take_fanned())
                if len(data) > self.limit and self._behind(len(data)):
                    self.overflowed = True
                    return False
                self._busy = True
                chunks = None
            else:
                if fanned:
                    self._absorb()
                if self._busy or self._stalled or self._closed or not self._chunks:
                    return False
                chunks = self._chunks
                self._chunks = []
                self._size = 0
                self._busy = True
        if chunks is not None:
            # Joined outside the lock: a pile can be long, and producers are waiting to add to it.
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        sent = _send(send_now, data)
        with self._lock:
            again = self._handed_back(data, sent)
            if again:
                self._scheduled = True
            return again

    def close(self, last: bytes = b"", send_now: SendNow | None = None, drop_rest: bool = False) -> bool:
        """Accept nothing more but last; True if the writer thread has been left something to send.

        With send_now, what is queued and last are sent from this thread without blocking
        (unless another thread is sending). What that leaves goes to the writer, started if
        need be; with drop_rest (the peer is gone or not reading) it is dropped instead, so
        a departure never costs a thread. A writer already running stops once it has sent
        what is its to send.
        """
        with self._lock:
            if self._fanned:
                self._absorb()
            if self._closed:
                return False
            self._closed = True
            if self._gone:
                return False
            if last:
                self._chunks.append(last)
                self._size += len(last)
            if not self._chunks:
                self._rouse()
                return False
            if send_now is None or self._busy or self._stalled:
                if drop_rest:
                    self._drop()
                    return False
                # A send in progress or a writer at work: the queue is the writer's to finish.
                if self._start_writer is not None:
                    self._start_writer()
                self._rouse()
                return True
            chunks = self._chunks
            self._chunks = []
            self._size = 0
            self._busy = True
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        sent = _send(send_now, data)
        with self._lock:
            self._busy = False
            if sent is None or self._gone or sent >= len(data) or drop_rest:
                self._drop()  # all sent, the socket is broken, or the rest is not worth a thread
                return False
            rest = data[sent:]
            self._chunks.insert(0, rest)
            self._size += len(rest)
            self._wake_writer()
            return True

    @property
    def closed(self) -> bool:
        """Whether close() has been called."""
        return self._closed

    def take(self) -> bytes | None:
        """The writer's wait: all queued data once it is the writer's to send; None once closed and drained.

        The writer calls done() once it has sent what take() returned.
        """
        while True:
            with self._lock:
                if self._fanned:
                    self._absorb()
                if not self._busy and (self._stalled or self._closed):
                    chunks = self._chunks
                    if chunks:
                        self._chunks = []
                        self._size = 0
                        self._busy = True
                        return chunks[0] if len(chunks) == 1 else b"".join(chunks)
                    if self._closed:
                        return None
                    self._stalled = False  # drained: fan-out goes back to the flusher
                self._sleeping = True
            self._wake.acquire()

    def done(self) -> None:
        """The writer finished sending what take() returned."""
        with self._lock:
            self._busy = False
