"""Sending stored history to one client: replay on join and CHATHISTORY answers.

How history looks depends on what the client asked for (IRCv3 `batch`,
`server-time`, `message-tags`): inside a `chathistory` batch with original times
for clients that understand it, with original times alone for those that take
`server-time`, and as lines prefixed with their time, between two notices, for
plain clients, so that nobody mistakes an old line for a live one.
"""

from __future__ import annotations

import itertools
import time

from ..irc import Message, fold
from .client import Client
from .envelope import TAGS_NONE, Envelope, format_time
from .history import Stored

_batch_ids = itertools.count(1)


def to_envelope(row: Stored, room: str) -> Envelope:
    """A stored row as an Envelope carrying its original time, msgid and client-only tags."""
    return Envelope(_message(row, room, row.tags), time=row.ts_ms / 1000, msgid=row.msgid)


def _message(row: Stored, to: str, tags: dict[str, str]) -> Message:
    """A stored row as a message to `to` (a reaction, TAGMSG, has no text)."""
    params = (to,) if row.command == "TAGMSG" else (to, row.text)
    return Message(row.command, params, row.source, tags)


def visible(client: Client, rows: list[Stored]) -> list[Stored]:
    """rows less the reactions (TAGMSG) for a client that did not negotiate message-tags: it never sees TAGMSG."""
    if "message-tags" in client.caps:
        return rows
    return [row for row in rows if row.command != "TAGMSG"]


def send_batch(client: Client, target: str, rows: list[Stored], room: str, partner: str | None = None) -> None:
    """Send rows inside one `chathistory` batch (the form CHATHISTORY always answers in).

    With partner, the rows are a private conversation: each goes to the partner when client
    said it, else to client, as the messages went at the time.
    """
    batch_id = f"h{next(_batch_ids)}"
    client.send_from_server("BATCH", f"+{batch_id}", "chathistory", target)
    mine = {fold(client.nick), fold(client.account or client.nick)}
    for row in visible(client, rows):
        tags = {"batch": batch_id}
        if client.render_key != TAGS_NONE:
            tags["time"] = format_time(row.ts_ms / 1000)
        if "message-tags" in client.caps:
            tags["msgid"] = row.msgid
            tags.update(row.tags)  # +draft/reply, +draft/react: client-only tags, for message-tags clients
        to = room
        if partner is not None:
            to = partner if fold(row.source.split("!", 1)[0]) in mine else client.nick
        client.send(_message(row, to, tags))
    client.send_from_server("BATCH", f"-{batch_id}")


def replay_on_join(client: Client, room: str, rows: list[Stored]) -> None:
    """The recent history of a room, for a user who just joined it."""
    rows = visible(client, rows)
    if not rows:
        return
    if client.presenter is not None:
        # Presentations of their own (plain-text users) show the envelope's original time.
        _notice(client, room, f"Recent messages in {room}:")
        for row in rows:
            client.deliver(to_envelope(row, room))
        _notice(client, room, "End of recent messages")
    elif "batch" in client.caps and client.render_key != TAGS_NONE:
        send_batch(client, room, rows, room)
    else:
        # No batch: nothing would set the lines apart, and a client that shows the time it
        # received a line (irssi's default) would show them as new. So they come between two
        # notices, each led by the time it was said, and a topic change as a notice about it:
        # replayed as TOPIC, clients would take it for a fresh change.
        _notice(client, room, f"Recent messages in {room} (times in UTC):")
        for row in rows:
            client.send(_stamped(client, row, room))
        _notice(client, room, "End of recent messages")


def _notice(client: Client, room: str, text: str) -> None:
    client.send_from_server("NOTICE", room, text)


def _stamped(client: Client, row: Stored, room: str) -> Message:
    """A copy of a stored line for a client without batch, its text led by the time it was said."""
    when = time.gmtime(row.ts_ms / 1000)
    today = time.gmtime()
    fmt = "%H:%M" if when[:3] == today[:3] else "%Y-%m-%d %H:%M"
    stamp = "[" + time.strftime(fmt, when) + "] "
    tags: dict[str, str] = {}
    if client.render_key != TAGS_NONE:
        tags["time"] = format_time(row.ts_ms / 1000)
    if "message-tags" in client.caps:
        tags["msgid"] = row.msgid
        tags.update(row.tags)
        if row.command == "TAGMSG":
            return _message(row, room, tags)
    text = row.text
    if row.command == "TOPIC":
        setter = row.source.split("!", 1)[0]
        said = f"{setter} set the topic: {text}" if text else f"{setter} cleared the topic"
        return Message("NOTICE", (room, stamp + said), client.server_name, tags)
    action = "\x01ACTION "
    text = action + stamp + text[len(action):] if text.startswith(action) else stamp + text
    return Message(row.command, (room, text), row.source, tags)
