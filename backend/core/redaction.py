"""REDACT (IRCv3 draft/message-redaction): take back a message from a room or a private conversation,
and from its history.

`REDACT <#room> <msgid> [reason]`: anyone may redact their own messages, a room's operator
(and a server operator) any message of the room. `REDACT <nick> <msgid> [reason]`: the author
of a private message kept between two accounts takes it back (only the author: there are no
operators of a conversation). The message and the reactions to it are deleted from the history,
on every node, and clients that negotiated draft/message-redaction are told to hide it; the
others simply never see it again after a reload. Refusals are standard replies (`FAIL REDACT ...`).
Files the message names that its author uploaded are deleted with it (Chat.attachments).
"""

from __future__ import annotations

import logging

from ..irc import Message, fold
from .chat import Chat
from .client import Client
from .envelope import Envelope
from .events import Redacted
from .history import Ref, Stored, conversation_key
from .hub import Member
from .modes import is_oper

CAP = "draft/message-redaction"

log = logging.getLogger("lobby.redaction")


def handle_redact(chat: Chat, client: Client, msg: Message) -> None:
    """REDACT <#room or nick> <msgid> [reason]."""
    target, msgid = msg.params[0], msg.params[1]
    reason = msg.param(2)
    if not target.startswith("#"):
        _redact_private(chat, client, target, msgid, reason)
        return
    view = chat.hub.room(target)
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
    operator = is_oper(client) or "@" in view.status[view.members.index(client)]
    if not operator and not _mine(client, found[0]):
        _fail(client, "REDACT_FORBIDDEN", view.name, msgid, "You may redact only your own messages")
        return
    gone = _delete(chat, view.name, msgid)
    if gone is None:
        _fail(client, "UNKNOWN_MSGID", view.name, msgid, "No such message in this room")
        return
    params = (view.name, msgid, reason) if reason else (view.name, msgid)
    envelope = Envelope(Message("REDACT", params, client.prefix))
    chat.publish(Redacted(view.name, gone, envelope))
    tell(chat.hub.members_of(view.name), envelope, client)
    forget_files(chat, found[0])


def tell(members: list[Member], envelope: Envelope, redactor: Client | None = None) -> None:
    """Deliver a REDACT to those of members here who negotiated draft/message-redaction (and its sender)."""
    for member in members:
        if isinstance(member, Client):
            # Each connection of a user with several (multiclient) by its own capabilities.
            for conn in member.connections():
                if conn.has(CAP) or conn is redactor:
                    conn.deliver(envelope)


def _delete(chat: Chat, key: str, msgid: str) -> tuple[str, ...] | None:
    """Delete a kept message and the reactions to it; the msgids deleted, None if it was not there."""
    assert chat.history is not None
    reactions = chat.history.reactions(key, msgid)
    if chat.history.redact(key, msgid) is None:
        return None
    chat.history.forget(key, reactions)
    return (msgid, *reactions)


def _redact_private(chat: Chat, client: Client, target: str, msgid: str, reason: str) -> None:
    """REDACT <nick> <msgid>: the author takes back a private message kept between two accounts."""
    user = chat.hub.find(target)
    other = user.account if isinstance(user, Client) else None
    if other is None and chat.accounts is not None:
        other = chat.accounts.display_name(target)
    if client.account is None or other is None:
        _fail(client, "INVALID_TARGET", target, "Only private messages between two accounts are kept, and redacted")
        return
    if chat.history is None:
        _fail(client, "UNKNOWN_MSGID", target, msgid, "This server keeps no history")
        return
    key = conversation_key(client.account, other)
    found = [row for row in chat.history.around(key, Ref(msgid=msgid), 1) if row.msgid == msgid]
    if not found:
        _fail(client, "UNKNOWN_MSGID", target, msgid, "No such message in this conversation")
        return
    if not _mine(client, found[0]):
        _fail(client, "REDACT_FORBIDDEN", target, msgid, "You may redact only your own messages")
        return
    gone = _delete(chat, key, msgid)
    if gone is None:
        _fail(client, "UNKNOWN_MSGID", target, msgid, "No such message in this conversation")
        return
    # One line for both ends, as the message went: from its author, to the other end.
    to = user.nick if user is not None else other
    envelope = Envelope(Message("REDACT", (to, msgid, reason) if reason else (to, msgid), client.prefix))
    chat.publish(Redacted(key, gone, envelope, user))
    tell([client] if user is None or user is client else [client, user], envelope, client)
    forget_files(chat, found[0])


def forget_files(chat: Chat, row: Stored) -> None:
    """A message was deleted: so are the uploads its text names that its author made (never raises: the
    message is gone whatever happens to its files)."""
    if chat.attachments is None or not row.text:
        return
    try:
        chat.attachments.forget(row.text, row.source.split("!", 1)[0])
    except Exception:  # a files directory's trouble must not fail the REDACT that is already done
        log.exception("could not delete the files of a deleted message")


def _mine(client: Client, row: Stored) -> bool:
    return fold(row.source.split("!", 1)[0]) in {fold(client.nick), fold(client.account or client.nick)}


def _fail(client: Client, code: str, *params: str) -> None:
    client.send_from_server("FAIL", "REDACT", code, *params)
