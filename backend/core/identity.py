"""Who a user is and whether they are here: NICK, SETNAME, AWAY, PING/PONG, QUIT, and a connection's end."""

from __future__ import annotations

from ..irc import IrcError, Message, fold
from ..irc import numerics as n
from .accounts import check_nick_owner
from .chat import Chat
from .client import Client
from .envelope import Envelope
from .events import AwayChanged, Quit, RealnameChanged, Renamed
from .multiclient import shows_in_use
from .notify import told_of_change
from .registration import try_register, validate_nick

REALNAME_MAX = 100


def handle_nick(chat: Chat, client: Client, msg: Message) -> None:
    """NICK <nick>: choose a nick before registration or change it after."""
    if not msg.params or not msg.params[0]:
        raise IrcError(n.ERR_NONICKNAMEGIVEN, "No nickname given")
    nick = msg.params[0]
    validate_nick(nick)
    hub = chat.hub
    if not client.registered:
        # A signed-in user's nick is decided at registration: this connection may yet sign in and attach.
        if shows_in_use(chat, client, nick):
            raise IrcError(n.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
        client.nick = nick
        try_register(chat, client)
        return
    if nick == client.nick:
        return
    # Before registration the owner is checked when it completes (after SASL, which comes later).
    check_nick_owner(chat, client, nick)
    old_nick, old_prefix = client.nick, client.prefix
    # The cluster-wide claim comes first (outside the hub's lock).
    claimed = chat.cluster.claim(nick) if fold(nick) != fold(old_nick) else False
    try:
        told = hub.rename(client, nick)
    except IrcError:
        if claimed:
            chat.cluster.release(nick)
        raise
    envelope = Envelope(Message("NICK", (nick,), old_prefix))
    chat.publish(Renamed(old_nick, client.member, tuple(hub.rooms_of(client)), envelope), told, exclude=client)
    client.echo(envelope)
    if fold(nick) != fold(old_nick):
        chat.monitors.went(old_nick)
        chat.monitors.came(client.member)


def handle_setname(chat: Chat, client: Client, msg: Message) -> None:
    """SETNAME :<realname> (IRCv3 setname): change the real name; those who asked are told."""
    realname = msg.params[0]
    if not realname.strip() or len(realname) > REALNAME_MAX:
        client.send_from_server("FAIL", "SETNAME", "INVALID_REALNAME",
                                f"Real name must be 1 to {REALNAME_MAX} characters")
        return
    client.realname = realname
    envelope = Envelope(Message("SETNAME", (realname,), client.prefix))
    chat.publish(RealnameChanged(client.member, envelope), told_of_change(chat, client, "setname"))


def handle_quit(chat: Chat, client: Client, msg: Message) -> None:
    """QUIT [reason]: leave; everyone who shared a room sees the reason."""
    reason = msg.param(0)
    client.quit_reason = f"Quit: {reason}" if reason else "Quit"
    client.kill(client.quit_reason)


def handle_ping(chat: Chat, client: Client, msg: Message) -> None:
    """PING <token>: answer PONG with the same token."""
    client.send_from_server("PONG", chat.config.server_name, msg.params[0])


def handle_pong(chat: Chat, client: Client, msg: Message) -> None:
    """PONG: the client is alive; any line proves that, so just clear the pending ping."""
    client.ping_sent = None


def handle_away(chat: Chat, client: Client, msg: Message) -> None:
    """AWAY [message]: set or clear the away message; with away-notify, room peers are told."""
    text = msg.param(0)
    client.away = text or None
    params = (text,) if text else ()
    envelope = Envelope(Message("AWAY", params, client.prefix))
    chat.publish(AwayChanged(client.member, envelope), told_of_change(chat, client, "away-notify"))
    if text:
        client.send_numeric(n.RPL_NOWAWAY, "You have been marked as being away")
    else:
        client.send_numeric(n.RPL_UNAWAY, "You are no longer marked as being away")


def disconnect(chat: Chat, client: Client, reason: str) -> None:
    """A connection ended: everyone who shared a room sees it QUIT, at once."""
    if not client.registered:
        chat.gone(client)
        return
    # Decided under the hub's lock, so that a connection attaching meanwhile either joins a user
    # that stays or finds the nick free.
    left = chat.hub.leave(client)
    chat.gone(client, user_left=left is not None)
    if left is None:
        return  # one connection of several (multiclient): nobody sees it go while another remains
    user, rooms, peers = left
    if chat.stopping:
        return  # everyone is being told "shutting down": N² QUITs would only slow the stop
    envelope = Envelope(Message("QUIT", (reason,), user.prefix))
    chat.publish(Quit(user, tuple(rooms), envelope), peers)
    chat.monitors.went(user.nick)
