"""REDACT (IRCv3 draft/message-redaction): take back a message from a room and from its history.

`REDACT <#room> <msgid> [reason]`: anyone may redact their own messages, a room's operator
(and a server operator) any message of the room. The message is deleted from the history,
and clients that negotiated draft/message-redaction are told to hide it; the others simply
never see it again after a reload. Refusals are standard replies (`FAIL REDACT ...`).
"""

from __future__ import annotations

from ..irc import Message, fold
from .chat import Chat
from .client import Client
from .envelope import Envelope
from .history import Ref
from .modes import is_oper

CAP = "draft/message-redaction"


def handle_redact(chat: Chat, client: Client, msg: Message) -> None:
    """REDACT <#room> <msgid> [reason]."""
    target, msgid = msg.params[0], msg.params[1]
    reason = msg.param(2)
    view = chat.hub.room(target) if target.startswith("#") else None
    if view is None or not view.has(client):
        _fail(client, "INVALID_TARGET", target, "You can only redact in a room you are in")
        return
    if chat.history is None:
        _fail(client, "UNKNOWN_MSGID", view.name, msgid, "This server keeps no history")
        return
    found = [row for row in chat.history.around(view.name, Ref(msgid=msgid), 1) if row.msgid == msgid]
    if not found:
        _fail(client, "UNKNOWN_MSGID", view.name, msgid, "No such message in this room")
        return
    author = fold(found[0].source.split("!", 1)[0])
    operator = is_oper(client) or "@" in view.status[view.members.index(client)]
    if not operator and author not in {fold(client.nick), fold(client.account or client.nick)}:
        _fail(client, "REDACT_FORBIDDEN", view.name, msgid, "You may redact only your own messages")
        return
    if chat.history.redact(view.name, msgid) is None:
        _fail(client, "UNKNOWN_MSGID", view.name, msgid, "No such message in this room")
        return
    params = (view.name, msgid, reason) if reason else (view.name, msgid)
    envelope = Envelope(Message("REDACT", params, client.prefix))
    for member in chat.hub.members_of(view.name):
        if isinstance(member, Client) and (member.has(CAP) or member is client):
            member.deliver(envelope)


def _fail(client: Client, code: str, *params: str) -> None:
    client.send_from_server("FAIL", "REDACT", code, *params)
