"""CHATHISTORY (IRCv3 draft/chathistory): clients page through a room's stored messages.

Every answer is one `chathistory` batch, oldest message first. Problems are
answered with standard replies (`FAIL CHATHISTORY <code> ...`), as the spec asks.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from ..irc import IrcError, Message
from .chat import Chat
from .client import Client
from .envelope import format_time
from .history import DM_PREFIX, Ref, Stored, conversation_key
from .replay import send_batch

_TIMESTAMP = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z$")
CHATHISTORY_MAX = 100
SUBCOMMANDS = ("LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN")


class Fail(Exception):
    """A standard-reply failure: FAIL CHATHISTORY <code> <context...> :<text>."""

    def __init__(self, code: str, *context: str) -> None:
        super().__init__(code, *context)
        self.code = code
        self.context = context


def parse_ref(raw: str) -> Ref:
    """`msgid=X` or `timestamp=YYYY-MM-DDThh:mm:ss.sssZ` as a Ref."""
    kind, _, value = raw.partition("=")
    if kind == "msgid" and value:
        return Ref(msgid=value)
    if kind == "timestamp" and (m := _TIMESTAMP.match(value)):
        try:
            # datetime checks every field (month 13, hour 99 and year 0 are refused),
            # where calendar.timegm would raise on some and quietly roll others over.
            year, month, day, hour, minute, second = (int(x) for x in m.groups()[:6])
            when = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError:
            raise Fail("INVALID_PARAMS", raw) from None
        millis = int((m[7] or "0").ljust(3, "0")[:3])
        return Ref(ts_ms=int(when.timestamp()) * 1000 + millis)
    raise Fail("INVALID_PARAMS", raw)


def parse_limit(raw: str) -> int:
    """A positive limit, capped at what we advertise."""
    if not raw.isdigit() or int(raw) < 1:
        raise Fail("INVALID_PARAMS", raw)
    return min(int(raw), CHATHISTORY_MAX)


def handle_chathistory(chat: Chat, client: Client, msg: Message) -> None:
    """CHATHISTORY <subcommand> <target> <ref> [<ref>] <limit>."""
    if msg.params[0].upper() == "TARGETS":
        send_targets(chat, client, msg)
        return
    try:
        rows, target, room = _query(chat, client, msg)
    except Fail as fail:
        text = {"INVALID_PARAMS": "Invalid parameters", "INVALID_TARGET": "No such room, or you are not in it",
                "UNKNOWN_COMMAND": "Unknown subcommand", "NEED_MORE_PARAMS": "Not enough parameters"}
        params = ("CHATHISTORY", fail.code, *fail.context, text.get(fail.code, "Failed"))
        client.send_from_server("FAIL", *params)
        return
    if room.startswith(DM_PREFIX):
        send_batch(client, target, rows, room, partner=target)
    else:
        send_batch(client, target, rows, room)


def send_targets(chat: Chat, client: Client, msg: Message) -> None:
    """CHATHISTORY TARGETS <ts> <ts> <limit>: the private conversations of client's account with a
    line between the two times, newest first (guests have none: their messages are not kept)."""
    client.send_from_server("BATCH", "+targets", "draft/chathistory-targets")
    history = chat.history
    if history is not None and client.account is not None and len(msg.params) >= 4:
        try:
            bounds = sorted(ref.ts_ms or 0 for ref in (parse_ref(msg.params[1]), parse_ref(msg.params[2])))
            limit = parse_limit(msg.params[3])
        except Fail:
            bounds, limit = [0, 0], 0
        for other, last in history.conversations(client.account, limit):
            if bounds[0] <= last <= bounds[1]:
                client.send_from_server("CHATHISTORY", "TARGETS", other, format_time(last / 1000))
    client.send_from_server("BATCH", "-targets")


def _query(chat: Chat, client: Client, msg: Message) -> tuple[list[Stored], str, str]:
    sub = msg.params[0].upper()
    if sub not in SUBCOMMANDS:
        raise Fail("UNKNOWN_COMMAND", sub)
    needed = 5 if sub == "BETWEEN" else 4
    if len(msg.params) < needed:
        raise Fail("NEED_MORE_PARAMS", sub)
    target = msg.params[1]
    history = chat.history
    if not target.startswith("#"):
        # A private conversation is kept between two accounts, and only they may read it.
        other = chat.accounts.display_name(target) if chat.accounts is not None else None
        if client.account is None or other is None:
            return [], target, target
        room = conversation_key(client.account, other)
        target = other
    else:
        try:
            room = chat.hub.require_member(client, target)
        except IrcError:
            raise Fail("INVALID_TARGET", sub, target) from None
    limit = parse_limit(msg.params[needed - 1])
    if history is None:
        return [], target, room
    if sub == "LATEST":
        after = None if msg.params[2] == "*" else parse_ref(msg.params[2])
        return history.latest(room, limit, after), target, room
    ref = parse_ref(msg.params[2])
    if sub == "BEFORE":
        return history.before(room, ref, limit), target, room
    if sub == "AFTER":
        return history.after(room, ref, limit), target, room
    if sub == "AROUND":
        return history.around(room, ref, limit), target, room
    return history.between(room, ref, parse_ref(msg.params[3]), limit), target, room
