"""Issue 16, the storage side: bad CHATHISTORY timestamps, damaged databases, the history writer's bound.

Everything runs against real servers (sockets, or `python -m backend.cli serve` in a
subprocess) except the queue bound and back-pressure, which are unit tests of History.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from backend.store.sqlite import SCHEMA, History
from tests.ircclient import connect


@pytest.mark.parametrize("stamp", ["2020-13-45T99:99:99Z", "0000-01-01T00:00:00Z", "2021-02-29T00:00:00Z"])
def test_chathistory_with_an_impossible_timestamp_fails_with_a_standard_reply(make_server, stamp: str) -> None:
    server = make_server()
    alice = connect(server.address, "alice")
    make_server.clients.append(alice)
    for sub in ("BEFORE", "AFTER", "AROUND", "LATEST"):
        alice.send(f"CHATHISTORY {sub} #lobby timestamp={stamp} 10")
        alice.expect(rf"FAIL CHATHISTORY INVALID_PARAMS timestamp={stamp} ")
    alice.send(f"CHATHISTORY BETWEEN #lobby timestamp=2020-01-01T00:00:00Z timestamp={stamp} 10")
    alice.expect(rf"FAIL CHATHISTORY INVALID_PARAMS timestamp={stamp} ")
    # The connection is fine, and a good timestamp still works.
    alice.send("CHATHISTORY BEFORE #lobby timestamp=2020-01-01T00:00:00Z 10")
    alice.expect(r"BATCH \+\S+ chathistory #lobby")


# -- a damaged database at start-up ------------------------------------------------------------


def _damaged_database(path: Path) -> None:
    """A real history file with 8 KiB of garbage in its middle, its header intact.

    Opening it and counting its rows still works (the index is whole); reading the table is not.
    """
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    db.executemany(
        "INSERT INTO messages (room, msgid, ts_ms, source, command, target, text) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [("#lobby", f"id{i}", i, "a!a@h", "TOPIC" if i % 100 == 0 else "PRIVMSG", "#lobby", "x" * 100)
         for i in range(3000)],
    )
    db.commit()
    db.close()
    clean = path.read_bytes()
    garbage = random.Random(16).randbytes(8192)
    # From the middle on, the first place where the damage is of that kind (the layout of pages
    # between table and index is SQLite's business).
    for offset in range(len(clean) // 2 // 4096 * 4096, len(clean) - 8192, 4096):
        path.write_bytes(clean[:offset] + garbage + clean[offset + 8192 :])
        check = sqlite3.connect(path)
        try:
            check.execute("SELECT count(*) FROM messages").fetchone()
        except sqlite3.DatabaseError:
            continue
        finally:
            check.close()
        return
    raise AssertionError("no damage of the wanted kind")


def _serve(path: Path, *flags: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backend.cli", "serve", "--irc-port", "0", "--web-port", "0", "--db", str(path), *flags],
        capture_output=True, text=True, timeout=timeout,
    )


def test_a_database_with_damaged_pages_is_one_clear_line_and_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "lobby.db"
    _damaged_database(path)
    result = _serve(path)
    assert result.returncode == 1
    assert "chat server on" not in result.stdout
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lobby: history database") and "is damaged" in lines[0]
    assert ".recover" in lines[0]


def test_check_db_runs_the_integrity_check_and_says_how_to_recover(tmp_path: Path) -> None:
    path = tmp_path / "lobby.db"
    _damaged_database(path)
    result = _serve(path, "--check-db")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "failed its integrity check" in lines[0]
    assert f"sqlite3 {path} .recover" in lines[0]


def test_check_db_on_a_healthy_database_serves(tmp_path: Path) -> None:
    path = tmp_path / "lobby.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--irc-port", "0", "--web-port", "0", "--db", str(path),
         "--check-db"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("chat server on ")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


# -- the history writer's bound and back-pressure ---------------------------------------------


def hold_writer(history: History) -> tuple[threading.Event, threading.Thread]:
    """Keep the writer thread busy until the returned event is set (a disk that stalls)."""
    release, busy = threading.Event(), threading.Event()

    def stall(db: object) -> None:
        busy.set()
        release.wait(30)

    reader = threading.Thread(target=history._call, args=(stall,))
    reader.start()
    assert busy.wait(10)
    return release, reader


def test_the_writer_queue_is_bounded_and_a_full_queue_holds_the_sender_back(tmp_path: Path) -> None:
    history = History(str(tmp_path / "h.db"), queue_rows=5, add_wait=30)
    history.open()
    try:
        release, reader = hold_writer(history)
        for i in range(5):
            history.add("#lobby", f"m{i}", 1.0 + i, "a!a@h", "PRIVMSG", f"m{i}")
        assert len(history._queue) == 5
        sixth = threading.Thread(target=history.add, args=("#lobby", "m5", 6.0, "a!a@h", "PRIVMSG", "m5"))
        sixth.start()
        sixth.join(0.3)
        assert sixth.is_alive(), "add() returned while the queue was full"
        assert len(history._queue) == 5
        release.set()
        sixth.join(10)
        reader.join(10)
        assert not sixth.is_alive()
        assert [row.text for row in history.latest("#lobby", 10)] == [f"m{i}" for i in range(6)]
    finally:
        history.close()


def test_a_stuck_writer_costs_storage_not_the_chat(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    history = History(str(tmp_path / "h.db"), queue_rows=2, add_wait=0.05)
    history.open()
    try:
        release, reader = hold_writer(history)
        with caplog.at_level("ERROR", logger="lobby.history"):
            for i in range(3):
                history.add("#lobby", f"m{i}", 1.0 + i, "a!a@h", "PRIVMSG", f"m{i}")
        assert any("not stored" in r.getMessage() for r in caplog.records)
        release.set()
        reader.join(10)
        assert [row.text for row in history.latest("#lobby", 10)] == ["m0", "m1"]
    finally:
        history.close()


def test_the_writer_commits_what_it_finds_without_waiting_for_a_batch_to_fill(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    history = History(str(path))
    history.open()
    try:
        history.add("#lobby", "m0", 1.0, "a!a@h", "PRIVMSG", "alone")
        # Another connection sees it committed, with no read through the writer to force it.
        deadline = time.monotonic() + 10
        while True:
            other = sqlite3.connect(path)
            try:
                if other.execute("SELECT count(*) FROM messages").fetchone() == (1,):
                    break
            finally:
                other.close()
            assert time.monotonic() < deadline, "the message was never committed"
            time.sleep(0.01)
    finally:
        history.close()
