"""What nodes write to Redis and say on its channel: key names, and the JSON of an event.

Every key is under PREFIX; every event goes out on CHANNEL as one JSON object with
the origin node, the event type, its own fields and, for an event users see, the
IRC message with its time and msgid, so every node shows the same msgid and time.
Nothing here talks to Redis.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..core.envelope import Envelope
from ..core.hub import Member
from ..irc import Message
from .streams import Keys

PREFIX = "lobby:"
CHANNEL = PREFIX + "events"
HISTORY = Keys(PREFIX)
NODES = PREFIX + "nodes"
ROOMS = PREFIX + "rooms"
TOPICS = PREFIX + "topics"


def nick_key(folded: str) -> str:
    """The cluster-wide claim on a nick: its value is the node that holds it."""
    return PREFIX + "nick:" + folded


def users_key(node: str) -> str:
    """A node's users: folded nick -> JSON user_info."""
    return PREFIX + "users:" + node


def room_key(folded: str) -> str:
    """A room's members on every node: folded nick -> node id."""
    return PREFIX + "room:" + folded


def alive_key(node: str) -> str:
    """A node's heartbeat, which expires when the node stops beating."""
    return PREFIX + "alive:" + node


def user_info(user: Member) -> dict[str, str]:
    """What the other nodes need to mirror a user."""
    return {"nick": user.nick, "user": user.user, "host": user.host, "realname": user.realname,
            "away": user.away or ""}


def payload(node: str, kind: str, envelope: Envelope | None = None, **extra: Any) -> str:
    """One event for CHANNEL: its origin, type and fields, and the envelope's message if any."""
    event: dict[str, Any] = {"node": node, "type": kind, **extra}
    if envelope is not None:
        m = envelope.message
        event.update(command=m.command, params=list(m.params), source=m.source, tags=m.tags,
                     time=envelope.time, msgid=envelope.msgid, extra=envelope.extra_tags)
        if envelope.lines is not None:
            event["lines"] = [list(part) for part in envelope.lines]
    return json.dumps(event)


def envelope_of(event: dict[str, Any]) -> Envelope | None:
    """The envelope an event from CHANNEL carries, with the origin's time and msgid; None if it has none."""
    if "command" not in event:
        return None
    message = Message(event["command"], tuple(event["params"]), event["source"], event["tags"])
    lines = event.get("lines")
    parts = tuple((str(text), bool(concat)) for text, concat in lines) if lines is not None else None
    return Envelope(message, time=event["time"], msgid=event["msgid"], extra_tags=event.get("extra", {}), lines=parts)


def redact(url: str) -> str:
    """The URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
