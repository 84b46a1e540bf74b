"""Reactions and replies (IRCv3 client tags +draft/react, +draft/unreact, +draft/reply), checked before
they are relayed and kept.

The client-tags specs leave values to clients; we keep reactions in the history, so we check what we
keep: a reaction is 1 to 64 bytes of text without control characters, and it must name, with
+draft/reply, a message kept in the same room or conversation. A reaction that fails is refused with
a standard reply (`FAIL TAGMSG <code> ...`) and neither relayed nor kept: relaying a reaction to a
message its readers can't have would show them a reaction to nothing, or hint at another room's
message. A reply (+draft/reply on a PRIVMSG or NOTICE) naming no such message still goes out, without
the tag (the sender is warned: `WARN PRIVMSG UNKNOWN_MSGID`), so a line is never lost for its tag.
Where nothing is kept (no history, a guest's private message) nothing can be checked: the tags are
relayed as they came, and nothing is kept.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

from ..irc import fold
from .chat import Chat
from .client import Client
from .history import REACT, REPLY, UNREACT, Ref

MAX_REACTION_BYTES = 64
SAID = ("PRIVMSG", "NOTICE")


class Refused(Exception):
    """A reaction that is neither relayed nor kept: FAIL TAGMSG <code> <context...> :<text>."""

    def __init__(self, code: str, *params: str) -> None:
        super().__init__(code, *params)
        self.code = code
        self.params = params


@dataclass(slots=True)
class Checked:
    """What to relay (tags), whether to keep it, and which kept reactions an unreact takes back."""

    tags: dict[str, str]
    keep: bool = True
    forget: list[str] = field(default_factory=list)


def bad_reaction(value: str) -> bool:
    """Whether value can't be a reaction: empty, over MAX_REACTION_BYTES, or holding control characters."""
    if not value or len(value.encode("utf-8")) > MAX_REACTION_BYTES:
        return True
    # Format characters are refused (bidi overrides hide text) except the joiner and the tag
    # characters that emoji sequences are made of (👩‍💻, subdivision flags).
    return any(unicodedata.category(ch) == "Cc" or (unicodedata.category(ch) == "Cf" and ch != "\u200d"
                                                   and not 0xE0020 <= ord(ch) <= 0xE007F) for ch in value)


def is_message(chat: Chat, key: str, msgid: str) -> bool:
    """Whether msgid names a PRIVMSG or NOTICE kept under key (a room, or a conversation's key)."""
    if chat.history is None or not msgid:
        return False
    try:
        rows = chat.history.around(key, Ref(msgid=msgid), 1)
    except TimeoutError:
        return False
    return any(row.msgid == msgid and row.command in SAID for row in rows)


def check(chat: Chat, client: Client, command: str, target: str, key: str | None, tags: dict[str, str]) -> Checked:
    """The tags of a message from client to target, checked; key is where that target's history is
    kept (None: nowhere, so nothing is checked or kept). Raises Refused for a bad reaction."""
    react, unreact = tags.get(REACT), tags.get(UNREACT)
    if command != "TAGMSG":
        parent = tags.get(REPLY)
        if parent is not None and key is not None and chat.history is not None and not is_message(chat, key, parent):
            if command == "PRIVMSG":  # a NOTICE is never answered (RFC 2812)
                client.send_from_server("WARN", command, "UNKNOWN_MSGID", target, parent,
                                        "No such message to reply to here; sent without the reply tag")
            return Checked({k: v for k, v in tags.items() if k != REPLY})
        return Checked(tags)
    if react is None and unreact is None:
        return Checked(tags, keep=False)  # typing notices and other tags alone: relayed, never kept
    if react is not None and unreact is not None:
        raise Refused("INVALID_REACTION", target, "A reaction can't be added and taken back at once")
    value = react if react is not None else unreact or ""
    if bad_reaction(value):
        raise Refused("INVALID_REACTION", target,
                      f"A reaction is 1 to {MAX_REACTION_BYTES} bytes of text without control characters")
    parent = tags.get(REPLY)
    if not parent:
        raise Refused("INVALID_REACTION", target, "A reaction needs +draft/reply naming the message")
    if key is None or chat.history is None:
        return Checked(tags, keep=False)
    if not is_message(chat, key, parent):
        raise Refused("UNKNOWN_MSGID", target, parent, "No such message here to react to")
    if react is not None:
        # Kept as it comes, on every node alike: the same reaction twice by one nick is kept twice
        # (clients count a nick's reaction once, as they must for what they see live).
        return Checked(tags)
    # An unreact takes back every reaction of that nick with that value to that message.
    return Checked(tags, keep=False, forget=chat.history.reactions(key, parent, nick=fold(client.nick), value=value))
