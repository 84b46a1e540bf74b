"""Issue 16, the network side: many clients leaving at once, and lines held in fake lag after a hang-up.

Over real sockets on port 0, except the first few, which drive one Outbox the way a
closing connection does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from backend.net.outbox import Outbox
from tests.ircclient import IrcClient, connect


class Starts:
    """Counts writer threads started by close(), through the Outbox's start_writer hook."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def test_close_sends_the_last_line_from_the_closing_thread_without_a_writer() -> None:
    starts, sent = Starts(), []
    box = Outbox(1000, starts)
    box.defer(b"QUIT\r\n")

    def send_now(data: bytes) -> int:
        sent.append(data)
        return len(data)

    assert box.close(b"ERROR\r\n", send_now) is False
    assert sent == [b"QUIT\r\nERROR\r\n"]
    assert starts.count == 0


def test_close_leaves_the_writer_only_what_a_live_socket_would_not_take() -> None:
    starts = Starts()
    box = Outbox(1000, starts)
    box.defer(b"QUIT\r\n")
    assert box.close(b"ERROR\r\n", lambda data: 3) is True
    assert starts.count == 1
    assert box.take() == b"T\r\nERROR\r\n"


def test_a_broken_socket_costs_no_writer_and_what_is_queued_is_dropped() -> None:
    starts = Starts()
    box = Outbox(1000, starts)

    def broken(data: bytes) -> int:
        raise BrokenPipeError

    box.defer(b"QUIT a\r\n")
    assert box.flush(broken) is False
    box.defer(b"QUIT b\r\n")  # accepted and dropped: nobody will read it
    assert box.offer(b"PONG\r\n", broken)
    assert box.close(b"ERROR\r\n", broken) is False
    assert starts.count == 0


def test_close_with_drop_rest_drops_what_it_cannot_send_at_once() -> None:
    starts = Starts()
    box = Outbox(1000, starts)
    box.defer(b"QUIT\r\n")
    assert box.close(b"ERROR\r\n", lambda data: 3, drop_rest=True) is False
    assert starts.count == 0
    assert box.take() is None
    box = Outbox(1000, starts)
    box.defer(b"QUIT\r\n")
    assert box.close(drop_rest=True) is False
    assert starts.count == 0
    assert box.take() is None


@pytest.fixture
def writer_starts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the connection writer threads started from now on."""
    started: list[str] = []
    real_start = threading.Thread.start

    def start(self: threading.Thread) -> None:
        if self.name.startswith("writer-"):
            started.append(self.name)
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start)
    return started


def _register_many(address: tuple[str, int], count: int) -> list[IrcClient]:
    """count registered clients, registering all at once rather than one after the other."""
    clients = [IrcClient(address) for _ in range(count)]
    for i, c in enumerate(clients):
        c.send_raw(f"NICK u{i}\r\nUSER u 0 * :u\r\n".encode())
    for i, c in enumerate(clients):
        c.expect(rf" 366 u{i} #lobby ", timeout=60)
    return clients


def test_two_hundred_clients_leaving_at_once_start_no_writer_and_others_are_answered(
    make_server: Callable[..., object], writer_starts: list[str]
) -> None:
    server = make_server()
    honest = connect(server.address, "honest")  # type: ignore[attr-defined]
    make_server.clients.append(honest)  # type: ignore[attr-defined]
    leavers = _register_many(server.address, 200)  # type: ignore[attr-defined]
    honest.sync()
    assert writer_starts == []
    for c in leavers:
        c.close()
    began = time.monotonic()
    honest.sync("during")
    answered = time.monotonic() - began
    # Everyone is gone for the others (no ghosts), and the departures cost no thread.
    deadline = time.monotonic() + 60
    while len(server.sessions()) > 1:  # type: ignore[attr-defined]
        assert time.monotonic() < deadline, "the leavers were not all removed"
        time.sleep(0.05)
    honest.sync("after")
    assert sum(" QUIT " in line for line in honest.seen) == 200
    assert writer_starts == [], f"{len(writer_starts)} writer threads started for clients that left"
    assert answered < 10


def test_a_client_that_hangs_up_while_held_in_fake_lag_quits_at_once(make_server: Callable[..., object]) -> None:
    # One line a second after a burst of two: 30 lines would take about half a minute to admit.
    server = make_server(flood_burst=2, flood_rate=1.0)
    watcher = connect(server.address, "watcher")  # type: ignore[attr-defined]
    make_server.clients.append(watcher)  # type: ignore[attr-defined]
    leaver = connect(server.address, "leaver")  # type: ignore[attr-defined]
    watcher.expect(r":leaver!\S+ JOIN ")
    leaver.send_raw(b"".join(f"PRIVMSG #lobby :line {i}\r\n".encode() for i in range(30)))
    leaver.close()
    began = time.monotonic()
    lines = watcher.lines_until(r":leaver!\S+ QUIT ", timeout=20)
    took = time.monotonic() - began
    said = [line for line in lines if "PRIVMSG #lobby :line" in line]
    assert took < 5, f"QUIT came {took:.1f} s after the hang-up, after {len(said)} lines"
    assert len(said) <= 4
    watcher.sync()
