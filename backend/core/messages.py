"""PRIVMSG, NOTICE and TAGMSG: to a room's members or to one user, here or on another node."""

from __future__ import annotations

import time

from ..irc import IrcError, Message, fit_trailing
from ..irc import numerics as n
from .chat import Chat
from .client import Client
from .envelope import Envelope, Part
from .events import PrivateMessage, Redacted, RoomMessage
from .history import conversation_key
from .reactions import Refused, check
from .rooms import show_member

MAX_TARGETS = 4


def handle_privmsg(chat: Chat, client: Client, msg: Message) -> None:
    """PRIVMSG/NOTICE <target>{,<target>} <text>: to a room's members or one user.

    A NOTICE is never answered automatically (RFC 2812, Modern): its errors are dropped.
    """
    notice = msg.command == "NOTICE"
    if not msg.params or not msg.params[0]:
        if notice:
            return
        raise IrcError(n.ERR_NORECIPIENT, f"No recipient given ({msg.command})")
    if len(msg.params) < 2 or not msg.params[1]:
        if notice:
            return
        raise IrcError(n.ERR_NOTEXTTOSEND, "No text to send")
    targets = msg.params[0].split(",")
    if len(targets) > MAX_TARGETS:
        if notice:
            return
        raise IrcError(n.ERR_TOOMANYTARGETS, msg.params[0], f"Too many targets (at most {MAX_TARGETS})")
    client_tags = {k: v for k, v in msg.tags.items() if k.startswith("+")}
    client.last_spoke = time.monotonic()
    for target in targets:
        try:
            send_message(chat, client, msg.command, target, msg.params[1], client_tags)
        except IrcError as err:
            if not notice:
                client.send_numeric(err.numeric, *err.params)


def handle_tagmsg(chat: Chat, client: Client, msg: Message) -> None:
    """TAGMSG <target>{,<target>}: client-only tags alone (typing, reactions), to message-tags clients."""
    targets = msg.params[0].split(",")
    if len(targets) > MAX_TARGETS:
        raise IrcError(n.ERR_TOOMANYTARGETS, msg.params[0], f"Too many targets (at most {MAX_TARGETS})")
    client_tags = {k: v for k, v in msg.tags.items() if k.startswith("+")}
    for target in targets:
        try:
            send_message(chat, client, "TAGMSG", target, None, client_tags)
        except Refused as refused:
            client.send_from_server("FAIL", "TAGMSG", refused.code, *refused.params)


def send_lines(
    chat: Chat, client: Client, command: str, target: str, lines: tuple[Part, ...], tags: dict[str, str]
) -> None:
    """Deliver a draft/multiline message; its errors are answered as for one line (never for a NOTICE)."""
    client.last_spoke = time.monotonic()
    try:
        send_message(chat, client, command, target, None, tags, lines)
    except IrcError as err:
        if command != "NOTICE":
            client.send_numeric(err.numeric, *err.params)


def send_message(
    chat: Chat, client: Client, command: str, target: str, text: str | None, tags: dict[str, str],
    lines: tuple[Part, ...] | None = None,
) -> None:
    """Deliver one PRIVMSG/NOTICE (text, or lines for a multiline one) or TAGMSG (neither) to a room or a nick."""
    echo = client.has("echo-message")
    extra = {"bot": ""} if "B" in client.modes else {}
    if client.account is not None:
        extra["account"] = client.account  # account-tag
    if target.startswith("#"):
        room, hidden = chat.hub.speaker_room(client, target)
        checked = check(chat, client, command, room, room, tags)
        if hidden:  # +D: whoever speaks is shown first, their JOIN before their words
            show_member(chat, client, room)
        envelope = _envelope(client, command, room, text, checked.tags, extra, lines)
        if checked.keep:
            # Stored first: someone joining meanwhile either is among those it is delivered to
            # or reads it in the replay (the history thread takes the store before their read).
            chat.store(room, envelope)
        chat.publish_room(RoomMessage(room, envelope), exclude=client)
        if echo:
            client.echo(envelope)
        _forget(chat, room, checked.forget)
        return
    user = chat.hub.find(target)
    if user is None:
        raise IrcError(n.ERR_NOSUCHNICK, target, "No such nick")
    key = None
    if client.account is not None and isinstance(user, Client) and user.account is not None:
        key = conversation_key(client.account, user.account)  # kept between two accounts (core/chat.py)
    checked = check(chat, client, command, user.nick, key, tags)
    envelope = _envelope(client, command, user.nick, text, checked.tags, extra, lines)
    # Kept between two accounts (and read back with CHATHISTORY); before it is delivered, as in rooms.
    if checked.keep:
        chat.store_private(client, user, envelope)
    # A user of another node is reached through the cluster; delivering to its mirror does nothing.
    chat.publish(PrivateMessage(user, envelope), () if user is client else (user,))
    if user is not client.member:
        client.echo_others(envelope)  # multiclient: the sender's other connections show it too
    if echo or user is client:
        client.echo(envelope)
    if key is not None:
        _forget(chat, key, checked.forget)
    if user.away and command == "PRIVMSG":
        client.send_numeric(n.RPL_AWAY, user.nick, user.away)


def _forget(chat: Chat, key: str, msgids: list[str]) -> None:
    """Take back kept reactions (an unreact): from this node's history, and the cluster's."""
    if msgids and chat.history is not None:
        chat.history.forget(key, msgids)
        chat.publish(Redacted(key, tuple(msgids)))


def _envelope(
    client: Client, command: str, target: str, text: str | None, tags: dict[str, str], extra: dict[str, str],
    lines: tuple[Part, ...] | None,
) -> Envelope:
    if lines is None:
        return Envelope(_message(client, command, target, text, tags), extra_tags=extra)
    # Each line is cut to fit as the others will get it (one per line, for clients without multiline).
    fitted = tuple((fit_trailing(f":{client.prefix} {command} {target} :", line), concat) for line, concat in lines)
    joined = "".join(("" if concat or i == 0 else "\n") + line for i, (line, concat) in enumerate(fitted))
    return Envelope(Message(command, (target, joined), client.prefix, tags), extra_tags=extra, lines=fitted)


def _message(client: Client, command: str, target: str, text: str | None, tags: dict[str, str]) -> Message:
    """The message as relayed, its text cut so that the line others get fits 512 bytes."""
    if text is None:
        return Message(command, (target,), client.prefix, tags)
    head = f":{client.prefix} {command} {target} :"
    return Message(command, (target, fit_trailing(head, text)), client.prefix, tags)
