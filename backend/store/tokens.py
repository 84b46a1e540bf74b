"""Sign-in tokens in SQLite: what keeps a browser signed in, stored only as a SHA-256 hash.

A token is 32 random bytes the browser holds in a cookie; this table keeps its hash, the
account it signs in to, a label (the browser's user agent), and when it was made and last
used. Deleting the row revokes it. Beside the accounts in the same file, on a connection of
its own behind a lock: tokens are read when a page connects, rarely and briefly.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from ..irc import fold
from .sidetable import SideTable, SideTableError

SCHEMA = """
CREATE TABLE IF NOT EXISTS session_tokens (
    hash      TEXT PRIMARY KEY,  -- sha256 of the token, hex; the token itself is never stored
    account   TEXT NOT NULL,     -- casefolded account name
    label     TEXT NOT NULL,
    created   REAL NOT NULL,
    last_used REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS session_tokens_account ON session_tokens (account);
"""

TOKEN_BYTES = 32
LABEL_MAX = 200
# last_used is written at most this often per token, so a busy page costs no write per connection.
TOUCH_EVERY = 60.0

TokensError = SideTableError


def token_hash(token: str) -> str:
    """What is stored for a token."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


class Tokens(SideTable):
    """The core's TokenStore in SQLite."""

    what = "sign-in tokens"
    schema = SCHEMA

    def issue(self, account: str, label: str) -> str:
        """A new token signing in to account; only its hash is kept. Empty if the store is closed."""
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = time.time()
        with self._lock:
            if self._db is None:
                return ""
            self._db.execute("INSERT INTO session_tokens (hash, account, label, created, last_used) "
                             "VALUES (?, ?, ?, ?, ?)", (token_hash(token), fold(account), label[:LABEL_MAX], now, now))
        return token

    def account(self, token: str) -> str | None:
        """The (casefolded) account a live token signs in to, or None; notes when it was used."""
        if not token:
            return None
        wanted = token_hash(token)
        now = time.time()
        with self._lock:
            if self._db is None:
                return None
            row = self._db.execute("SELECT hash, account, last_used FROM session_tokens WHERE hash = ?",
                                   (wanted,)).fetchone()
            if row is None or not hmac.compare_digest(str(row[0]), wanted):
                return None
            if now - float(row[2]) >= TOUCH_EVERY:
                self._db.execute("UPDATE session_tokens SET last_used = ? WHERE hash = ?", (now, wanted))
            return str(row[1])

    def revoke(self, token: str) -> bool:
        """Forget one token; False if it was not live."""
        with self._lock:
            if self._db is None:
                return False
            return self._db.execute("DELETE FROM session_tokens WHERE hash = ?", (token_hash(token),)).rowcount > 0

    def revoke_account(self, account: str) -> int:
        """Forget every token of an account (its password changed, or it was removed); how many."""
        with self._lock:
            if self._db is None:
                return 0
            return int(self._db.execute("DELETE FROM session_tokens WHERE account = ?", (fold(account),)).rowcount)
