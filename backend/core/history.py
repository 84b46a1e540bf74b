"""The history port: what the core reads and writes of a room's past, and the shapes it comes in.

The core defines these; `backend/store` (SQLite) and `backend/cluster` (Redis streams)
implement them, and `backend/node.py` chooses which. Every read answers oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..irc import Message, fold

# A private conversation between two accounts is kept like a room whose key is made of both
# accounts (folded, sorted): "~dm~alice~bob". "~" can't begin a room name, so no room collides.
DM_PREFIX = "~dm~"
DM_SEPARATOR = "~"


def conversation_key(one: str, other: str) -> str:
    """The key under which the private messages between two accounts are kept."""
    first, second = sorted((fold(one), fold(other)))
    return f"{DM_PREFIX}{first}{DM_SEPARATOR}{second}"


# What history keeps: what was said, topic changes, and reactions (a TAGMSG with +draft/react);
# other tags alone (+typing, +draft/unreact) are relayed only.
STORED = frozenset({"PRIVMSG", "NOTICE", "TOPIC"})
REACT = "+draft/react"
UNREACT = "+draft/unreact"
REPLY = "+draft/reply"
TYPING = "+typing"


def kept(message: Message) -> bool:
    """Whether history keeps this message: said, a topic, or a reaction."""
    return message.command in STORED or (message.command == "TAGMSG" and REACT in message.tags)


def kept_tags(message: Message) -> dict[str, str]:
    """The client-only tags kept (and replayed) with a message: all but typing notices."""
    return {k: v for k, v in message.tags.items() if k.startswith("+") and k != TYPING}


def kept_text(message: Message) -> str:
    """The text kept for a message: its last parameter, none for a TAGMSG (its only one is the target)."""
    return message.params[-1] if len(message.params) > 1 else ""


class Unavailable(Exception):
    """A history source can't answer right now (e.g. Redis is unreachable); ask another."""


@dataclass(frozen=True, slots=True)
class Stored:
    """One stored room message (or a reaction: a TAGMSG, with an empty text)."""

    msgid: str
    ts_ms: int
    source: str
    command: str
    target: str
    text: str
    # The client-only tags it was sent with (+draft/reply, +draft/react, ...), replayed with it.
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ref:
    """A position in a room's history: a msgid, or a timestamp in milliseconds."""

    msgid: str | None = None
    ts_ms: int | None = None


class HistorySource(Protocol):
    """Where replay and CHATHISTORY read a room's messages; every answer is oldest first."""

    def latest(self, room: str, limit: int, after: Ref | None = None) -> list[Stored]:
        """The newest `limit` messages, optionally only those after a reference."""
        ...

    def before(self, room: str, ref: Ref, limit: int) -> list[Stored]:
        """Up to `limit` messages just before ref."""
        ...

    def after(self, room: str, ref: Ref, limit: int) -> list[Stored]:
        """Up to `limit` messages just after ref."""
        ...

    def around(self, room: str, ref: Ref, limit: int) -> list[Stored]:
        """About `limit` messages centred on ref (ref included when it is a message)."""
        ...

    def between(self, room: str, start: Ref, end: Ref, limit: int) -> list[Stored]:
        """Up to `limit` messages strictly between two references, paging from `start`."""
        ...


class HistoryStore(HistorySource, Protocol):
    """A HistorySource that also keeps what is said: the core stores before it delivers."""

    def redact(self, room: str, msgid: str) -> Stored | None:
        """Delete a room's message by msgid; the message as it was, or None if there was none."""
        ...

    def conversations(self, account: str, limit: int) -> list[tuple[str, int]]:
        """The private conversations of account: (the other account, ms of the last line), newest first."""
        ...

    def add(self, room: str, msgid: str, when: float, source: str, command: str, text: str,
            tags: dict[str, str] | None = None) -> None:
        """Queue one room message, reaction or topic change for storage; waits (briefly) only while the
        writer is behind."""
        ...

    def forget(self, room: str, msgids: list[str]) -> None:
        """Delete these messages of a room (or conversation) if they are there."""
        ...

    def reactions(self, room: str, parent: str, nick: str | None = None, value: str | None = None) -> list[str]:
        """The msgids of the reactions kept to message parent (only nick's, only with value, when given)."""
        ...


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What a SEARCH asks for, already checked: every field a plain value, nothing in any query syntax."""

    rooms: tuple[str, ...]  # casefolded rooms to look in (the user's own, or the one named): never empty
    words: tuple[str, ...] = ()  # words and "quoted phrases", each to be found as written (all of them)
    nick: str | None = None  # casefolded nick of the sender
    after_ms: int | None = None  # only messages at or after this time (ms since the epoch)
    before_ms: int | None = None  # only messages before this time
    limit: int = 50


@runtime_checkable
class HistorySearch(Protocol):
    """A history that can be searched (SQLite with its full-text index); the core offers SEARCH only then."""

    def search(self, query: SearchQuery) -> list[Stored]:
        """The newest messages matching query, at most query.limit, newest first."""
        ...
