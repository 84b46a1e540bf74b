"""Running rooms and the server: KICK, INVITE, OPER, KILL and WALLOPS.

Room operators (`@`, given by MODE +o or to whoever creates a room) kick and invite;
server operators (OPER against the configuration's hashed passwords) may do so in any
room, set any room's modes, KILL a user and send WALLOPS.
"""

from __future__ import annotations

import logging

from ..irc import IrcError, Message
from ..irc import numerics as n
from .chat import Chat
from .client import Client, connections_with
from .envelope import Envelope
from .events import Kicked
from .modes import is_oper
from .passwords import check_password

log = logging.getLogger("lobby.oper")

KICK_REASON_MAX = 300


def handle_kick(chat: Chat, client: Client, msg: Message) -> None:
    """KICK <#room> <nick>{,<nick>} [reason]: remove users from a room; everyone there sees who and why."""
    room = msg.params[0]
    reason = (msg.param(2) or client.nick)[:KICK_REASON_MAX]
    for nick in [x for x in msg.params[1].split(",") if x][:4]:
        try:
            name, target, told = chat.hub.kick(client, room, nick, privileged=is_oper(client))
        except IrcError as err:
            client.send_numeric(err.numeric, *err.params)
            continue
        envelope = Envelope(Message("KICK", (name, target.nick, reason), client.prefix))
        chat.publish(Kicked(name, target, envelope), told, exclude=client)
        client.echo(envelope)


def handle_invite(chat: Chat, client: Client, msg: Message) -> None:
    """INVITE <nick> <#room>: let nick in past +i; they are told, and so are members with invite-notify."""
    if len(msg.params) < 2:
        raise IrcError(n.ERR_NEEDMOREPARAMS, "INVITE", "Not enough parameters")
    nick, room = msg.params[0], msg.params[1]
    target = chat.hub.find(nick)
    if target is None:
        raise IrcError(n.ERR_NOSUCHNICK, nick, "No such nick")
    name = chat.hub.invite(client, room, target, privileged=is_oper(client))
    client.send_numeric(n.RPL_INVITING, target.nick, name)
    envelope = Envelope(Message("INVITE", (target.nick, name), client.prefix))
    target.deliver(envelope)
    for conn in connections_with(chat.hub.members_of(name), "invite-notify"):
        if conn is not client:
            conn.deliver(envelope)


def handle_oper(chat: Chat, client: Client, msg: Message) -> None:
    """OPER <name> <password>: become a server operator (381 and user mode +o), or 464.

    A wrong name and a wrong password get the same answer, so a guesser learns neither.
    """
    if len(msg.params) < 2:
        raise IrcError(n.ERR_NEEDMOREPARAMS, "OPER", "Not enough parameters")
    name, password = msg.params[0], msg.params[1]
    stored = chat.config.operators.get(name)
    if stored is None or not check_password(password, stored):
        log.warning("failed OPER as %r by %s (%s)", name, client.nick, client.host)
        raise IrcError(n.ERR_PASSWDMISMATCH, "Password incorrect")
    log.info("%s (%s) is now server operator %r", client.nick, client.host, name)
    client.modes.add("o")
    client.send_numeric(n.RPL_YOUREOPER, "You are now an IRC operator")
    client.send(Message("MODE", (client.nick, "+o"), client.prefix))


def handle_kill(chat: Chat, client: Client, msg: Message) -> None:
    """KILL <nick> <reason>: a server operator disconnects a user of this node."""
    if not is_oper(client):
        raise IrcError(n.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
    if len(msg.params) < 2:
        raise IrcError(n.ERR_NEEDMOREPARAMS, "KILL", "Not enough parameters")
    target = chat.hub.find(msg.params[0])
    if not isinstance(target, Client):
        raise IrcError(n.ERR_NOSUCHNICK, msg.params[0], "No such nick (or connected to another node)")
    log.info("%s killed %s: %s", client.nick, target.nick, msg.params[1])
    target.kill(f"Killed by {client.nick}: {msg.params[1]}")


def handle_wallops(chat: Chat, client: Client, msg: Message) -> None:
    """WALLOPS <text>: a server operator's message to every user with mode +w, and to operators."""
    if not is_oper(client):
        raise IrcError(n.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
    envelope = Envelope(Message("WALLOPS", (msg.params[0],), client.prefix))
    for user in chat.hub.users():
        if isinstance(user, Client) and ("w" in user.modes or "o" in user.modes):
            user.deliver(envelope)
