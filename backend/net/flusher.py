"""One thread that sends everyone's fan-out, instead of waking a writer per recipient.

Waking a writer thread per recipient would cost a thread handoff (and a GIL handoff)
per delivery: a room message for 500 members, 500 of them. Instead, delivering only
queues the bytes in each member's Outbox and puts the member on this thread's list;
the flusher then sends each listed member everything queued for it in one
non-blocking send. Members whose queue
grows while the flusher works get several lines in that one send, so a join storm or a
busy room costs a syscall per member per pass, not per line.

What a socket won't take at once (a slow reader) goes to that connection's own writer
thread, which blocks in sendall for it; the flusher never blocks on anyone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from typing import Protocol

log = logging.getLogger("lobby.flusher")


class Flushable(Protocol):
    """A connection the flusher can send for."""

    def flush(self) -> bool:
        """Send what is queued without blocking; True if more came meanwhile."""
        ...


class Flusher:
    """Sends queued bytes for the connections put on its list (see the module docstring)."""

    def __init__(self, before_pass: Callable[[], None] | None = None) -> None:
        # Run at the start of every pass: the chat's batched JOINs (core/joinburst.py) are
        # delivered here, so a burst of joins reaches each member as one chunk per pass.
        self._before_pass = before_pass
        self._poked = False
        self._lock = threading.Lock()
        # Held while the list is empty; released once to wake the thread (as in Outbox).
        self._wake = threading.Lock()
        self._wake.acquire()
        self._sleeping = False
        self._pending: list[Flushable] = []
        # Connections handed over in one go by Chat.publish (ready()), as the collections it
        # gave, by identity: the room's audience hands over the same tuple for every message of
        # one sender, so a busy room costs one entry here per sender, not a set insertion per
        # recipient per message. A pass makes them one set, flushing each connection once.
        self._ready: dict[int, Collection[Flushable]] = {}
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="flusher", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Send what is listed, then end the thread."""
        with self._lock:
            self._stopped = True
            self._rouse()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _rouse(self) -> None:
        """Wake the thread if it sleeps (lock held)."""
        if self._sleeping:
            self._sleeping = False
            self._wake.release()

    def schedule(self, conn: Flushable) -> None:
        """List conn for sending; its Outbox makes sure it is listed at most once."""
        with self._lock:
            self._pending.append(conn)
            self._rouse()

    def ready(self, conns: Collection[Flushable]) -> None:
        """List every connection in conns for sending (the fan-out they were given without a
        schedule() each: Outbox.fan_out). conns is kept as it is, not copied: never change it."""
        with self._lock:
            self._ready[id(conns)] = conns
            self._rouse()

    def poke(self) -> None:
        """Have the thread make a pass (and so run before_pass) soon, even with nothing listed."""
        with self._lock:
            self._poked = True
            self._rouse()

    def _run(self) -> None:
        while True:
            if self._before_pass is not None:
                try:
                    self._before_pass()
                except Exception:
                    log.exception("before_pass failed")
            with self._lock:
                batch = self._pending
                ready = self._ready
                poked, self._poked = self._poked, False
                sleep = False
                if batch or ready:
                    self._pending = []
                    self._ready = {}
                elif not poked:
                    if self._stopped:
                        return
                    self._sleeping = sleep = True
            if sleep:
                self._wake.acquire()
                continue  # batch and ready are the live lists: take them afresh
            if ready:
                batch.extend(set().union(*ready.values()))
            if not batch:
                continue
            for conn in batch:
                try:
                    again = conn.flush()
                except Exception:
                    # One broken connection must not stop everyone else's messages.
                    log.exception("flushing %r failed", conn)
                    continue
                if again:
                    self.schedule(conn)
