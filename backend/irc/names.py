"""Nicknames and room names: what is valid, how they compare, and cutting text to fit a line.

Pure functions; one casefold (fold) for every case-insensitive comparison.
"""

from __future__ import annotations

import unicodedata

NICK_MAX = 30
CHANNEL_MAX = 50
NICK_SPECIALS = frozenset("_-[]\\`^{}|")


def fold(name: str) -> str:
    """The case-insensitive key of a nick or channel name (Unicode casefold)."""
    return name.casefold()


def _is_letter_or_digit(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category[0] == "L" or category == "Nd"


def is_valid_nick(nick: str) -> bool:
    """Letters of any script, digits and _-[]\\`^{}|; not starting with a digit or '-'; ≤ 30."""
    if not nick or len(nick) > NICK_MAX:
        return False
    if nick[0] == "-" or unicodedata.category(nick[0]) == "Nd":
        return False
    return all(_is_letter_or_digit(ch) or ch in NICK_SPECIALS for ch in nick)


def is_valid_channel(name: str) -> bool:
    """'#' then up to 49 characters, none of them space, comma, BEL or control characters."""
    if len(name) < 2 or len(name) > CHANNEL_MAX or not name.startswith("#"):
        return False
    return not any(ch in " ,\x07:" or unicodedata.category(ch) == "Cc" for ch in name)


def split_text(text: str, max_bytes: int) -> list[str]:
    """Split text into pieces of at most max_bytes UTF-8 bytes, preferring spaces, never mid-character."""
    pieces: list[str] = []
    while len(text.encode("utf-8")) > max_bytes:
        cut = 0
        size = 0
        for i, ch in enumerate(text):
            size += len(ch.encode("utf-8"))
            if size > max_bytes:
                break
            cut = i + 1
        space = text.rfind(" ", 0, cut)
        if space > cut // 2:
            cut = space
        pieces.append(text[:cut])
        text = text[cut:].lstrip(" ") if space == cut else text[cut:]
    if text or not pieces:
        pieces.append(text)
    return pieces
