"""IRC wildcard masks (`*` any run, `?` one character), matched case-insensitively (casefold)."""

from __future__ import annotations

import re
from functools import lru_cache

from ..irc import fold


@lru_cache(maxsize=256)
def mask_pattern(mask: str) -> re.Pattern[str]:
    """A compiled pattern matching folded text against a folded mask like `coolni*` or `*!*@host`."""
    parts = ("." if ch == "?" else ".*" if ch == "*" else re.escape(ch) for ch in fold(mask))
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def matches(mask: str, text: str) -> bool:
    """Whether text matches mask."""
    return mask_pattern(mask).match(fold(text)) is not None
