"""Password hashes for the configuration (server operators): scrypt from the standard library.

A hash reads `scrypt$N$r$p$salt$key` (salt and key in base64), so the parameters can change
without breaking the hashes already in configuration files. `lobby hash-password` makes one.
Comparisons are constant time; nothing here logs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

# scrypt with N=2**14, r=8: 16 MiB and a few tens of milliseconds per check (OWASP's floor).
N, R, P = 2**14, 8, 1
SALT_BYTES = 16
KEY_BYTES = 32


def hash_password(password: str) -> str:
    """A new hash of password, with a random salt."""
    salt = os.urandom(SALT_BYTES)
    key = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=KEY_BYTES)
    return "$".join(("scrypt", str(N), str(R), str(P), _b64(salt), _b64(key)))


def check_password(password: str, stored: str) -> bool:
    """Whether password matches a hash made by hash_password (False for a malformed hash)."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             maxmem=256 * 1024 * 1024, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


def is_hash(stored: str) -> bool:
    """Whether a configured value looks like one of our hashes (a plain password must not pass)."""
    parts = stored.split("$")
    return len(parts) == 6 and parts[0] == "scrypt" and all(x.isdigit() for x in parts[1:4])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
