"""Questions about users and rooms: WHO, WHOIS, ISON, MODE (queries only) and MOTD."""

from __future__ import annotations

from ..irc import IrcError, Message, fold
from ..irc import numerics as n
from .chat import Chat
from .client import Client
from .registration import send_motd


def handle_who(chat: Chat, client: Client, msg: Message) -> None:
    """WHO <#room|nick>: a 352 line per matching user, then 315."""
    mask = msg.params[0]
    hub = chat.hub
    server = chat.config.server_name
    if mask.startswith("#"):
        view = hub.room(mask)
        channel = view.name if view else mask
        users = hub.members_of(mask)
    else:
        found = hub.find(mask)
        users = [found] if found else []
        channel = "*"
    for user in users:
        flags = "G" if user.away else "H"
        client.send_numeric(
            n.RPL_WHOREPLY, channel, user.user or user.nick, user.host or server,
            server, user.nick, flags, f"0 {user.realname}",
        )
    client.send_numeric(n.RPL_ENDOFWHO, mask, "End of /WHO list")


def handle_whois(chat: Chat, client: Client, msg: Message) -> None:
    """WHOIS <nick>: who a user is and which rooms they are in."""
    nick = msg.params[-1]
    hub = chat.hub
    user = hub.find(nick)
    if user is None:
        raise IrcError(n.ERR_NOSUCHNICK, nick, "No such nick")
    cfg = chat.config
    client.send_numeric(n.RPL_WHOISUSER, user.nick, user.user, user.host, "*", user.realname)
    rooms = hub.rooms_of(user)
    if rooms:
        client.send_numeric(n.RPL_WHOISCHANNELS, user.nick, " ".join(rooms))
    client.send_numeric(n.RPL_WHOISSERVER, user.nick, cfg.server_name, cfg.network)
    if user.away:
        client.send_numeric(n.RPL_AWAY, user.nick, user.away)
    client.send_numeric(n.RPL_ENDOFWHOIS, user.nick, "End of /WHOIS list")


def handle_ison(chat: Chat, client: Client, msg: Message) -> None:
    """ISON <nick>...: which of these nicks are online."""
    hub = chat.hub
    online = [u.nick for nick in " ".join(msg.params).split() if (u := hub.find(nick))]
    client.send_numeric(n.RPL_ISON, " ".join(online))


def handle_mode(chat: Chat, client: Client, msg: Message) -> None:
    """MODE: rooms and users have no modes to change here; queries get the empty answer."""
    target = msg.params[0]
    if target.startswith("#"):
        view = chat.hub.room(target)
        if view is None:
            raise IrcError(n.ERR_NOSUCHCHANNEL, target, "No such channel")
        if len(msg.params) > 1 and msg.params[1] not in ("b", "+b"):
            raise IrcError(n.ERR_CHANOPRIVSNEEDED, view.name, "Channel modes cannot be changed here")
        if len(msg.params) > 1:
            client.send_numeric(n.RPL_ENDOFBANLIST, view.name, "End of channel ban list")
            return
        client.send_numeric(n.RPL_CHANNELMODEIS, view.name, "+")
        client.send_numeric(n.RPL_CREATIONTIME, view.name, str(int(view.created)))
        return
    if fold(target) != fold(client.nick):
        raise IrcError(n.ERR_USERSDONTMATCH, "Cannot change mode for other users")
    if len(msg.params) > 1:
        raise IrcError(n.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
    client.send_numeric(n.RPL_UMODEIS, "+")


def handle_motd(chat: Chat, client: Client, msg: Message) -> None:
    """MOTD: the message of the day again."""
    send_motd(chat, client)
