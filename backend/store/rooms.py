"""Rooms' settings in SQLite: topic, modes, key, limit, bans and quiets outlive a restart.

One row per room, its settings as JSON (core/room.py's Room.settings()), in the same file as
the history but on a connection of its own: settings change rarely (an operator's MODE), and
a save is one small write under this store's lock, never the hub's.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading

from ..irc import fold

log = logging.getLogger("lobby.rooms")

SCHEMA = """
CREATE TABLE IF NOT EXISTS room_settings (
    room     TEXT PRIMARY KEY,  -- casefolded room name
    settings TEXT NOT NULL      -- JSON: name, topic, modes, key, limit, bans, quiets, ...
);
"""


class RoomSettingsError(Exception):
    """The settings table can't be opened."""


class RoomSettings:
    """The core's RoomStore, in SQLite."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        """Open the database (creating the table); RoomSettingsError with the reason if it can't."""
        try:
            db = sqlite3.connect(self.path, timeout=2.0, isolation_level=None, check_same_thread=False)
            db.executescript(SCHEMA)
        except sqlite3.Error as err:
            raise RoomSettingsError(f"cannot use {self.path} for room settings: {err}") from err
        self._db = db

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

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
