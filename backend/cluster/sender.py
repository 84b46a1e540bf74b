"""This node's events on their way to Redis: one queue, one sender thread, held through outages.

Invariants:
- Order is kept: events reach Redis in the order they were submitted, across an outage
  too (what is held goes out first, after the recovery, before anything newer).
- While Redis is unreachable the queue is bounded at held_max (HELD_MAX): past it the
  oldest event is dropped, the first drop of an outage is logged, and the count is
  told when Redis answers again.
- While Redis answers, a full queue makes the submitter wait for room (back-pressure):
  nothing is dropped because this node talks faster than Redis listens.
- The submitter never waits for a round trip: a user's own node shows their line at
  once, and a burst costs one pipeline, not one round trip per event.

The sender knows nothing of users or rooms: an event is a Held, whose writes add
commands to a pipeline, and whose entry and payload go to a stream and CHANNEL.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from .streams import STREAM_MAX, STREAM_SLACK
from .wire import CHANNEL, HISTORY

log = logging.getLogger("lobby.cluster")

# Events held while Redis is unreachable; past this the oldest are dropped (and the log says how many).
HELD_MAX = 5000
# Held events sent in one pipeline (one round trip) once Redis is back.
SEND_BATCH = 500
# Waits between attempts to reach Redis again: doubling from the first to the last.
RETRY_FIRST = 0.25
RETRY_MAX = 2.0


@dataclass(eq=False, slots=True)
class Held:
    """One event for Redis: state writes, a stream entry, a pub/sub payload (any of them),
    sent together in this order."""

    writes: Callable[[Any], None] | None = None  # adds HSET/HDEL (or a nick release) to a pipeline
    room: str | None = None  # whose stream keeps `entry`
    entry: list[str] | None = None  # the STORE script's entry (streams.entry_args)
    payload: str | None = None  # published on CHANNEL
    seq: int = 0  # order of arrival, so the sender removes exactly what it sent


class Sender:
    """The queue of this node's events and the thread that sends them (run()).

    recover(r) is called, on the sender thread, before anything is sent after an outage:
    it puts back what Redis lost. store_sha() is the STORE script's sha for pipelines.
    The sender sends only while `client` is set (start to close); events submitted
    without one are dropped, as nobody else is there to hear them.
    """

    def __init__(self, recover: Callable[[Any], None], store_sha: Callable[[], str], stop: threading.Event,
                 held_max: int = HELD_MAX) -> None:
        self.client: Any = None
        self.held_max = held_max
        self._recover = recover
        self._store_sha = store_sha
        self._stop = stop
        # Held events: appended and removed under _lock; the sender thread waits on _wake.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        # Notified when the sender took events off the queue (submit and wait_sent wait on it).
        self._drained = threading.Condition(self._lock)
        self._held: deque[Held] = deque()
        self._seq = 0
        self._dropped = 0  # held events dropped in this outage (held_max reached)
        self._down = False  # Redis failed us: hold events, and recover before sending them
        self._must_recover = False
        self._delay = RETRY_FIRST  # before the next attempt after a failure
        self._sent = 0  # during the current outage, for the "answers again" line

    @property
    def down(self) -> bool:
        """Whether Redis is known to be away: events are held, reads go to the local copy."""
        return self._down

    @property
    def dropped(self) -> int:
        """How many held events were dropped in the current outage."""
        return self._dropped

    def held(self) -> list[Held]:
        """What is queued, oldest first (a copy)."""
        with self._lock:
            return list(self._held)

    def submit(self, item: Held, bounded: bool = True) -> None:
        """Queue one event for the sender thread, which sends what is queued in one pipeline.

        The caller (a user's reader thread) never waits for a Redis round trip (measured: two
        nodes on one box went from 0.4 to 0.65 of one node's fan-out once sends were batched).
        While Redis answers, a full queue makes the caller wait for room (back-pressure,
        nothing dropped); while it doesn't, the oldest held events give way (logged).
        Unbounded (bounded=False) is for announcing this node's state: its size is bounded by
        the number of local users, and it must never push out the events held before it.
        """
        if self.client is None:
            return
        with self._lock:
            while bounded and not self._down and len(self._held) >= self.held_max and not self._stop.is_set():
                self._drained.wait(1.0)
            self._hold(item, bounded=bounded)

    def wait_sent(self, timeout: float = 1.0) -> None:
        """Wait, at most timeout seconds, until what this node queued so far has reached Redis.

        Not at all while Redis is away: then the streams can't have it, and reads fall back.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._seq
            while not self._down and self._held and self._held[0].seq <= target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._drained.wait(remaining)

    def mark_down(self, reason: object) -> None:
        """Redis failed us: hold events from now on, and recover before sending them."""
        with self._lock:
            was_down, self._down, self._must_recover = self._down, True, True
            self._wake.notify()
            self._drained.notify_all()  # nobody waits for a Redis that is away
        if not was_down:
            log.warning("Redis unreachable (%s): holding this node's events until it is back", reason)

    def wake(self) -> None:
        """Get the sender thread out of its wait (at close: it sees the stop and returns)."""
        with self._wake:
            self._wake.notify_all()

    def _hold(self, item: Held, first: bool = False, bounded: bool = True) -> None:
        """Keep an event for the sender (lock held); past held_max drop the oldest, and say so."""
        if not first:
            self._seq += 1
            item.seq = self._seq
            self._held.append(item)
        else:
            self._held.appendleft(item)
        if bounded and len(self._held) > self.held_max:
            self._held.popleft()
            self._dropped += 1
            if self._dropped == 1:
                log.error("more than %d events held while Redis is unreachable: dropping the oldest", self.held_max)
        self._wake.notify()

    # -- the sender thread ------------------------------------------------------------

    def execute(self, r: Any, items: list[Held]) -> list[Held]:
        """Send items in one pipeline; return those whose stream entry must be stored again
        (Redis lost the streams or the script: it comes back after recovery).

        Raises on connection errors; a command Redis refuses is logged and not retried.
        """
        pipe = r.pipeline(transaction=False)
        stores: list[tuple[int, Held]] = []
        for item in items:
            if item.writes is not None:
                item.writes(pipe)
            if item.entry is not None and item.room is not None:
                stores.append((len(pipe), item))
                pipe.evalsha(self._store_sha(), 3, HISTORY.stream(item.room), HISTORY.index(item.room),
                             HISTORY.ready, STREAM_MAX, STREAM_SLACK, *item.entry)
            if item.payload is not None:
                pipe.publish(CHANNEL, item.payload)
        results = pipe.execute(raise_on_error=False)
        again = [Held(room=item.room, entry=item.entry, seq=item.seq) for index, item in stores
                 if results[index] == -1 or isinstance(results[index], redis.exceptions.NoScriptError)]
        for result in results:
            if isinstance(result, Exception) and not isinstance(result, redis.exceptions.NoScriptError):
                log.error("Redis refused a command of this node's events: %s", result)
        return again

    def run(self) -> None:
        """The sender thread: send what is queued until the stop is set or the client is gone."""
        while not self._stop.is_set():
            pause = self.step()
            if pause is None:
                return
            if pause:
                self._stop.wait(pause)

    def step(self) -> float | None:
        """Send one batch, oldest first; after an outage recover first. Waits a little when
        there is nothing to send. Returns how long to pause before the next step (None: stop)."""
        with self._lock:
            if not self._held and not self._down:
                self._wake.wait(1.0)
                return 0.0
            outage = self._down
            recover, self._must_recover = self._must_recover, False
            batch = [self._held[i] for i in range(min(SEND_BATCH, len(self._held)))]
        r = self.client
        if r is None:
            return None
        try:
            if recover:
                self._recover(r)
            again = self.execute(r, batch) if batch else []
        except (redis.RedisError, OSError) as err:
            self.mark_down(err)
            delay, self._delay = self._delay, min(self._delay * 2, RETRY_MAX)
            return delay
        self._delay = RETRY_FIRST
        if outage:
            self._sent += len(batch) - len(again)
        with self._lock:
            while self._held and batch and self._held[0].seq <= batch[-1].seq:
                self._held.popleft()
            self._drained.notify_all()
            for item in reversed(again):
                self._hold(item, first=True)
            if again:
                self._must_recover = True
            elif not self._held and not self._must_recover and self._down:
                self._down = False
                dropped, self._dropped = self._dropped, 0
                log.warning("Redis answers again: sent the %d events held meanwhile%s", self._sent,
                            f" ({dropped} older ones were dropped)" if dropped else "")
                self._sent = 0
        # The events went out; only their stream entries wait for the recovery.
        return self._delay if again else 0.0

    def send_held_at_close(self, r: Any, prepare: Callable[[Any], None]) -> None:
        """A clean stop: one last try at sending what is held; say how much could not be.

        prepare(r) runs first if Redis needs recovering: only what storing needs (announcing
        users would be pointless now).
        """
        with self._lock:
            held = list(self._held)
            self._held.clear()
        if not held:
            return
        try:
            if self._must_recover:
                prepare(r)
            again = self.execute(r, held)
        except (redis.RedisError, OSError) as err:
            log.error("stopping with %d events not sent to the cluster (Redis: %s)", len(held), err)
            return
        if again:
            log.error("stopping with %d room messages not stored in the shared history", len(again))
