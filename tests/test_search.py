"""SEARCH: the full-text index in SQLite, the command over real sockets, and /search in lobby connect."""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backend.core.history import SearchQuery
from backend.core.search import SearchFail, parse_query
from backend.irc import parse_line
from backend.store.sqlite import History
from tests.ircclient import IrcClient, connect
from tests.test_client import Tmux, lobby_connect
from tests.test_durability import hold_writer

DAY1 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC).timestamp()
DAY2 = datetime(2024, 5, 2, 12, 0, tzinfo=UTC).timestamp()
DAY3 = datetime(2024, 5, 3, 12, 0, tzinfo=UTC).timestamp()
HOSTILE = ['"', '""', '"deploy', 'deploy"', "*", "deploy*", "NEAR(deploy", "NEAR(a b)", "a OR b", "OR",
           "AND", "NOT", "-deploy", "-", "deploy -rollback", "text:deploy", "meta:x", "{text}:x", "^deploy",
           "(((", ")", "deploy + x", "'; DROP TABLE messages; --", "\\", "日本語", '"unbalanced phrase']


def said(history: History) -> None:
    """A few days of #dev, #ops and #secret."""
    rows = [
        ("#dev", DAY1, "alice!a@h", "the deploy is done"),
        ("#dev", DAY2, "bob!b@h", "deploy failed again, rolling back"),
        ("#ops", DAY2 + 60, "Вася!v@h", "Привет, deploy tomorrow"),
        ("#secret", DAY2 + 120, "carol!c@h", "secret deploy plan"),
        ("#dev", DAY3, "alice!a@h", "café OR near the NEAR( station"),
        ("#Dev", DAY3 + 60, "bob!b@h", "\x01ACTION deploys quietly\x01"),
    ]
    for i, (room, when, source, text) in enumerate(rows):
        history.add(room, f"m{i}", when, source, "PRIVMSG", text)
    history.add("#dev", "t1", DAY3 + 120, "alice!a@h", "TOPIC", "deploy topic")


@pytest.fixture
def store(tmp_path: Path):
    history = History(str(tmp_path / "h.db"))
    history.open()
    said(history)
    yield history
    history.close()


MINE = {"#dev": "#dev", "#ops": "#ops"}


def find(history: History, text: str, rooms: dict[str, str] = MINE) -> list[str]:
    return [row.msgid for row in history.search(parse_query(text, rooms))]


def test_words_filters_and_order(store: History) -> None:
    # Newest first; words are whole tokens (deploy is not deploys), case and accents folded.
    assert find(store, "deploy") == ["m2", "m1", "m0"]
    assert find(store, "DEPLOY failed") == ["m1"]
    assert find(store, '"rolling back"') == ["m1"]
    assert find(store, '"back rolling"') == []
    assert find(store, "cafe") == ["m4"] and find(store, "привет") == ["m2"]
    assert find(store, "deploy from:ALICE") == ["m0"]
    assert find(store, "from:вася") == ["m2"]
    assert find(store, "from:bob") == ["m5", "m1"]
    assert find(store, "deploy in:#OPS") == ["m2"]
    assert find(store, "in:#dev") == ["m5", "m4", "m1", "m0"]  # the topic change is not a result
    assert find(store, "deploy after:2024-05-02") == ["m2", "m1"]
    assert find(store, "deploy before:2024-05-02") == ["m0"]
    assert find(store, "after:2024-05-02 before:2024-05-03 in:#dev") == ["m1"]
    assert find(store, "deploy after:2024-05-02T12:00:30Z") == ["m2"]
    rows = store.search(SearchQuery(("#dev",), ("deploy",), limit=1))
    assert [r.msgid for r in rows] == ["m1"] and rows[0].ts_ms == int(DAY2 * 1000)
    assert rows[0].target == "#dev" and rows[0].source == "bob!b@h"


def test_date_ranges_across_days_months_and_years(tmp_path: Path) -> None:
    history = History(str(tmp_path / "d.db"))
    history.open()
    try:
        for msgid, when in [("a", "2023-12-31T23:59:00"), ("b", "2024-01-01T00:00:00"), ("c", "2024-02-15T08:00:00"),
                            ("d", "2025-03-01T00:00:00"), ("e", "1999-06-01T00:00:00")]:
            ts = datetime.fromisoformat(when).replace(tzinfo=UTC).timestamp()
            history.add("#dev", msgid, ts, "bob!b@h", "PRIVMSG", "news")
        assert find(history, "news before:2024-01-01") == ["a", "e"]
        assert find(history, "news after:2024-01-01 before:2025-01-01") == ["c", "b"]
        assert find(history, "news after:2024-02-01") == ["d", "c"]
        assert find(history, "after:2023-12-31T23:59:30Z") == ["d", "c", "b"]
        assert find(history, "before:2024-01-01T00:00:00.001Z after:2023-12-31T23:59:00Z") == ["b", "a"]
        assert find(history, "news after:2025-01-01 before:2024-01-01") == []
        assert find(history, "news after:1999-01-01 before:2000-01-01") == ["e"]
    finally:
        history.close()


def test_never_a_room_outside_the_query(store: History) -> None:
    assert "m3" not in find(store, "deploy")
    assert find(store, "secret") == []
    assert find(store, "secret", {"#secret": "#secret"}) == ["m3"]
    with pytest.raises(SearchFail) as err:
        parse_query("deploy in:#secret", MINE)
    assert err.value.code == "INVALID_TARGET"


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_input_is_words_never_operators(store: History, text: str) -> None:
    try:
        query = parse_query(text, MINE)
    except SearchFail as fail:
        assert fail.code == "INVALID_PARAMS"  # nothing to search for (only punctuation)
        return
    rows = store.search(query)  # never an FTS5 syntax error
    assert all(r.msgid != "m3" for r in rows)


def test_operators_are_searched_as_words(store: History) -> None:
    assert find(store, "OR") == ["m4"]  # the word "or", not an operator
    assert find(store, "NEAR(") == ["m4"]
    assert find(store, "deploy OR secret") == []  # all three words, none of them an operator
    assert find(store, "-rollback deploy") == []  # "-" is not NOT
    assert find(store, "deploy*") == ["m2", "m1", "m0"]  # "*" is no prefix search: the word deploy
    assert find(store, '"deploy') == ["m2", "m1", "m0"]  # an unbalanced quote is just a character


@pytest.mark.parametrize("text", ["", "   ", "***", "from:", "in:", "after:2024-13-01", "before:yesterday",
                                  "from:a from:b", "x" * 500, " ".join(["w"] * 17)])
def test_bad_queries(text: str) -> None:
    with pytest.raises(SearchFail) as err:
        parse_query(text, MINE)
    assert err.value.code == "INVALID_PARAMS"


def test_an_old_database_gets_its_index_at_start(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE messages (id INTEGER PRIMARY KEY, room TEXT NOT NULL, msgid TEXT NOT NULL UNIQUE,
            ts_ms INTEGER NOT NULL, source TEXT NOT NULL, command TEXT NOT NULL, target TEXT NOT NULL,
            text TEXT NOT NULL);
        CREATE INDEX messages_by_room ON messages (room, ts_ms, id);
    """)
    db.executemany("INSERT INTO messages (room, msgid, ts_ms, source, command, target, text) VALUES (?,?,?,?,?,?,?)",
                   [("#dev", f"old{i}", 1_700_000_000_000 + i, "bob!b@h", "PRIVMSG", "#dev", f"old line {i}")
                    for i in range(300)])
    db.commit()
    db.close()
    history = History(path)
    history.open()
    try:
        assert len(history.latest("#dev", 1000)) == 300  # nothing lost
        assert [r.msgid for r in history.search(SearchQuery(("#dev",), ("line", "299")))] == ["old299"]
        assert len(history.search(SearchQuery(("#dev",), ("old",), nick="bob"))) == 50
        history.add("#dev", "new1", 1_800_000_000.0, "alice!a@h", "PRIVMSG", "a new line")
        assert [r.msgid for r in history.search(SearchQuery(("#dev",), ("line",), limit=2))] == ["new1", "old299"]
    finally:
        history.close()
    again = History(path)  # opened once more: the index is there, not built twice
    again.open()
    try:
        assert len(again.search(SearchQuery(("#dev",), ("line",)))) == 50
    finally:
        again.close()


def test_a_msgid_stored_twice_is_indexed_once(store: History) -> None:
    store.add("#dev", "m0", DAY1, "alice!a@h", "PRIVMSG", "the deploy is done")
    assert find(store, "done") == ["m0"]


def test_a_msgid_given_twice_in_one_batch_is_stored_and_indexed_once(store: History) -> None:
    release, reader = hold_writer(store)  # both adds wait for the writer: one batch
    store.add("#dev", "twice", DAY3 + 1000, "alice!a@h", "PRIVMSG", "rollback finished")
    store.add("#dev", "twice", DAY3 + 1000, "alice!a@h", "PRIVMSG", "rollback finished")
    store.add("#dev", "after", DAY3 + 1001, "bob!b@h", "PRIVMSG", "rollback checked")
    release.set()
    reader.join(10)
    assert find(store, "rollback") == ["after", "twice"]
    assert [row.msgid for row in store.latest("#dev", 2)] == ["twice", "after"]


# -- over real sockets ---------------------------------------------------------------------------


def results(c: IrcClient, query: str) -> list[str]:
    """SEARCH query; the lines of the draft/search batch that answers it."""
    c.send(f"SEARCH :{query}")
    opened = c.expect(r" BATCH \+\S+ draft/search")
    ref = opened.params[0][1:]
    lines = c.lines_until(rf" BATCH -{re.escape(ref)}$")[:-1]
    assert all(parse_line(line).tags.get("batch") == ref for line in lines)
    return lines


def test_search_over_sockets(make_server, tmp_path: Path) -> None:
    server = make_server(db_path=str(tmp_path / "s.db"))
    caps = "batch server-time message-tags"
    alice = connect(server.address, "alice", caps)
    carol = connect(server.address, "carol", caps)
    make_server.clients.extend([alice, carol])
    assert re.search(r" SEARCH=50 ", " ".join(alice.seen))
    carol.send("JOIN #secret")
    carol.expect(r" 366 carol #secret ")
    carol.send("PRIVMSG #secret :the secret deploy")
    carol.send("PRIVMSG #lobby :deploy at noon")
    alice.expect(r"deploy at noon")
    alice.send("PRIVMSG #lobby :deploy done, OR NEAR( done")
    carol.expect(r"deploy done")

    lines = results(alice, "deploy")
    assert [parse_line(x).params[-1] for x in lines] == ["deploy done, OR NEAR( done", "deploy at noon"]
    first = parse_line(lines[1])
    assert first.command == "PRIVMSG" and first.params[0] == "#lobby" and first.source.startswith("carol!")
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", first.tags["time"])
    msgid = first.tags["msgid"]
    # The msgid is the message's own: CHATHISTORY AROUND finds it.
    alice.send(f"CHATHISTORY AROUND #lobby msgid={msgid} 3")
    assert msgid in "".join(alice.lines_until(r" BATCH -"))

    assert len(results(alice, "deploy from:carol")) == 1
    assert len(results(alice, "deploy in:#LOBBY")) == 2
    assert results(alice, "secret") == []  # #secret is not one of alice's rooms
    assert len(results(carol, "secret")) == 1
    assert results(alice, "deploy before:2000-01-01") == []
    alice.send("SEARCH deploy 1")
    alice.expect(r" BATCH \+\S+ draft/search")
    assert len(alice.lines_until(r" BATCH -")) == 2
    for hostile in HOSTILE:
        alice.send(f"SEARCH :{hostile}")
        alice.expect(r" BATCH -| FAIL SEARCH INVALID_PARAMS ")
    alice.send("SEARCH :deploy in:#secret")
    alice.expect(r" FAIL SEARCH INVALID_TARGET #secret :")
    alice.send("SEARCH :from:")
    alice.expect(r" FAIL SEARCH INVALID_PARAMS from: :")
    alice.send("SEARCH deploy 0")
    alice.expect(r" FAIL SEARCH INVALID_PARAMS 0 :")
    alice.send("SEARCH")
    alice.expect(r" 461 alice SEARCH ")
    assert results(alice, "noon") != []  # still answering after all that


def test_a_client_without_batch_gets_dated_notices(make_server, tmp_path: Path) -> None:
    server = make_server(db_path=str(tmp_path / "s.db"))
    assert server.history is not None
    server.history.add("#lobby", "x1", DAY2, "bob!b@h", "PRIVMSG", "deploy went fine")
    plain = connect(server.address, "plain")
    make_server.clients.append(plain)
    plain.sync()  # past the replay on join
    plain.send("SEARCH :deploy")
    lines = plain.lines_until(r"End of search results")
    assert any(line.endswith(":[2024-05-02 12:00] #lobby <bob> deploy went fine") for line in lines)
    assert not any(" PRIVMSG " in line or " BATCH " in line for line in lines)


def test_without_history_no_token_and_an_empty_batch(make_server) -> None:
    server = make_server(db_path=None)
    c = connect(server.address, "nohist", "batch server-time")
    make_server.clients.append(c)
    assert "SEARCH=" not in " ".join(c.seen)
    assert results(c, "anything") == []


# -- lobby connect ------------------------------------------------------------------------------


@pytest.fixture
def tmux(make_server) -> Iterator[Tmux]:
    """A private tmux server, killed before the chat servers stop (as in test_client.py)."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    t = Tmux()
    yield t
    t.kill()


def test_slash_search_in_lobby_connect(make_server, tmux: Tmux, tmp_path: Path) -> None:
    server = make_server(db_path=str(tmp_path / "s.db"))
    assert server.history is not None
    server.history.add("#lobby", "x1", DAY1, "bob!b@h", "PRIVMSG", "deploy went fine")
    server.history.add("#lobby", "x2", DAY2, "carol!c@h", "PRIVMSG", "deploy broke")
    tmux.start(lobby_connect(server.address[1], "ci"))
    tmux.wait_for(r"^── now ──$")

    def run(line: str) -> None:
        tmux.type(line)
        tmux.keys("Enter")

    run("/search deploy from:bob")
    screen = tmux.wait_for(r"^── search: deploy from:bob \(1 found\) ──$")
    start = screen.index("── search: deploy from:bob (1 found) ──")
    assert re.match(r"^2024-05-0[12] \d\d:\d\d #lobby bob: deploy went fine$", screen[start + 1])
    assert screen[start + 2] == "── end of search ──"
    run("/search deploy")
    screen = tmux.wait_for(r"^── search: deploy \(2 found\) ──$")
    start = screen.index("── search: deploy (2 found) ──")
    assert [line.split(" #lobby ")[1] for line in screen[start + 1 : start + 3]] == [
        "carol: deploy broke", "bob: deploy went fine"]  # newest first
    run("/search x in:#nowhere")
    tmux.wait_for(r"search: you are not in #nowhere")
    run("/search nothing-like-it")
    tmux.wait_for(r"^── search: nothing-like-it \(nothing found\) ──$")
    run("/search")
    tmux.wait_for(r"usage: /search WORDS")
    run("/quit")
    tmux.wait_for(r"^lobby-exit=0$")
