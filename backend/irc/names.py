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


# Characters that draw nothing (or reorder what is around them) but are not of category C or Z:
# Hangul fillers, the combining grapheme joiner, Khmer inherent vowels, Mongolian variation
# selectors, variation selectors, and the blank Braille pattern. With categories Cc (controls),
# Cf (format: bidi overrides U+202E, zero-width U+200B, ...), Cs/Co/Cn and Zs/Zl/Zp (every kind
# of space and separator) they would let one name pass for another.
_INVISIBLE = frozenset(
    "\u115f\u1160\u3164\uffa0\u034f\u17b4\u17b5\u2800"
    + "".join(chr(c) for c in range(0x180B, 0x1810))
    + "".join(chr(c) for c in range(0xFE00, 0xFE10))
    + "".join(chr(c) for c in range(0xE0100, 0xE01F0))
)


def is_invisible(ch: str) -> bool:
    """Whether ch is a control, format, unassigned or private character, a space or separator
    of any kind, or another character that shows nothing (a Hangul filler, a variation selector)."""
    return unicodedata.category(ch)[0] in "CZ" or ch in _INVISIBLE


def _is_letter_or_digit(ch: str) -> bool:
    category = unicodedata.category(ch)
    return (category[0] == "L" or category == "Nd") and ch not in _INVISIBLE


def is_valid_nick(nick: str) -> bool:
    """Letters of any script, digits and _-[]\\`^{}|; not starting with a digit or '-'; ≤ 30."""
    if not nick or len(nick) > NICK_MAX:
        return False
    if nick[0] == "-" or unicodedata.category(nick[0]) == "Nd":
        return False
    return all(_is_letter_or_digit(ch) or ch in NICK_SPECIALS for ch in nick)


def is_valid_channel(name: str) -> bool:
    """'#' then up to 49 visible characters: no comma or colon, and nothing is_invisible()
    refuses (controls, bidi overrides, zero-width and other format characters, spaces of any
    kind), so that no room name can pass for another or reorder the text around it."""
    if len(name) < 2 or len(name) > CHANNEL_MAX or not name.startswith("#"):
        return False
    return not any(ch in ",:" or is_invisible(ch) for ch in name)


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
