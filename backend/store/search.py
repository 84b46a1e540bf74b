"""Full-text search over stored room messages: an FTS5 index beside the messages table.

`messages_search` is a contentless FTS5 table (content=''): it keeps only the index,
its rowid is the message's id in `messages`, and the writer thread adds a row for
every message it stores (never for a topic change or a reaction). Two columns:

- `text`, the words of the message (unicode61: case and diacritics folded, so `cafe`
  finds `Café` and `привет` finds `Привет`);
- `meta`, opaque tokens for exact filters: `r` + hex of the casefolded room, `n` + hex
  of the casefolded sender's nick (hex keeps each a single token whatever the name
  holds: `#dev-ops`, `[bot]`, `Вася`), and the UTC year, month and day it was said
  (`y2024 m202405 d20240501`). So `from:`, `in:` and a date range narrow the search
  inside the index too: a range is the fewest whole years, months and days that cover
  it, and the exact bounds are then checked on the stored times. Without the date
  tokens, an old range meant walking back through every newer match first.

User input never reaches FTS5's query language as such: every word becomes a string
("..." with `"` doubled), so `OR`, `NEAR(`, `*`, `-` and stray quotes are words to
find, never operators. A database from before the index gets it at start-up, filled
from the rows already there, in one transaction.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from ..core.history import SearchQuery, Stored
from ..irc import fold
from .rows import Row

log = logging.getLogger("lobby.history")

FTS_TABLE = "messages_search"
FTS_SCHEMA = (f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(text, meta, content='', "
              "tokenize='unicode61 remove_diacritics 2')")
# Topic changes and reactions (TAGMSG, no text) are kept in the history but are not conversation:
# search leaves them out.
SEARCHED_ONLY = "command NOT IN ('TOPIC', 'TAGMSG')"
FTS_INSERT = f"INSERT INTO {FTS_TABLE} (rowid, text, meta) VALUES (?, ?, ?)"


def room_token(folded_room: str) -> str:
    """The meta token of a (casefolded) room."""
    return "r" + folded_room.encode("utf-8").hex()


def nick_token(folded_nick: str) -> str:
    """The meta token of a (casefolded) nick."""
    return "n" + folded_nick.encode("utf-8").hex()


# Messages said outside these years can't be found by a date range (a clock far off).
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2199, 12, 31)
DAY_MS = 86_400_000


def meta(folded_room: str, source: str, ts_ms: int) -> str:
    """The meta column of a message: its room's token, its sender's and its date's.

    Made for every stored message on the writer thread, so the parts repeat from a cache:
    the same people talk in the same rooms on the same day.
    """
    return f"{_who(folded_room, source.split('!', 1)[0])} {_dates(ts_ms // DAY_MS)}"


@lru_cache(maxsize=4096)
def _who(folded_room: str, nick: str) -> str:
    return f"{room_token(folded_room)} {nick_token(fold(nick))}"


@lru_cache(maxsize=1024)
def _dates(day_number: int) -> str:
    day = datetime.fromtimestamp(day_number * 86_400, UTC)
    return f"y{day:%Y} m{day:%Y%m} d{day:%Y%m%d}"


def _next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def date_tokens(after_ms: int | None, before_ms: int | None) -> list[str]:
    """The fewest year, month and day tokens covering every day that [after, before) touches."""
    first = FIRST_DAY if after_ms is None else datetime.fromtimestamp(after_ms // DAY_MS * 86_400, UTC).date()
    last = LAST_DAY if before_ms is None else datetime.fromtimestamp((before_ms - 1) // DAY_MS * 86_400, UTC).date()
    first, last = max(first, FIRST_DAY), min(last, LAST_DAY)
    tokens: list[str] = []
    d = first
    while d <= last:
        if d.month == 1 and d.day == 1 and date(d.year, 12, 31) <= last:
            tokens.append(f"y{d:%Y}")
            d = date(d.year + 1, 1, 1)
        elif d.day == 1 and _next_month(d) - timedelta(days=1) <= last:
            tokens.append(f"m{d:%Y%m}")
            d = _next_month(d)
        else:
            tokens.append(f"d{d:%Y%m%d}")
            d += timedelta(days=1)
    return tokens


def quote(term: str) -> str:
    """term as an FTS5 string: whatever it holds, one phrase to find and never an operator."""
    return '"' + term.replace('"', '""') + '"'


def match_expression(query: SearchQuery) -> str:
    """The FTS5 MATCH text for query: its words in `text`, its room(s) and sender in `meta`."""
    parts = []
    if query.words:
        parts.append("text : (" + " AND ".join(quote(w) for w in query.words) + ")")
    if query.nick is not None:
        parts.append(f"meta : ({quote(nick_token(query.nick))})")
    parts.append("meta : (" + " OR ".join(quote(room_token(r)) for r in query.rooms) + ")")
    if query.after_ms is not None or query.before_ms is not None:
        days = date_tokens(query.after_ms, query.before_ms)
        # An empty range (before <= after, or outside the years indexed) matches nothing.
        parts.append("meta : (" + (" OR ".join(days) if days else '"none"') + ")")
    return " AND ".join(parts)


def ensure_index(db: sqlite3.Connection) -> None:
    """Create the search index if the file has none yet, filled from the messages already stored."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (FTS_TABLE,)).fetchone():
        return
    started = time.monotonic()
    rows = 0
    with db:
        db.execute("BEGIN IMMEDIATE")
        db.execute(FTS_SCHEMA)
        cursor = db.execute(f"SELECT id, room, source, ts_ms, text FROM messages WHERE {SEARCHED_ONLY}")
        while batch := cursor.fetchmany(10_000):
            index_rows(db, batch)
            rows += len(batch)
    if rows:
        log.warning("search index built for %d stored messages in %.1f s", rows, time.monotonic() - started)


def index_rows(db: sqlite3.Connection, rows: list[tuple[int, str, str, int, str]]) -> None:
    """Index stored messages: (id, folded room, source, ts_ms, text) each; inside the writer's transaction."""
    db.executemany(FTS_INSERT, [(id_, text, meta(room, source, ts)) for id_, room, source, ts, text in rows])


# The messages stored after id ? that are searched, given as a JSON array of [msgid, meta].
FTS_INSERT_BATCH = (
    f"INSERT INTO {FTS_TABLE} (rowid, text, meta)"
    " SELECT m.id, m.text, json_extract(j.value, '$[1]') FROM json_each(?) j"
    " JOIN messages m ON m.msgid = json_extract(j.value, '$[0]')"
    f" WHERE m.id > ? AND m.{SEARCHED_ONLY} ORDER BY m.id"
)


def index_batch(db: sqlite3.Connection, after_id: int, rows: list[Row]) -> None:
    """Index what the writer just stored, in one statement: of the rows it was given, those with
    an id past after_id (new, not ignored) are indexed."""
    # Once per msgid: a row given twice is stored once, and must be indexed once.
    keys = {row[1]: meta(row[0], row[3], row[2]) for row in rows}
    db.execute(FTS_INSERT_BATCH, (json.dumps(list(keys.items()), ensure_ascii=False, check_circular=False), after_id))


def search(db: sqlite3.Connection, query: SearchQuery) -> list[Stored]:
    """The newest matches of query (in the order they were stored), newest first."""
    sql = (f"SELECT m.msgid, m.ts_ms, m.source, m.command, m.target, m.text FROM {FTS_TABLE} s"
           f" JOIN messages m ON m.id = s.rowid WHERE {FTS_TABLE} MATCH ? AND m.{SEARCHED_ONLY}")
    args: list[object] = [match_expression(query)]
    if query.after_ms is not None:
        sql += " AND m.ts_ms >= ?"
        args.append(query.after_ms)
    if query.before_ms is not None:
        sql += " AND m.ts_ms < ?"
        args.append(query.before_ms)
    sql += " ORDER BY s.rowid DESC LIMIT ?"
    args.append(query.limit)
    rows = [Stored(*row) for row in db.execute(sql, args)]
    rows.sort(key=lambda row: row.ts_ms, reverse=True)  # stable: ties keep the order they were stored
    return rows
