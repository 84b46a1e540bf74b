"""The history's in-memory last lines (store/recent.py): they answer exactly as the database would."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.core.history import Stored
from backend.store.recent import RecentLines
from backend.store.sqlite import History
from tests.test_durability import hold_writer

LINES = 4
START = 1_700_000_000.0


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    h = History(str(tmp_path / "h.db"), recent_lines=LINES)
    h.open()
    yield h
    h.close()


def as_database_says(history: History, room: str, limit: int) -> list[Stored]:
    return history.local.latest(room, limit)


def test_a_kept_room_follows_what_is_stored(history: History) -> None:
    for i in range(3):
        history.add("#r", f"a{i}", START + i, "n!u@h", "PRIVMSG", f"line {i}", {"+draft/reply": "x"} if i else None)
    assert history.latest("#r", LINES) == as_database_says(history, "#R", LINES)
    assert history.recent is not None and history.recent.get("#r", LINES) is not None  # kept from now on
    for i in range(3, 9):
        history.add("#R", f"a{i}", START + i, "n!u@h", "PRIVMSG", f"line {i}")
    assert [r.msgid for r in history.latest("#r", 3)] == ["a6", "a7", "a8"]
    assert history.latest("#r", LINES) == as_database_says(history, "#r", LINES)


def test_deletions_and_late_rows_are_never_shown_from_memory(history: History) -> None:
    for i in range(5):
        history.add("#r", f"a{i}", START + i, "n!u@h", "PRIVMSG", f"line {i}")
    history.latest("#r", LINES)
    history.redact("#r", "a4")
    assert [r.msgid for r in history.latest("#r", LINES)] == ["a0", "a1", "a2", "a3"]
    history.forget("#r", ["a3"])
    assert [r.msgid for r in history.latest("#r", LINES)] == ["a0", "a1", "a2"]
    # A row older than the newest kept (a cluster's catch-up): the database sorts it by time.
    history.add("#r", "late", START + 0.5, "n!u@h", "PRIVMSG", "late")
    assert [r.msgid for r in history.latest("#r", LINES)] == ["a0", "late", "a1", "a2"]
    assert history.latest("#r", LINES) == as_database_says(history, "#r", LINES)


def test_a_kept_room_is_read_without_waiting_for_the_database(history: History) -> None:
    history.add("#r", "a0", START, "n!u@h", "PRIVMSG", "hello")
    history.latest("#r", LINES)
    release, busy = hold_writer(history)
    try:
        # The database thread is busy: only the memory can answer now.
        assert [r.text for r in history.latest("#r", LINES)] == ["hello"]
    finally:
        release.set()
        busy.join(30)


def test_a_load_that_overlaps_a_write_is_not_kept() -> None:
    recent = RecentLines(LINES)
    started = recent.begin("#r")
    row = Stored("m1", 1, "n!u@h", "PRIVMSG", "#r", "said meanwhile")
    recent.add("#r", row)  # stored while the load was reading: it may not be in what it read
    recent.end("#r", started, [])
    assert recent.get("#r", LINES) is None
    started = recent.begin("#r")
    recent.end("#r", started, [row])
    assert recent.get("#r", LINES) == [row]


def test_the_least_lately_read_rooms_are_dropped() -> None:
    recent = RecentLines(LINES, rooms=2)
    for room in ("#a", "#b"):
        recent.end(room, recent.begin(room), [])
    recent.get("#a", 1)
    recent.end("#c", recent.begin("#c"), [])
    assert recent.get("#b", 1) is None
    assert recent.get("#a", 1) == [] and recent.get("#c", 1) == []


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(["#a", "#B"]), st.integers(0, 40)),
        st.tuples(st.just("redact"), st.sampled_from(["#a", "#b"]), st.integers(0, 30)),
        st.tuples(st.just("forget"), st.sampled_from(["#a", "#b"]), st.integers(0, 30)),
        st.tuples(st.just("read"), st.sampled_from(["#A", "#b"]), st.integers(0, LINES + 2)),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(ops=OPS)
def test_memory_and_database_always_agree(ops: list[tuple[str, str, int]]) -> None:
    h = History(":memory:", recent_lines=LINES)
    h.open()
    try:
        for n, (op, room, value) in enumerate(ops):
            if op == "add":
                h.add(room, f"m{n}", START + value, "n!u@h", "PRIVMSG", f"line {n}")
            elif op == "redact":
                h.redact(room, f"m{value}")
            elif op == "forget":
                h.forget(room, [f"m{value}", f"m{value + 1}"])
            else:
                assert h.latest(room, value) == as_database_says(h, room, value)
            for check in ("#a", "#b"):
                assert h.latest(check, LINES) == as_database_says(h, check, LINES)
    finally:
        h.close()


def test_rows_that_waited_for_a_full_queue_are_read_from_the_database(tmp_path: Path) -> None:
    h = History(str(tmp_path / "q.db"), queue_rows=1, add_wait=30, recent_lines=LINES)
    h.open()
    try:
        h.add("#r", "a0", START, "n!u@h", "PRIVMSG", "first")
        h.latest("#r", LINES)
        release, busy = hold_writer(h)
        h.add("#r", "a1", START + 1, "n!u@h", "PRIVMSG", "fits in the queue")
        late = threading.Thread(target=h.add, args=("#r", "a2", START + 2, "n!u@h", "PRIVMSG", "waits for room"))
        late.start()
        late.join(0.2)
        assert late.is_alive()  # the queue is full: it waits
        release.set()
        busy.join(30)
        late.join(30)
        assert [r.msgid for r in h.latest("#r", LINES)] == ["a0", "a1", "a2"]
        assert h.latest("#r", LINES) == as_database_says(h, "#r", LINES)
    finally:
        h.close()
