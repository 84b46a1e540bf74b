"""Accounts in Redis, shared by every node of a cluster: the core's AccountStore, and `lobby accounts --redis`.

One hash, ``lobby:accounts``: the casefolded name -> JSON ``{"name", "password", "created"}``,
where password is the scrypt hash (core/passwords.py), never the password. One hash keeps
making an account atomic (HSETNX: two nodes making the same name at once, one wins) and
listing them one read.

Reads happen at sign-in and whenever a nick is chosen (nick protection). When Redis can't
answer, a read says "no such account" (signing in fails, the nick is not protected for that
moment) and a write says it did nothing; each is logged once per outage, never a password.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..irc import fold
from .wire import PREFIX, redact

log = logging.getLogger("lobby.cluster.accounts")

ACCOUNTS = PREFIX + "accounts"
# A sign-in, or a nick being chosen, waits no longer than this on a Redis that hangs.
TIMEOUT = 2.0


class RedisAccountsError(Exception):
    """Redis can't be reached or used when the store is opened."""


class RedisAccounts:
    """Accounts in one Redis hash, shared by every node (see the module docstring)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._redis: redis.Redis | None = None
        self._failing = False

    def open(self) -> None:
        """Connect; RedisAccountsError with the reason when Redis doesn't answer."""
        r = redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=TIMEOUT,
                                 socket_connect_timeout=TIMEOUT, retry=Retry(NoBackoff(), 1))
        try:
            r.ping()
        except redis.RedisError as err:
            r.close()
            raise RedisAccountsError(f"cannot use Redis at {redact(self.url)} for accounts: {err}") from err
        self._redis = r

    def close(self) -> None:
        """Disconnect."""
        if self._redis is not None:
            self._redis.close()
            self._redis = None

    # -- the core's AccountStore -------------------------------------------------

    def password_hash(self, name: str) -> str | None:
        """The hash of an account's password, or None."""
        entry = self._entry(name)
        return str(entry["password"]) if entry else None

    def display_name(self, name: str) -> str | None:
        """The account's name as it was made, or None."""
        entry = self._entry(name)
        return str(entry["name"]) if entry else None

    def create(self, name: str, password_hash: str) -> bool:
        """Make an account; False if the name is taken (on any node) or Redis can't be reached."""
        entry = json.dumps({"name": name, "password": password_hash, "created": time.time()})
        made = self._call(lambda r: r.hsetnx(ACCOUNTS, fold(name), entry))
        return bool(made)

    # -- what `lobby accounts` needs besides ----------------------------------------

    def set_password(self, name: str, password_hash: str) -> bool:
        """Change an account's password; False if there is no such account."""
        key = fold(name)

        def change(pipe: Any) -> bool:
            raw = pipe.hget(ACCOUNTS, key)
            if raw is None:
                return False
            entry = json.loads(raw)
            entry["password"] = password_hash
            pipe.multi()
            pipe.hset(ACCOUNTS, key, json.dumps(entry))
            return True

        # WATCHed: a password changed meanwhile elsewhere, or the account removed, is read again.
        done = self._call(lambda r: r.transaction(change, ACCOUNTS, value_from_callable=True))
        return bool(done)

    def remove(self, name: str) -> bool:
        """Delete an account; False if there was none."""
        return bool(self._call(lambda r: r.hdel(ACCOUNTS, fold(name))))

    def names(self) -> list[tuple[str, float]]:
        """Every account's name and when it was made, by folded name."""
        rows = self._call(lambda r: r.hgetall(ACCOUNTS)) or {}
        out = []
        for key in sorted(rows):
            entry = _decode(rows[key])
            if entry is not None:
                out.append((str(entry["name"]), float(entry["created"])))
        return out

    # -- internals -------------------------------------------------------------------

    def _entry(self, name: str) -> dict[str, Any] | None:
        raw = self._call(lambda r: r.hget(ACCOUNTS, fold(name)))
        return _decode(raw) if isinstance(raw, str) else None

    def _call(self, op: Any) -> Any:
        r = self._redis
        if r is None:
            return None
        try:
            result = op(r)
        except redis.RedisError as err:
            if not self._failing:
                self._failing = True
                log.warning("accounts are out of reach in Redis (%s): sign-ins fail until it is back", err)
            return None
        if self._failing:
            self._failing = False
            log.warning("accounts are back in reach in Redis")
        return result


def _decode(raw: str) -> dict[str, Any] | None:
    """An entry as stored, or None for one that isn't ours (never raises on bad data)."""
    try:
        entry = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(entry, dict) or not {"name", "password", "created"} <= entry.keys():
        return None
    return entry
