"""What happened in the chat, as values: the one currency of the publish seam.

Handlers make a change through the Hub, then hand the event to Chat.publish, which
delivers its envelope to the local members concerned and gives the event to the
cluster port, which tells the other nodes. An event carries the values of the
moment it happened (nicks, rooms), because the cluster may send it later.
"""

from __future__ import annotations

from dataclasses import dataclass

from .envelope import Envelope
from .hub import Member


@dataclass(frozen=True, slots=True)
class Registered:
    """A user finished registration on this node."""

    user: Member


@dataclass(frozen=True, slots=True)
class Joined:
    """A user entered a room."""

    user: Member
    room: str
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class Parted:
    """A user left a room."""

    user: Member
    room: str
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class Quit:
    """A user left the network; rooms are those they were in."""

    user: Member
    rooms: tuple[str, ...]
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class Renamed:
    """A user changed nick from old_nick; rooms are those they are in."""

    old_nick: str
    user: Member
    rooms: tuple[str, ...]
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class RoomMessage:
    """A PRIVMSG or NOTICE said in a room (stored before it is published)."""

    room: str
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class TopicChanged:
    """A room's topic was set (stored before it is published, like a message)."""

    room: str
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class ModeChanged:
    """A room's modes changed (operators, voice, bans, key, ...): the MODE line says what."""

    room: str
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class Kicked:
    """A user was removed from a room by an operator."""

    room: str
    target: Member
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class AwayChanged:
    """A user set or cleared their away message (the envelope is the AWAY for away-notify)."""

    user: Member
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class AccountChanged:
    """A user signed in to an account after registering (account-notify's ACCOUNT)."""

    user: Member
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class RealnameChanged:
    """A user changed their real name with SETNAME."""

    user: Member
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class PrivateMessage:
    """A PRIVMSG or NOTICE to one user (who may be on another node)."""

    target: Member
    envelope: Envelope


@dataclass(frozen=True, slots=True)
class Redacted:
    """Stored lines taken back (a REDACT, or an unreact): deleted from the history kept under key (a room,
    or a private conversation's key) on every node, and the REDACT, if any, told to those who may see it."""

    key: str
    msgids: tuple[str, ...]
    envelope: Envelope | None = None
    target: Member | None = None  # the other end of a private conversation


Event = (
    Registered | Joined | Parted | Quit | Renamed | RoomMessage | TopicChanged | ModeChanged | Kicked | AwayChanged
    | AccountChanged | RealnameChanged | PrivateMessage | Redacted
)
