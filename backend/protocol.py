"""IRC message syntax: parsing, formatting, tag escaping, line framing and names.

This module is pure: bytes and str in, objects out, and back. It holds no sockets,
no threads and no server state, so the server, the terminal client and the tests
all share it. Syntax follows the "Modern IRC client protocol" document and the
IRCv3 message-tags specification.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

# "Messages MUST NOT exceed 512 bytes in length, including the trailing CR-LF"
# (modern.ircdocs.horse); message-tags adds "up to 8191 bytes" for the tag part.
MAX_LINE_BYTES = 512
MAX_TAG_BYTES = 8191
# What a LineBuffer holds before it gives up on a line that never ends.
MAX_FRAME_BYTES = MAX_LINE_BYTES + MAX_TAG_BYTES + 2

NICK_MAX = 30
CHANNEL_MAX = 50
NICK_SPECIALS = frozenset("_-[]\\`^{}|")

# Commands whose only parameter is free text, and commands (besides numerics) whose
# last parameter is: both are written as trailing parameters.
TEXT_COMMANDS = frozenset({"QUIT", "ERROR", "AWAY"})
TEXT_LAST_COMMANDS = frozenset({"PRIVMSG", "NOTICE", "TOPIC", "PART", "KICK", "CAP", "FAIL", "WARN", "NOTE"})

_TAG_ESCAPES = {";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"}
_TAG_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


class ProtocolError(ValueError):
    """A line that cannot be understood as an IRC message at all."""


class LineTooLong(ProtocolError):
    """A line over the protocol's byte limit (answered with 417 ERR_INPUTTOOLONG)."""


def escape_tag_value(value: str) -> str:
    """Escape a tag value as the message-tags specification requires."""
    return "".join(_TAG_ESCAPES.get(ch, ch) for ch in value)


def unescape_tag_value(raw: str) -> str:
    """Undo escape_tag_value; unknown escapes drop the backslash, a lone trailing one is dropped."""
    out: list[str] = []
    chars = iter(raw)
    for ch in chars:
        if ch != "\\":
            out.append(ch)
            continue
        nxt = next(chars, None)
        if nxt is not None:
            out.append(_TAG_UNESCAPES.get(nxt, nxt))
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Message:
    """One IRC message: optional tags and source, a command and its parameters."""

    command: str
    params: tuple[str, ...] = ()
    source: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def format(self) -> str:
        """The message as one line of text, without the CRLF."""
        parts: list[str] = []
        if self.tags:
            parts.append("@" + ";".join(_format_tag(k, v) for k, v in self.tags.items()))
        if self.source:
            parts.append(":" + self.source)
        parts.append(self.command)
        if self.params:
            *middle, last = self.params
            for p in middle:
                if not p or " " in p or p.startswith(":"):
                    raise ValueError(f"middle parameter {p!r} cannot be sent")
            parts.extend(middle)
            # A colon is only required for empty, spaced or colon-led text, but naive
            # clients and bots expect it on text, so it is written wherever text goes.
            needs_colon = (
                not last or " " in last or last.startswith(":") or self.command in TEXT_COMMANDS
                or (bool(middle) and (self.command in TEXT_LAST_COMMANDS or self.command.isdigit()))
            )
            parts.append(":" + last if needs_colon else last)
        return " ".join(parts)

    def to_bytes(self) -> bytes:
        """The message as a wire line, CRLF included; CR, LF and NUL never leak into it."""
        text = self.format()
        if any(c in text for c in "\r\n\0"):
            text = text.replace("\r", " ").replace("\n", " ").replace("\0", "")
        return text.encode("utf-8") + b"\r\n"

    def param(self, index: int, default: str = "") -> str:
        """The parameter at index, or default when the message has fewer."""
        return self.params[index] if index < len(self.params) else default


def _format_tag(key: str, value: str) -> str:
    return f"{key}={escape_tag_value(value)}" if value else key


def parse_line(line: str) -> Message:
    """Parse one line (without CRLF) into a Message; raise ProtocolError if it has no command."""
    rest = line.rstrip("\r\n")
    tags: dict[str, str] = {}
    if rest.startswith("@"):
        tag_part, _, rest = rest[1:].partition(" ")
        for item in tag_part.split(";"):
            if not item:
                continue
            key, _, value = item.partition("=")
            tags[key] = unescape_tag_value(value)
        rest = rest.lstrip(" ")
    source = None
    if rest.startswith(":"):
        source, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
    trailing: str | None = None
    if " :" in rest:
        rest, trailing = rest.split(" :", 1)
    elif rest.startswith(":"):
        rest, trailing = "", rest[1:]
    words = [w for w in rest.split(" ") if w]
    if not words:
        raise ProtocolError("no command")
    command, params = words[0], words[1:]
    if trailing is not None:
        params.append(trailing)
    return Message(command.upper(), tuple(params), source, tags)


def check_length(line: bytes) -> None:
    """Raise LineTooLong if a line (without CRLF) breaks the tag or the 512-byte body limit."""
    body = line
    if line.startswith(b"@"):
        tag_part, _, body = line.partition(b" ")
        if len(tag_part) > MAX_TAG_BYTES:
            raise LineTooLong("tags too long")
    if len(body) + 2 > MAX_LINE_BYTES:
        raise LineTooLong("line too long")


def decode(line: bytes) -> str:
    """Decode a wire line as UTF-8; invalid bytes become U+FFFD, NULs are dropped."""
    return line.decode("utf-8", errors="replace").replace("\0", "")


class LineBuffer:
    """Frames a byte stream into lines, accepting CRLF or bare LF.

    feed() returns complete lines without their ending. A line that grows past
    max_bytes without an ending is cut off: it comes back once as a LineTooLong
    marker and its remaining bytes are skipped up to the next newline, so a peer
    that never sends a newline cannot make us hold unbounded memory.
    """

    def __init__(self, max_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_bytes = max_bytes
        self._buf = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> list[bytes | LineTooLong]:
        """Add received bytes; return the lines (or overflow markers) they complete."""
        self._buf += data
        out: list[bytes | LineTooLong] = []
        while True:
            end = self._buf.find(b"\n")
            if end < 0:
                break
            line = bytes(self._buf[:end])
            del self._buf[: end + 1]
            if self._skipping:
                self._skipping = False
                continue
            if len(line) > self.max_bytes:
                out.append(LineTooLong("line too long"))
                continue
            out.append(line[:-1] if line.endswith(b"\r") else line)
        if len(self._buf) > self.max_bytes:
            if not self._skipping:
                out.append(LineTooLong("line too long"))
            self._skipping = True
            self._buf.clear()
        return out


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
