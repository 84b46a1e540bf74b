"""History: the SQLite store, replay on join, CHATHISTORY, and surviving restarts."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from backend.core.history import Ref
from backend.irc import parse_line
from backend.store.sqlite import History, HistoryError
from tests.ircclient import IrcClient, connect, wait_until
from tests.test_cli import start_serve


def stop(proc: subprocess.Popen[str], sig: signal.Signals = signal.SIGTERM) -> int:
    proc.send_signal(sig)
    code = proc.wait(15)
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()
    return code


# -- the store ------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path):
    history = History(str(tmp_path / "h.db"))
    history.open()
    yield history
    history.close()


def fill(history: History, room: str, count: int, start: float = 1_700_000_000.0) -> None:
    for i in range(count):
        history.add(room, f"id{i}", start + i * 0.5, f"n{i % 3}!u@h", "PRIVMSG", f"message {i}")


def test_latest_before_after_around_between(store: History) -> None:
    fill(store, "#Room", 20)
    fill(store, "#other", 5)
    assert [r.text for r in store.latest("#room", 3)] == ["message 17", "message 18", "message 19"]
    assert [r.msgid for r in store.before("#ROOM", Ref(msgid="id10"), 2)] == ["id8", "id9"]
    assert [r.msgid for r in store.after("#room", Ref(msgid="id10"), 2)] == ["id11", "id12"]
    assert [r.msgid for r in store.around("#room", Ref(msgid="id10"), 4)] == ["id8", "id9", "id10", "id11"]
    assert [r.msgid for r in store.between("#room", Ref(msgid="id2"), Ref(msgid="id6"), 10)] == [
        "id3", "id4", "id5"]
    # From the later reference, paging runs backwards: the messages nearest to it come back.
    assert [r.msgid for r in store.between("#room", Ref(msgid="id6"), Ref(msgid="id2"), 2)] == ["id4", "id5"]
    ts = int((1_700_000_000.0 + 10 * 0.5) * 1000)
    assert [r.msgid for r in store.before("#room", Ref(ts_ms=ts), 1)] == ["id9"]
    assert [r.msgid for r in store.latest("#room", 100, Ref(msgid="id17"))] == ["id18", "id19"]
    assert store.before("#room", Ref(msgid="no-such-id"), 5) == []


def test_a_read_sees_messages_still_waiting_for_their_batch(store: History) -> None:
    store.add("#r", "fresh", time.time(), "a!u@h", "PRIVMSG", "just now")
    assert [r.msgid for r in store.latest("#r", 5)] == ["fresh"]


def test_history_survives_reopening(tmp_path: Path) -> None:
    path = str(tmp_path / "h.db")
    first = History(path)
    first.open()
    fill(first, "#r", 10)
    first.add("#r", "t1", 1_800_000_000.0, "alice!u@h", "TOPIC", "the topic")
    first.close()
    second = History(path)
    second.open()
    try:
        assert len(second.latest("#r", 50)) == 11
        assert second.topics() == {"#r": ("the topic", "alice", 1_800_000_000_000)}
    finally:
        second.close()


def test_unwritable_and_corrupt_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="cannot open history database"):
        History(str(tmp_path / "no-such-dir" / "h.db")).open()
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(HistoryError, match="not a database"):
        History(str(corrupt)).open()


# -- replay and CHATHISTORY over the wire ------------------------------------------


def test_replay_on_join_in_a_batch_with_original_times(server, client) -> None:
    alice = client("alice")
    for i in range(3):
        alice.send(f"PRIVMSG #lobby :old news {i}")
    alice.send("PRIVMSG bob :private, never stored")
    alice.send("PING sync")
    alice.expect("PONG")
    wait_until(lambda: len(server.history.latest("#lobby", 10)) == 3)  # stored before bob joins
    bob: IrcClient = client()
    bob.send("CAP LS 302")
    bob.send("CAP REQ :batch server-time message-tags")
    bob.send("NICK bob")
    bob.send("USER bob 0 * :Bob")
    bob.send("CAP END")
    bob.expect(r" 366 bob #lobby ")
    start = bob.expect(r"BATCH \+\S+ chathistory #lobby")
    batch_id = start.params[0][1:]
    lines = bob.lines_until(rf"BATCH -{batch_id}")
    replayed = [m for m in lines if "PRIVMSG" in m]
    assert [line.rsplit(":", 1)[1] for line in replayed] == ["old news 0", "old news 1", "old news 2"]
    assert all(f"batch={batch_id}" in line and "time=" in line and "msgid=" in line for line in replayed)
    assert not any("private" in line for line in lines)


def test_a_line_said_while_someone_joins_reaches_them_once(make_server, monkeypatch) -> None:
    """Said after the joiner became a member but before their replay was read: live, not again in the replay."""
    server = make_server()
    alice = connect(server.address, "alice")
    make_server.clients.append(alice)
    alice.send("PRIVMSG #lobby :before")
    alice.send("PING sync")
    alice.expect("PONG")
    reading, go = threading.Event(), threading.Event()
    latest = History.latest

    def held_latest(self: History, room: str, limit: int, after: Ref | None = None) -> list:  # type: ignore[type-arg]
        reading.set()
        go.wait(30)  # the replay is read only after "during" below was stored and delivered
        return latest(self, room, limit, after)

    monkeypatch.setattr(History, "latest", held_latest)
    carol = connect(server.address, "carol", caps="batch server-time message-tags")
    make_server.clients.append(carol)
    assert reading.wait(30)
    alice.send("PRIVMSG #lobby :during")
    carol.expect(r"PRIVMSG #lobby :during$")
    go.set()
    start = carol.expect(r"BATCH \+\S+ chathistory #lobby")
    lines = carol.lines_until(rf"BATCH -{start.params[0][1:]}")
    assert [line.rsplit(":", 1)[1] for line in lines if "PRIVMSG" in line] == ["before"]


def test_replay_for_plain_clients_reads_as_history(client) -> None:
    alice = client("alice")
    alice.send("PRIVMSG #lobby :said earlier")
    alice.send("PRIVMSG #lobby :\x01ACTION waved earlier\x01")
    alice.send("PING sync")
    alice.expect("PONG")
    bob = client("bob")
    bob.expect(r"NOTICE #lobby :Recent messages in #lobby")
    line = bob.expect(r"PRIVMSG #lobby :\[\d\d:\d\d\] said earlier")
    assert line.source.startswith("alice!")
    bob.expect(r"PRIVMSG #lobby :\x01ACTION \[\d\d:\d\d\] waved earlier\x01")
    bob.expect(r"NOTICE #lobby :End of recent messages")


def test_chathistory_pages_backwards_through_500_messages_without_gap_or_repeat(make_server) -> None:
    server = make_server(flood=False)  # 500 lines at once would be throttled as a flood otherwise

    def client(nick: str | None = None) -> IrcClient:
        c = connect(server.address, nick)
        make_server.clients.append(c)
        return c

    alice = client("alice")
    for i in range(500):
        alice.send(f"PRIVMSG #lobby :m{i}")
    alice.send("PING sync")
    alice.expect("PONG", timeout=30)
    reader: IrcClient = client()
    reader.send("CAP LS 302")
    reader.send("CAP REQ :batch server-time message-tags draft/chathistory")
    reader.send("NICK reader")
    reader.send("USER r 0 * :R")
    reader.send("CAP END")
    isupport = reader.expect(r" 005 reader ")
    assert "CHATHISTORY=100" in isupport.params
    reader.expect(r" 366 reader #lobby ")
    reader.expect(r"BATCH -")  # the replay on join
    seen: list[str] = []
    ref = "*"
    sub = "LATEST"
    for _ in range(20):
        reader.send(f"CHATHISTORY {sub} #lobby {ref} 100")
        start = reader.expect(r"BATCH \+\S+ chathistory #lobby")
        lines = reader.lines_until(rf"BATCH -{start.params[0][1:]}")
        page = [line for line in lines if " PRIVMSG " in line]
        if not page:
            break
        texts = [line.rsplit(":", 1)[1] for line in page]
        seen = texts + seen
        ref, sub = f"msgid={parse_line(page[0]).tags['msgid']}", "BEFORE"
    assert seen == [f"m{i}" for i in range(500)]


def test_chathistory_refuses_bad_requests_with_standard_replies(client) -> None:
    alice = client("alice")
    alice.send("CHATHISTORY LATEST #nowhere * 10")
    alice.expect(r"FAIL CHATHISTORY INVALID_TARGET LATEST #nowhere ")
    alice.send("CHATHISTORY BEFORE #lobby yesterday 10")
    alice.expect(r"FAIL CHATHISTORY INVALID_PARAMS yesterday ")
    alice.send("CHATHISTORY LATEST #lobby * 0")
    alice.expect(r"FAIL CHATHISTORY INVALID_PARAMS 0 ")
    alice.send("CHATHISTORY SIDEWAYS #lobby * 10")
    alice.expect(r"FAIL CHATHISTORY UNKNOWN_COMMAND SIDEWAYS ")
    alice.send("CHATHISTORY LATEST #lobby")
    alice.expect(r" 461 alice CHATHISTORY ")


# -- restarts -------------------------------------------------------------------


def tagged_reader(address: tuple[str, int], nick: str) -> IrcClient:
    return connect(address, nick, caps="batch server-time message-tags")


def test_messages_and_topic_survive_a_sigterm_restart_with_original_times(tmp_path: Path) -> None:
    db = str(tmp_path / "lobby.db")
    proc, found = start_serve("--db", db)
    try:
        alice = connect(found["chat"], "alice", caps="server-time message-tags echo-message")
        alice.send("TOPIC #lobby :before the restart")
        alice.send("PRIVMSG #lobby :remember me")
        sent = alice.expect(r"PRIVMSG #lobby :remember me")
        alice.close()
    finally:
        assert stop(proc) == 0
    proc, found = start_serve("--db", db)
    try:
        bob = tagged_reader(found["chat"], "bob")
        replayed = bob.expect(r"PRIVMSG #lobby :remember me")
        assert replayed.tags["time"] == sent.tags["time"]
        assert replayed.tags["msgid"] == sent.tags["msgid"]
        bob.send("TOPIC #lobby")
        bob.expect(r" 332 bob #lobby :before the restart")
        bob.close()
    finally:
        assert stop(proc) == 0


def test_kill_9_half_a_second_after_the_last_message_loses_nothing(tmp_path: Path) -> None:
    db = str(tmp_path / "lobby.db")
    proc, found = start_serve("--db", db, "--flood", "off")
    try:
        alice = connect(found["chat"], "alice")
        for i in range(50):
            alice.send(f"PRIVMSG #lobby :line {i}")
        alice.send("PING sync")
        alice.expect("PONG")
        time.sleep(0.5)
    finally:
        stop(proc, signal.SIGKILL)
        alice.close()
    rows = sqlite3.connect(db).execute("SELECT text FROM messages ORDER BY id").fetchall()
    assert [r[0] for r in rows] == [f"line {i}" for i in range(50)]


@pytest.mark.parametrize("kind", ["unwritable", "corrupt", "locked"])
def test_start_up_with_an_unusable_database_fails_clearly(tmp_path: Path, kind: str) -> None:
    if kind == "unwritable":
        path = tmp_path / "missing-dir" / "lobby.db"
    elif kind == "corrupt":
        path = tmp_path / "lobby.db"
        path.write_bytes(os.urandom(8192))
    else:
        path = tmp_path / "lobby.db"
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("PRAGMA journal_mode=DELETE")
        holder.execute("CREATE TABLE t (x)")
        holder.execute("BEGIN EXCLUSIVE")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "backend.cli", "serve", "--irc-port", "0", "--web-port", "0", "--db", str(path)],
            capture_output=True, text=True, timeout=60,
        )
    finally:
        if kind == "locked":
            holder.close()
    assert result.returncode != 0
    assert "cannot open history database" in result.stderr
    assert "chat server on" not in result.stdout


def test_when_storing_fails_the_chat_goes_on_and_the_log_says_so(make_server, caplog) -> None:
    server = make_server()
    assert server.history is not None
    # A real SQLite refusal to write, as a full or read-only disk would give.
    server.history._call(lambda db: db.execute("PRAGMA query_only = ON"))
    alice = connect(server.address, "alice")
    bob = connect(server.address, "bob")
    make_server.clients.extend([alice, bob])
    with caplog.at_level("ERROR", logger="lobby.history"):
        alice.send("PRIVMSG #lobby :not stored, still delivered")
        bob.expect(r"PRIVMSG #lobby :not stored, still delivered")
        deadline = time.monotonic() + 10
        while not any("could not store" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "no log line about the failed write"
            time.sleep(0.05)
    bob.send("PRIVMSG #lobby :and the chat goes on")
    alice.expect(r"PRIVMSG #lobby :and the chat goes on")
