"""The Outbox's hand-offs between the sending threads, and the Flusher.

The unit tests drive one Outbox with a send function that takes what it is told to;
the last test runs the real thing over a socketpair: producers, the flusher and a
writer thread at once, with a reader that stalls, and checks nothing is lost or
reordered.
"""

from __future__ import annotations

import socket
import threading
import time

from backend.net.flusher import Flusher
from backend.net.outbox import BURST, Outbox, Queued


class Kernel:
    """A send_now that takes at most `room` bytes per call, like a socket buffer."""

    def __init__(self, room: int = 1 << 20) -> None:
        self.room = room
        self.calls: list[bytes] = []

    def __call__(self, data: bytes) -> int:
        taken = data[: self.room]
        if not taken:
            raise BlockingIOError
        self.calls.append(taken)
        return len(taken)


def test_offer_sends_at_once_when_nothing_is_queued() -> None:
    box, kernel = Outbox(1000), Kernel()
    assert box.offer(b"a\r\n", kernel)
    assert kernel.calls == [b"a\r\n"]


def test_defer_asks_for_the_flusher_once_and_flush_sends_the_pile_in_one_call() -> None:
    box, kernel = Outbox(1000), Kernel()
    assert box.defer(b"1\r\n") is Queued.SCHEDULE
    assert box.defer(b"2\r\n") is Queued.QUEUED
    assert box.defer(b"3\r\n") is Queued.QUEUED
    assert box.flush(kernel) is False
    assert kernel.calls == [b"1\r\n2\r\n3\r\n"]
    # Drained: the next fan-out line needs the flusher again.
    assert box.defer(b"4\r\n") is Queued.SCHEDULE


def test_a_reply_after_queued_fan_out_waits_its_turn() -> None:
    box, kernel = Outbox(1000), Kernel()
    box.defer(b"JOIN\r\n")
    assert box.offer(b"353\r\n", kernel)
    assert kernel.calls == []  # not sent ahead of the JOIN
    box.flush(kernel)
    assert kernel.calls == [b"JOIN\r\n353\r\n"]


def test_what_the_socket_refuses_goes_to_the_writer_in_order() -> None:
    box, kernel = Outbox(1000), Kernel(room=4)
    box.defer(b"hello\r\n")
    assert box.flush(kernel) is False
    assert kernel.calls == [b"hell"]
    # The writer owns the rest now: more fan-out queues behind it, no flusher needed.
    assert box.defer(b"more\r\n") is Queued.QUEUED
    assert box.take() == b"o\r\nmore\r\n"
    box.done()


def test_lines_queued_during_a_flush_ask_to_be_flushed_again() -> None:
    box = Outbox(1000)
    box.defer(b"first\r\n")

    def send_and_meanwhile(data: bytes) -> int:
        assert box.defer(b"second\r\n") is Queued.QUEUED  # the flusher is busy with us
        return len(data)

    assert box.flush(send_and_meanwhile) is True
    kernel = Kernel()
    assert box.flush(kernel) is False
    assert kernel.calls == [b"second\r\n"]


def test_the_limit_refuses_without_queueing() -> None:
    box = Outbox(10)
    assert box.defer(b"12345678\r\n") is Queued.SCHEDULE
    assert box.flush(Kernel(room=4)) is False  # the socket refuses bytes: the client is behind
    assert box.defer(b"x" * 8) is Queued.FULL
    assert box.put(b"x" * 8) is False
    assert box.offer(b"x" * 8, Kernel()) is False


def test_the_limit_holds_once_the_socket_refuses_bytes_and_a_burst_is_bounded() -> None:
    box = Outbox(10)
    # The socket has taken all it was given: a burst the server made in one go may pass the limit.
    assert box.defer(b"a batch of JOINs\r\n") is Queued.SCHEDULE
    assert box.defer(b"MODE\r\n") is Queued.QUEUED
    assert box.defer(b"x" * 80) is Queued.FULL  # past BURST times the limit: refused all the same
    # The socket refuses bytes: this client is behind, and the limit is the limit.
    assert box.flush(Kernel(room=4)) is False
    assert box.defer(b"more\r\n") is Queued.FULL


def test_close_drains_through_the_writer_then_ends_it() -> None:
    box = Outbox(1000)
    box.defer(b"last words\r\n")
    box.close(b"ERROR\r\n")
    assert box.flush(Kernel()) is False  # the flusher leaves a closing queue to the writer
    assert box.take() == b"last words\r\nERROR\r\n"
    box.done()
    assert box.take() is None
    assert box.defer(b"too late\r\n") is Queued.QUEUED  # dropped, not an error


def test_everything_arrives_once_and_in_order_under_contention() -> None:
    """Three producers, the flusher and a writer on a real socket whose reader pauses."""
    left, right = socket.socketpair()
    left.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    box = Outbox(64 << 20)
    flusher = Flusher()

    class Conn:
        def flush(self) -> bool:
            return box.flush(lambda data: left.send(data, socket.MSG_DONTWAIT))

    conn = Conn()

    def writer() -> None:
        while (data := box.take()) is not None:
            left.sendall(data)
            box.done()

    def producer(name: str, count: int, fan_out: bool) -> None:
        for i in range(count):
            line = f"{name} {i}\r\n".encode()
            if fan_out:
                if box.defer(line) is Queued.SCHEDULE:
                    flusher.schedule(conn)
            else:
                assert box.offer(line, lambda data: left.send(data, socket.MSG_DONTWAIT))

    received = bytearray()
    expected_lines = 3 * 5000

    def reader() -> None:
        right.settimeout(30)
        paused = False
        while received.count(b"\n") < expected_lines:
            if not paused and len(received) > 20000:
                paused = True
                threading.Event().wait(0.3)  # let the socket fill up so the writer takes over
            chunk = right.recv(65536)
            if not chunk:
                return
            received.extend(chunk)

    threads = [
        threading.Thread(target=writer),
        threading.Thread(target=reader),
        threading.Thread(target=producer, args=("a", 5000, True)),
        threading.Thread(target=producer, args=("b", 5000, True)),
        threading.Thread(target=producer, args=("c", 5000, False)),
    ]
    flusher.start()
    try:
        for t in threads:
            t.start()
        for t in threads[2:]:
            t.join(30)
        threads[1].join(30)
        arrived = received.count(b"\n")
        assert not threads[1].is_alive(), f"only {arrived} of {expected_lines} lines arrived"
    finally:
        box.close()
        threads[0].join(5)
        flusher.stop()
        left.close()
        right.close()
    lines = bytes(received).decode().split("\r\n")[:-1]
    assert len(lines) == expected_lines
    for name in "abc":
        mine = [int(line.split()[1]) for line in lines if line.startswith(name + " ")]
        assert mine == list(range(5000)), f"{name}'s lines were lost or reordered"


def test_deliver_schedules_once_per_pile_and_refuses_past_the_limit() -> None:
    """Outbox.deliver (the fan-out path): defer() and what its caller does with the answer."""
    box = Outbox(limit=10)
    calls: list[str] = []
    deliver = box.fan_out_to(lambda: calls.append("schedule"), lambda: calls.append("full"))
    deliver(b"abc")
    deliver(b"def")  # already scheduled: queued behind the first, no second schedule
    assert calls == ["schedule"]
    deliver(b"far too long" * 7)  # 6 + 84: past BURST times the limit
    assert calls == ["schedule", "full"]
    a, b = socket.socketpair()
    try:
        assert box.flush(a.send) is False
        assert b.recv(100) == b"abcdef"  # the refused bytes were never queued
        deliver(b"g")  # sent and idle again: the next delivery schedules again
        assert calls == ["schedule", "full", "schedule"]
        box.close()
        deliver(b"h")  # closed: taken and dropped, nobody is called
        assert calls == ["schedule", "full", "schedule"]
    finally:
        a.close()
        b.close()


def test_fan_out_queued_during_a_reply_goes_to_the_flusher_not_a_writer() -> None:
    writers: list[int] = []
    scheduled: list[int] = []
    box = Outbox(1000, start_writer=lambda: writers.append(1))
    deliver = box.fan_out_to(lambda: scheduled.append(1), lambda: None)
    sent: list[bytes] = []

    def send_now(data: bytes) -> int:
        deliver(b"QUIT\r\n")  # another thread's fan-out, arriving while this reply is on its way
        sent.append(data)
        return len(data)

    assert box.offer(b"PONG\r\n", send_now)
    assert sent == [b"PONG\r\n"]
    assert scheduled == [1] and writers == []
    assert box.flush(lambda data: sent.append(data) or len(data)) is False
    assert sent == [b"PONG\r\n", b"QUIT\r\n"]


def test_fanned_out_bytes_keep_their_place_before_a_reply_and_later_fan_out() -> None:
    box, kernel = Outbox(1000), Kernel()
    box.fan_out.append(b"said before\r\n")  # queued without the lock (Chat.publish)
    assert box.offer(b"reply\r\n", kernel)  # must not overtake it
    box.deliver(b"JOIN\r\n")
    box.fan_out.append(b"said after\r\n")
    assert kernel.calls == []
    assert box.flush(kernel) is False
    assert kernel.calls == [b"said before\r\nreply\r\nJOIN\r\nsaid after\r\n"]


def test_fanned_out_bytes_past_the_limit_mark_the_outbox_overflowed() -> None:
    box = Outbox(10)
    box.flush(Kernel())
    assert box.offer(b"123456\r\n", Kernel(room=2)) is True  # the socket refuses bytes: behind
    box.fan_out.append(b"more than fits\r\n")
    box.flush(Kernel())
    assert box.overflowed


def test_fan_out_alone_goes_out_in_one_send_up_to_a_burst_past_the_limit() -> None:
    box, kernel = Outbox(10), Kernel()
    box.fan_out.append(b"12345678\r\n")
    box.fan_out.append(b"abcdefgh\r\n")  # 20 bytes: past the limit, but nothing was refused yet
    assert box.flush(kernel) is False
    assert kernel.calls == [b"12345678\r\nabcdefgh\r\n"] and not box.overflowed

    box.fan_out.extend([b"x" * 9 + b"\n"] * (BURST + 1))  # 10 bytes each: more than even a burst
    assert box.flush(kernel) is False
    assert box.overflowed and len(kernel.calls) == 1


def test_what_is_fanned_out_to_a_closed_outbox_is_dropped() -> None:
    box, kernel = Outbox(1000), Kernel()
    box.close()
    box.fan_out.append(b"too late\r\n")
    assert box.flush(kernel) is False
    assert kernel.calls == [] and not box.overflowed


def test_the_flusher_flushes_each_connection_handed_over_once_per_pass() -> None:
    flushed: list[str] = []
    busy, go = threading.Event(), threading.Event()

    class Conn:
        def __init__(self, name: str) -> None:
            self.name = name

        def flush(self) -> bool:
            if self.name == "first":
                busy.set()
                go.wait(10)
            flushed.append(self.name)
            return False

    flusher = Flusher()
    flusher.start()
    try:
        flusher.ready([Conn("first")])
        assert busy.wait(10)  # the flusher is in a pass
        a, b = Conn("a"), Conn("b")
        for _ in range(5):  # five messages to the same two recipients before its next pass
            flusher.ready([a, b])
        go.set()
        deadline = time.monotonic() + 10
        while len(flushed) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        flusher.stop()
    assert flushed[0] == "first" and sorted(flushed[1:]) == ["a", "b"]
