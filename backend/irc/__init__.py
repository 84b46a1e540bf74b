"""The IRC protocol, pure: messages, line framing, names, numerics, and how events read to a person.

Nothing here does I/O or keeps state beyond one object: the server, the terminal
client and the tests all share it. `from backend.irc import Message, parse_line, ...`.
"""

from .framing import LineBuffer
from .message import (
    MAX_CLIENT_TAG_BYTES,
    MAX_FRAME_BYTES,
    MAX_LINE_BYTES,
    MAX_TAG_BYTES,
    LineTooLong,
    Message,
    ProtocolError,
    check_length,
    decode,
    decode_checked,
    escape_tag_value,
    fit_trailing,
    parse_line,
    unescape_tag_value,
)
from .names import CHANNEL_MAX, NICK_MAX, fold, is_valid_channel, is_valid_nick, split_text
from .numerics import IrcError

__all__ = [
    "CHANNEL_MAX",
    "MAX_CLIENT_TAG_BYTES",
    "MAX_FRAME_BYTES",
    "MAX_LINE_BYTES",
    "MAX_TAG_BYTES",
    "NICK_MAX",
    "IrcError",
    "LineBuffer",
    "LineTooLong",
    "Message",
    "ProtocolError",
    "check_length",
    "decode",
    "decode_checked",
    "escape_tag_value",
    "fit_trailing",
    "fold",
    "is_valid_channel",
    "is_valid_nick",
    "parse_line",
    "split_text",
    "unescape_tag_value",
]
