"""Accounts in SQLite: a name (unique case-insensitively) and a password hash, nothing in clear.

Beside the history in the same file, on a connection of its own behind a lock: accounts are
read at sign-in and written when one is made, rarely and briefly.
"""

from __future__ import annotations

import sqlite3
import time

from ..irc import fold
from .sidetable import SideTable, SideTableError

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    account  TEXT PRIMARY KEY,   -- casefolded name
    name     TEXT NOT NULL,      -- as it was made
    password TEXT NOT NULL,      -- scrypt hash (core/passwords.py)
    created  REAL NOT NULL
);
"""


AccountsError = SideTableError


class Accounts(SideTable):
    """The core's AccountStore in SQLite, and what `lobby accounts` needs besides."""

    what = "accounts"
    schema = SCHEMA

    def _one(self, sql: str, *args: object) -> tuple[object, ...] | None:
        with self._lock:
            if self._db is None:
                return None
            row: tuple[object, ...] | None = self._db.execute(sql, args).fetchone()
            return row

    def password_hash(self, name: str) -> str | None:
        """The hash of an account's password, or None."""
        row = self._one("SELECT password FROM accounts WHERE account = ?", fold(name))
        return str(row[0]) if row else None

    def display_name(self, name: str) -> str | None:
        """The account's name as it was made, or None."""
        row = self._one("SELECT name FROM accounts WHERE account = ?", fold(name))
        return str(row[0]) if row else None

    def create(self, name: str, password_hash: str) -> bool:
        """Make an account; False if the name is taken."""
        with self._lock:
            if self._db is None:
                return False
            try:
                self._db.execute("INSERT INTO accounts (account, name, password, created) VALUES (?, ?, ?, ?)",
                                 (fold(name), name, password_hash, time.time()))
            except sqlite3.IntegrityError:
                return False
            return True

    def set_password(self, name: str, password_hash: str) -> bool:
        """Change an account's password; False if there is no such account."""
        with self._lock:
            if self._db is None:
                return False
            cur = self._db.execute("UPDATE accounts SET password = ? WHERE account = ?", (password_hash, fold(name)))
            return cur.rowcount > 0

    def remove(self, name: str) -> bool:
        """Delete an account; False if there was none."""
        with self._lock:
            if self._db is None:
                return False
            return self._db.execute("DELETE FROM accounts WHERE account = ?", (fold(name),)).rowcount > 0

    def names(self) -> list[tuple[str, float]]:
        """Every account's name and when it was made, by name."""
        with self._lock:
            if self._db is None:
                return []
            rows = self._db.execute("SELECT name, created FROM accounts ORDER BY account")
            return [(str(name), float(created)) for name, created in rows]
