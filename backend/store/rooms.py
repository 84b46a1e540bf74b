"""Rooms' settings in SQLite: topic, modes, key, limit, bans and quiets outlive a restart.

One row per room, its settings as JSON (core/room.py's Room.settings()), in the same file as
the history but on a connection of its own: settings change rarely (an operator's MODE), and
a save is one small write under this store's lock, never the hub's.
"""

from __future__ import annotations

import json
import logging
import sqlite3

from ..irc import fold
from .sidetable import SideTable, SideTableError

log = logging.getLogger("lobby.rooms")

SCHEMA = """
CREATE TABLE IF NOT EXISTS room_settings (
    room     TEXT PRIMARY KEY,  -- casefolded room name
    settings TEXT NOT NULL      -- JSON: name, topic, modes, key, limit, bans, quiets, ...
);
"""


RoomSettingsError = SideTableError


class RoomSettings(SideTable):
    """The core's RoomStore, in SQLite."""

    what = "room settings"
    schema = SCHEMA

    def load(self) -> list[dict[str, object]]:
        """Every room's saved settings (rows that can't be read are skipped, and logged)."""
        with self._lock:
            if self._db is None:
                return []
            rows = self._db.execute("SELECT room, settings FROM room_settings").fetchall()
        out: list[dict[str, object]] = []
        for room, raw in rows:
            try:
                settings = json.loads(raw)
                if isinstance(settings, dict) and isinstance(settings.get("name"), str):
                    out.append(settings)
                    continue
            except ValueError:
                pass
            log.warning("ignoring unreadable settings of room %s", room)
        return out

    def save(self, settings: dict[str, object]) -> None:
        """Keep one room's settings; a failed write is logged, never raised (the chat goes on)."""
        key = fold(str(settings["name"]))
        with self._lock:
            if self._db is None:
                return
            try:
                self._db.execute("INSERT OR REPLACE INTO room_settings (room, settings) VALUES (?, ?)",
                                 (key, json.dumps(settings)))
            except sqlite3.Error as err:
                log.error("could not save the settings of %s: %s", settings["name"], err)
