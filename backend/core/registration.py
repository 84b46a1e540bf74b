"""Connection registration: CAP negotiation, PASS/NICK/USER/WEBIRC and the welcome burst."""

from __future__ import annotations

import hmac
import logging

from ..irc import NICK_MAX, IrcError, Message, is_valid_nick
from ..irc import numerics as n
from ..irc.caps import ACCOUNT_CAPS, CAPABILITIES
from .accounts import check_nick_owner, logged_in, pause
from .addresses import is_loopback
from .chat import Chat
from .client import Client
from .events import Registered
from .isupport import send_isupport
from .klines import check_klined
from .multiclient import attachable, rejoin
from .rooms import enter_room
from .server_info import VERSION, send_lusers

log = logging.getLogger("lobby.registration")

MOTD_LINE_MAX = 400


def validate_nick(nick: str) -> None:
    """Raise 432 for a nick our rules refuse."""
    if not is_valid_nick(nick):
        raise IrcError(
            n.ERR_ERRONEUSNICKNAME,
            nick,
            f"Erroneous nickname: use letters, digits or _-[]\\`^{{}}| "
            f"(not starting with a digit or -), at most {NICK_MAX} characters",
        )


def handle_cap(chat: Chat, client: Client, msg: Message) -> None:
    """CAP LS / LIST / REQ / END (IRCv3 capability negotiation, version 302)."""
    sub = msg.params[0].upper()
    nick = client.nick
    server = chat.config.server_name
    if sub == "LS":
        if not client.registered:
            client.cap_negotiating = True
        offered = " ".join(k + (f"={v}" if v else "") for k, v in offered_caps(chat).items())
        client.send(Message("CAP", (nick, "LS", offered), server))
    elif sub == "LIST":
        client.send(Message("CAP", (nick, "LIST", " ".join(sorted(client.caps))), server))
    elif sub == "REQ":
        if not client.registered:
            client.cap_negotiating = True
        wanted = msg.param(1).split()
        caps = set(client.caps)
        for item in wanted:
            name = item.lstrip("-")
            if name not in offered_caps(chat):
                client.send(Message("CAP", (nick, "NAK", msg.param(1)), server))
                return
            if item.startswith("-"):
                caps.discard(name)
            else:
                caps.add(name)
        client.set_caps(caps)
        client.send(Message("CAP", (nick, "ACK", msg.param(1)), server))
    elif sub == "END":
        if not client.registered:
            client.cap_negotiating = False
            try_register(chat, client)
    else:
        raise IrcError(n.ERR_INVALIDCAPCMD, sub, "Invalid CAP command")


def offered_caps(chat: Chat) -> dict[str, str]:
    """The capabilities this server offers: the account ones only when it keeps accounts."""
    if chat.accounts is not None:
        return CAPABILITIES
    return {k: v for k, v in CAPABILITIES.items() if k not in ACCOUNT_CAPS}


def handle_pass(chat: Chat, client: Client, msg: Message) -> None:
    """PASS before registration; remembered and checked when registration completes."""
    if client.registered:
        raise IrcError(n.ERR_ALREADYREGISTERED, "You may not reregister")
    client.password = msg.params[0]


def handle_webirc(chat: Chat, client: Client, msg: Message) -> None:
    """WEBIRC <secret> <gateway> <hostname> <ip>: a trusted gateway names the real client.

    Accepted only before registration, only from this machine (a loopback peer, or
    our own address when the server listens on one LAN address, which is where the
    bridge then dials) and only with the secret the bridge was given at start-up
    (ircv3.net/specs/extensions/webirc). The option `account=NAME` says the browser
    is signed in on the page (bridge/session.py checked its token): the connection
    is then signed in to NAME, exactly as after SASL (900, account-tag, its nick).
    """
    secret = chat.config.webirc_password
    trusted = is_loopback(client.host) or client.host == client.link.local_host()
    if client.registered or client.nick != "*" or not secret or not trusted or not hmac.compare_digest(
        msg.params[0].encode(), secret.encode()
    ):
        client.kill("Invalid WEBIRC")
        return
    if not client.link.rehost(msg.params[3]):
        client.kill("Too many connections from your address")
        return
    client.gateway = msg.params[1]
    account = webirc_options(msg).get("account")
    if account and chat.accounts is not None and (name := chat.accounts.display_name(account)) is not None:
        logged_in(chat, client, name)


def webirc_options(msg: Message) -> dict[str, str]:
    """WEBIRC's optional fifth parameter: space-separated `key` or `key=value` flags."""
    flags = msg.params[4].split() if len(msg.params) > 4 else []
    return {key: value for key, _, value in (flag.partition("=") for flag in flags)}


def handle_user(chat: Chat, client: Client, msg: Message) -> None:
    """USER <user> <mode> <unused> <realname>."""
    if client.registered:
        raise IrcError(n.ERR_ALREADYREGISTERED, "You may not reregister")
    if len(msg.params) < 4 or not msg.params[0]:
        raise IrcError(n.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")
    user = "".join(ch for ch in msg.params[0] if ch.isalnum() or ch in "-_.")[:16]
    client.user = user or "user"
    client.realname = msg.params[3]
    try_register(chat, client)


def try_register(chat: Chat, client: Client) -> None:
    """Finish registration once NICK and USER are in and CAP negotiation is over."""
    if client.registered or client.cap_negotiating or client.nick == "*" or not client.user:
        return
    if chat.config.password is not None and not check_server_password(chat, client):
        return
    if check_klined(chat, client):
        return
    if chat.config.require_accounts and client.account is None:
        client.send_from_server("FAIL", "*", "ACCOUNT_REQUIRED", "Sign in to your account (SASL) to use this server")
        client.kill("An account is required")
        return
    lead = attachable(chat, client)
    if lead is not None and chat.hub.attach(lead, client) is not None:
        # Multiclient: one more connection of a user who is online (core/multiclient.py).
        client.registered = True
        welcome(chat, client)
        rejoin(chat, client)
        return
    try:
        check_nick_owner(chat, client, client.nick)
        # Cluster-wide first (outside the hub's lock), then on this node.
        claimed = chat.cluster.claim(client.nick)
        try:
            chat.hub.claim_nick(client, client.nick)
        except IrcError:
            if claimed:
                chat.cluster.release(client.nick)
            raise
    except IrcError as err:
        # Someone took the nick between NICK and USER: ask for another, as at NICK time.
        client.send(Message(err.numeric, ("*", *err.params), chat.config.server_name))
        client.nick = "*"
        return
    client.registered = True
    chat.count(registered=1)
    welcome(chat, client)
    chat.publish(Registered(client))
    chat.monitors.came(client)
    for room in chat.config.auto_join:
        try:
            enter_room(chat, client, room)
        except IrcError as err:
            client.send_numeric(err.numeric, *err.params)


def check_server_password(chat: Chat, client: Client) -> bool:
    """Whether the client gave the server password; if not, it is answered 464 and disconnected.

    Guessing is slowed down per address (core/guard.py): once an address has given a wrong
    password, its next one is checked only after a delay, however many connections it opens,
    and each wrong one is answered only after a delay that doubles up to a cap. The waiting
    happens here, in the guessing connection's own reader thread, with no lock held: nobody
    else waits. Every failure is answered alike (wrong, empty or no PASS at all) and logged
    once, with the address and never the password.
    """
    guard = chat.guard
    key = client.host
    while (wait := guard.admit(key)) > 0:
        if not pause(chat, client, wait):
            return False
    if chat.check_password(client.password):
        guard.succeeded(key)
        return True
    delay = guard.failed(key)
    log.warning("wrong server password from %s (%d in a row); answered in %.1f s",
                key, guard.failures(key), delay)
    if pause(chat, client, delay):
        client.send_numeric(n.ERR_PASSWDMISMATCH, "Password incorrect")
        client.kill("Bad password")
    return False


def welcome(chat: Chat, client: Client) -> None:
    """001-005 and the MOTD."""
    cfg = chat.config
    client.send_numeric(n.RPL_WELCOME, f"Welcome to the {cfg.network} chat, {client.prefix}")
    client.send_numeric(n.RPL_YOURHOST, f"Your host is {cfg.server_name}, running Lobby")
    client.send_numeric(n.RPL_CREATED, f"This server was created {chat.started_text}")
    client.send_numeric(n.RPL_MYINFO, cfg.server_name, f"lobby-{VERSION}", "Bi", "")
    send_isupport(chat, client)
    send_lusers(chat, client)
    send_motd(chat, client)


def send_motd(chat: Chat, client: Client) -> None:
    """The message of the day, or 422 when there is none."""
    motd = chat.config.motd
    if not motd:
        client.send_numeric(n.ERR_NOMOTD, "MOTD File is missing")
        return
    client.send_numeric(n.RPL_MOTDSTART, f"- {chat.config.server_name} Message of the day -")
    for line in motd.splitlines() or [""]:
        client.send_numeric(n.RPL_MOTD, f"- {line[:MOTD_LINE_MAX]}")
    client.send_numeric(n.RPL_ENDOFMOTD, "End of /MOTD command")

