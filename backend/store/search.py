"""Full-text search over stored room messages: an FTS5 index beside the messages table.

`messages_search` is a contentless FTS5 table (content=''): it keeps only the index,
its rowid is the message's id in `messages`, and the writer thread adds a row for
every message it stores (never for a topic change). Two columns:

- `text`, the words of the message (unicode61: case and diacritics folded, so `cafe`
  finds `Café` and `привет` finds `Привет`);
- `meta`, two opaque tokens for exact filters: `r` + hex of the casefolded room, and
  `n` + hex of the casefolded sender's nick. Hex keeps each a single token whatever
  the name holds (`#dev-ops`, `[bot]`, `Вася`), so `from:` and `in:` match exactly
  and the index, not a scan, narrows them.

User input never reaches FTS5's query language as such: every word becomes a string
("..." with `"` doubled), so `OR`, `NEAR(`, `*`, `-` and stray quotes are words to
find, never operators. A database from before the index gets it at start-up, filled
from the rows already there, in one transaction.
"""

from __future__ import annotations

import logging
import sqlite3
import time

from ..core.history import SearchQuery, Stored
from ..irc import fold

log = logging.getLogger("lobby.history")

FTS_TABLE = "messages_search"
FTS_SCHEMA = (f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(text, meta, content='', "
              "tokenize='unicode61 remove_diacritics 2')")
# Topic changes are kept in the history but are not conversation: search leaves them out.
UNSEARCHED = "TOPIC"
FTS_INSERT = f"INSERT INTO {FTS_TABLE} (rowid, text, meta) VALUES (?, ?, ?)"


def room_token(folded_room: str) -> str:
    """The meta token of a (casefolded) room."""
    return "r" + folded_room.encode("utf-8").hex()


def nick_token(folded_nick: str) -> str:
    """The meta token of a (casefolded) nick."""
    return "n" + folded_nick.encode("utf-8").hex()


def meta(folded_room: str, source: str) -> str:
    """The meta column of a message: its room's token and its sender's."""
    return f"{room_token(folded_room)} {nick_token(fold(source.split('!', 1)[0]))}"


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
        cursor = db.execute("SELECT id, room, source, text FROM messages WHERE command != ?", (UNSEARCHED,))
        while batch := cursor.fetchmany(10_000):
            db.executemany(FTS_INSERT, [(id_, text, meta(room, source)) for id_, room, source, text in batch])
            rows += len(batch)
    if rows:
        log.warning("search index built for %d stored messages in %.1f s", rows, time.monotonic() - started)


def index_rows(db: sqlite3.Connection, rows: list[tuple[int, str, str, str]]) -> None:
    """Index newly stored messages: (id, folded room, source, text) each; inside the writer's transaction."""
    db.executemany(FTS_INSERT, [(id_, text, meta(room, source)) for id_, room, source, text in rows])


def search(db: sqlite3.Connection, query: SearchQuery) -> list[Stored]:
    """The newest matches of query (in the order they were stored), newest first."""
    sql = (f"SELECT m.msgid, m.ts_ms, m.source, m.command, m.target, m.text FROM {FTS_TABLE} s"
           f" JOIN messages m ON m.id = s.rowid WHERE {FTS_TABLE} MATCH ?")
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
