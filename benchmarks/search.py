"""How fast SEARCH answers over a big history: the figures in docs/benchmarks.md.

Fills a SQLite file with N lines (default 1,000,000) the way an old Lobby database
looks (the messages table only, one executemany in one transaction), then opens it
with History, which builds the full-text index for it (the migration every existing
database goes through once, timed), then times typical searches through the History
API (History.search, with queries parsed by core/search.py's parse_query, as the
SEARCH command does). Not part of the test run.

    python benchmarks/search.py [--lines 1000000] [--repeat 20] [--db PATH] [--keep]

The text is drawn from a vocabulary of 20,000 made-up words with a Zipf-like
distribution (a few words in most lines, most words rare), 3 to 16 words a line,
200 nicks, 40 rooms, over one year.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.core.search import parse_query
from backend.irc import fold
from backend.store.sqlite import SCHEMA, History

ROOMS = [f"#room{i}" for i in range(40)]
NICKS = [f"user{i}" for i in range(200)]
START_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
YEAR_MS = 365 * 86_400_000
VOCABULARY = 20_000


def words(rng: random.Random) -> list[str]:
    """The vocabulary: pronounceable made-up words, rank 0 the most common."""
    syllables = [c + v for c in "bcdfghklmnprstvz" for v in "aeiou"]
    seen: set[str] = set()
    vocabulary: list[str] = []
    while len(vocabulary) < VOCABULARY:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(1, 4)))
        if word not in seen:
            seen.add(word)
            vocabulary.append(word)
    return vocabulary


def fill(path: str, lines: int, seed: int = 7) -> list[str]:
    """Write `lines` messages into a fresh file with the old schema; return the vocabulary."""
    rng = random.Random(seed)
    vocabulary = words(rng)
    weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(VOCABULARY)))
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.executescript(SCHEMA)
    step = YEAR_MS // lines

    def rows():
        for i in range(lines):
            room = ROOMS[min(int(rng.expovariate(1 / 8)), len(ROOMS) - 1)]  # some rooms busier
            nick = NICKS[min(int(rng.expovariate(1 / 30)), len(NICKS) - 1)]
            text = " ".join(rng.choices(vocabulary, cum_weights=weights, k=rng.randint(3, 16)))
            yield (fold(room), f"m{i}", START_MS + i * step, f"{nick}!u@host", "PRIVMSG", room, text)

    db.execute("BEGIN")
    db.executemany("INSERT INTO messages (room, msgid, ts_ms, source, command, target, text)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?)", rows())
    db.execute("COMMIT")
    db.close()
    return vocabulary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--db", help="the file to fill (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the file afterwards")
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="lobby-search-")
    path = args.db or os.path.join(directory, "search.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)

    started = time.perf_counter()
    vocabulary = fill(path, args.lines)
    print(f"filled {args.lines:,} lines in {time.perf_counter() - started:.1f} s "
          f"({os.path.getsize(path) / 1e6:.0f} MB)")
    started = time.perf_counter()
    history = History(path)
    history.open()  # builds the index: the migration of an old file
    print(f"index built at start-up in {time.perf_counter() - started:.1f} s "
          f"(file now {os.path.getsize(path) / 1e6:.0f} MB with its WAL)")

    everywhere = {fold(r): r for r in ROOMS}
    five = {fold(r): r for r in ROOMS[:5]}
    common, middling, rare = vocabulary[0], vocabulary[50], vocabulary[5000]
    cases = [
        ("a common word (in ~10% of lines)", common, everywhere),
        ("a middling word", middling, everywhere),
        ("a rare word", rare, everywhere),
        ("two words", f"{common} {middling}", everywhere),
        ("a phrase", f'"{vocabulary[1]} {vocabulary[2]}"', everywhere),
        ("from:nick alone", "from:user3", everywhere),
        ("from:nick + word", f"from:user3 {middling}", everywhere),
        ("from: a quiet nick + common word", f"from:user190 {common}", everywhere),
        ("in:#room alone", "in:#room30", everywhere),
        ("in: a quiet room + common word", f"in:#room39 {common}", everywhere),
        ("word + one month (after/before)", f"{middling} after:2024-06-01 before:2024-07-01", everywhere),
        ("common word + old month", f"{common} after:2024-01-01 before:2024-02-01", everywhere),
        ("date range alone, 5 rooms", "after:2024-03-01 before:2024-03-02", five),
        ("a rare word, user in 5 rooms", rare, five),
        ("no match", "zzzzunknown", everywhere),
    ]
    print(f"\n{'search':<40} {'results':>7} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}")
    for label, text, rooms in cases:
        query = parse_query(text, rooms)
        found = history.search(query)  # warm the cache once
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            history.search(query)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
        print(f"{label:<40} {len(found):>7} {statistics.median(times):>10.1f} {p95:>8.1f} {times[-1]:>8.1f}")
    history.close()
    if not args.keep and not args.db:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        os.rmdir(directory)


if __name__ == "__main__":
    main()
