"""A room message as the history store passes it around: the row History.add() queues for the
writer, and a row read back (or kept in memory) made a Stored."""

from __future__ import annotations

import json
from typing import Any

from ..core.history import Stored

# A row as History.add() queues it for the writer: (room casefolded, msgid, ts_ms, source,
# command, target, text, tags as JSON or ""). RecentLines keeps it as it is until a join reads it.
Row = tuple[str, str, int, str, str, str, str, str]


def stored(columns: tuple[Any, ...]) -> Stored:
    """(msgid, ts_ms, source, command, target, text, tags as JSON or "") as a Stored, its tags
    decoded (tags that are not a JSON object are read as none)."""
    msgid, ts_ms, source, command, target, text, tags = columns
    try:
        decoded = json.loads(tags) if tags else {}
    except ValueError:
        decoded = {}
    return Stored(msgid, ts_ms, source, command, target, text, decoded if isinstance(decoded, dict) else {})


def row_stored(row: Row) -> Stored:
    """A queued row as a Stored (its first column, the room, is not part of one)."""
    return stored(row[1:])
