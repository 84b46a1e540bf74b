"""A table kept beside the history, in the same SQLite file, on a connection of its own.

Room settings and accounts are read and written rarely and briefly (an operator's MODE, a
sign-in), so each has its own connection behind its own lock instead of a turn on the
history's writer thread, which is busy with what is said.
"""

from __future__ import annotations

import sqlite3
import threading


class SideTableError(Exception):
    """The table can't be opened (a missing directory, not a database, locked...)."""


class SideTable:
    """Opens path, creates the schema, and guards the connection with a lock."""

    what = "a table"
    schema = ""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        """Open the database (creating the table); SideTableError with the reason if it can't."""
        try:
            db = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
            db.executescript(self.schema)
        except sqlite3.Error as err:
            raise SideTableError(f"cannot use {self.path} for {self.what}: {err}") from err
        self._db = db

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
