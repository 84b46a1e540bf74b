"""IRC message syntax: parsing, formatting, tag escaping and the length rules.

This module is pure: bytes and str in, objects out, and back. It holds no sockets,
no threads and no server state, so the server, the terminal client and the tests
all share it. Syntax follows the "Modern IRC client protocol" document and the
IRCv3 message-tags specification.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# "Messages MUST NOT exceed 512 bytes in length, including the trailing CR-LF"
# (modern.ircdocs.horse); message-tags adds "up to 8191 bytes" for the tag part.
MAX_LINE_BYTES = 512
MAX_TAG_BYTES = 8191
# "Clients MUST NOT send messages with tag data exceeding 4094 bytes" (message-tags): the
# rest of the 8191 is the server's own tags.
MAX_CLIENT_TAG_BYTES = 4094
# What a LineBuffer holds before it gives up on a line that never ends.
MAX_FRAME_BYTES = MAX_LINE_BYTES + MAX_TAG_BYTES + 2

# Commands whose only parameter is free text, and commands (besides numerics) whose
# last parameter is: both are written as trailing parameters.
TRAILING_ONLY_COMMANDS = frozenset({"QUIT", "ERROR", "AWAY"})
TRAILING_LAST_COMMANDS = frozenset({"PRIVMSG", "NOTICE", "TOPIC", "PART", "KICK", "CAP", "FAIL", "WARN", "NOTE"})

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
                not last or " " in last or last.startswith(":") or self.command in TRAILING_ONLY_COMMANDS
                or (bool(middle) and (self.command in TRAILING_LAST_COMMANDS or self.command.isdigit()))
            )
            parts.append(":" + last if needs_colon else last)
        return " ".join(parts)

    def to_bytes(self) -> bytes:
        """The message as a wire line, CRLF included; CR, LF and NUL never leak into it."""
        text = self.format()
        if "\r" in text or "\n" in text or "\0" in text:
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
    """Raise LineTooLong if a client's line (without CRLF) breaks the tag or the 512-byte body limit."""
    body = line
    if line.startswith(b"@"):
        tag_part, _, body = line.partition(b" ")
        if len(tag_part) - 1 > MAX_CLIENT_TAG_BYTES:
            raise LineTooLong("tags too long")
    if len(body) + 2 > MAX_LINE_BYTES:
        raise LineTooLong("line too long")


def decode(line: bytes) -> str:
    """Decode a wire line as UTF-8; invalid bytes become U+FFFD, NULs are dropped."""
    return line.decode("utf-8", errors="replace").replace("\0", "")


def fit_trailing(head: str, text: str) -> str:
    """text cut (never mid-character) so that `head` + text + CRLF fits one 512-byte line.

    head is the line up to the trailing parameter, e.g. ":alice!a@h PRIVMSG #room :".
    Other servers do the same to what they relay: a 510-byte PRIVMSG gains the sender's
    prefix on its way out.
    """
    budget = MAX_LINE_BYTES - 2 - len(head.encode("utf-8"))
    raw = text.encode("utf-8")
    if len(raw) <= budget:
        return text
    return raw[: max(0, budget)].decode("utf-8", errors="ignore")


def decode_checked(line: bytes) -> tuple[str, bool]:
    """decode(line), and whether line was valid UTF-8 (UTF8ONLY: the sender is told when not)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return decode(line), False
    return text.replace("\0", ""), True
