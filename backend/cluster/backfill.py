"""Room history between the shared streams and this node's own copy (SQLite).

Each node keeps every room's lines in its own copy too: for a restart, and for
reads while Redis is away. When Redis comes back empty, the streams are put back
from that copy before any new line goes in (so old lines come first); when this
node joins or recovers, what the others said meanwhile is copied into it.
"""

from __future__ import annotations

import logging
from typing import Any

from ..store.sqlite import History
from .streams import STREAM_MAX, entry_tags, stored_args
from .wire import HISTORY, ROOMS

log = logging.getLogger("lobby.cluster")


def restore_streams(r: Any, seed: Any, history: History | None, node: str) -> None:
    """If Redis lost the shared history (restarted empty), put each room's stream back from
    this node's copy with the SEED script; then mark the streams ready."""
    if r.exists(HISTORY.ready):
        return
    rooms = count = 0
    for room in history.rooms() if history is not None else []:
        rows = history.local.latest(room, STREAM_MAX) if history is not None else []
        args = [value for row in rows for value in stored_args(row)]
        added = seed(keys=[HISTORY.stream(room), HISTORY.index(room)], args=args) if args else 0
        if added:
            rooms += 1
            count += int(added)
    r.set(HISTORY.ready, node)
    if count:
        log.warning("put back %d messages of %d rooms into the shared history from this node's copy", count, rooms)


def copy_streams(r: Any, history: History | None) -> None:
    """Copy every room's stream into this node's copy (duplicates are ignored there)."""
    if history is None:
        return
    count = 0
    for folded_room in r.hkeys(ROOMS):
        for _, fields in r.xrange(HISTORY.stream(folded_room)):
            history.add(fields["room"], fields["msgid"], float(fields["time"]), fields["source"],
                        fields["command"], fields["text"], entry_tags(fields))
            count += 1
    if count:
        log.info("copied %d room messages from the cluster's history", count)
