"""PRIVMSG and NOTICE: to a room's members or to one user, here or on another node."""

from __future__ import annotations

from ..irc import IrcError, Message
from ..irc import numerics as n
from .chat import Chat
from .client import Client
from .envelope import Envelope
from .events import PrivateMessage, RoomMessage

MAX_TARGETS = 4


def handle_privmsg(chat: Chat, client: Client, msg: Message) -> None:
    """PRIVMSG/NOTICE <target>{,<target>} <text>: to a room's members or one user."""
    if not msg.params or not msg.params[0]:
        raise IrcError(n.ERR_NORECIPIENT, f"No recipient given ({msg.command})")
    if len(msg.params) < 2 or not msg.params[1]:
        raise IrcError(n.ERR_NOTEXTTOSEND, "No text to send")
    targets = msg.params[0].split(",")
    if len(targets) > MAX_TARGETS:
        raise IrcError(n.ERR_TOOMANYTARGETS, msg.params[0], f"Too many targets (at most {MAX_TARGETS})")
    client_tags = {k: v for k, v in msg.tags.items() if k.startswith("+")}
    for target in targets:
        try:
            send_message(chat, client, msg.command, target, msg.params[1], client_tags)
        except IrcError as err:
            client.send_numeric(err.numeric, *err.params)


def send_message(chat: Chat, client: Client, command: str, target: str, text: str, tags: dict[str, str]) -> None:
    """Deliver one PRIVMSG/NOTICE to a room or a nick."""
    echo = "echo-message" in client.caps
    if target.startswith("#"):
        try:
            room = chat.hub.require_member(client, target)
        except IrcError as err:
            if err.numeric != n.ERR_NOTONCHANNEL:
                raise
            raise IrcError(n.ERR_CANNOTSENDTOCHAN, target, "Cannot send to channel (join it first)") from None
        envelope = Envelope(Message(command, (room, text), client.prefix, tags))
        # Stored first: someone joining meanwhile either is among those it is delivered to
        # or reads it in the replay (the history thread takes the store before their read).
        chat.store(room, envelope)
        chat.publish(RoomMessage(room, envelope), chat.hub.members_of(room), exclude=None if echo else client)
        return
    user = chat.hub.find(target)
    if user is None:
        raise IrcError(n.ERR_NOSUCHNICK, target, "No such nick")
    envelope = Envelope(Message(command, (user.nick, text), client.prefix, tags))
    # A user of another node is reached through the cluster; delivering to its mirror does nothing.
    chat.publish(PrivateMessage(user, envelope), (user,))
    if echo and user is not client:
        client.deliver(envelope)
    if user.away and command == "PRIVMSG":
        client.send_numeric(n.RPL_AWAY, user.nick, user.away)
