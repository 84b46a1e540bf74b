"""Connection registration: CAP negotiation, PASS/NICK/USER and the welcome burst."""

from __future__ import annotations

import contextlib
import hmac
from typing import TYPE_CHECKING

from . import numerics as n
from .addresses import is_loopback
from .numerics import IrcError
from .protocol import CHANNEL_MAX, NICK_MAX, Message, is_valid_nick

if TYPE_CHECKING:
    from .session import Session

# Capabilities we offer, with their CAP LS 302 values.
CAPABILITIES: dict[str, str] = {
    "server-time": "",
    "message-tags": "",
    "echo-message": "",
    "batch": "",
    "draft/chathistory": "",
}

TOPIC_MAX = 390
CHATHISTORY_MAX = 100
VERSION = "0.1.0"
MOTD_LINE_MAX = 400


def isupport_tokens(session: Session) -> list[str]:
    """The RPL_ISUPPORT tokens describing this server."""
    cfg = session.server.config
    return [
        "CASEMAPPING=rfc8265",
        "CHANTYPES=#",
        "CHANMODES=,,,",
        "PREFIX=",
        f"NICKLEN={NICK_MAX}",
        f"CHANNELLEN={CHANNEL_MAX}",
        f"TOPICLEN={TOPIC_MAX}",
        "MAXTARGETS=4",
        f"NETWORK={cfg.network}",
        "UTF8ONLY",
        "SAFELIST",
        f"CHATHISTORY={CHATHISTORY_MAX}",
        "MSGREFTYPES=msgid,timestamp",
    ]


def validate_nick(nick: str) -> None:
    """Raise 432 for a nick our rules refuse."""
    if not is_valid_nick(nick):
        raise IrcError(
            n.ERR_ERRONEUSNICKNAME,
            nick,
            f"Erroneous nickname: use letters, digits or _-[]\\`^{{}}| "
            f"(not starting with a digit or -), at most {NICK_MAX} characters",
        )


def handle_cap(session: Session, msg: Message) -> None:
    """CAP LS / LIST / REQ / END (IRCv3 capability negotiation, version 302)."""
    sub = msg.params[0].upper()
    nick = session.nick
    server = session.server.config.server_name
    if sub == "LS":
        if not session.registered:
            session.cap_negotiating = True
        offered = " ".join(k + (f"={v}" if v else "") for k, v in CAPABILITIES.items())
        session.send(Message("CAP", (nick, "LS", offered), server))
    elif sub == "LIST":
        session.send(Message("CAP", (nick, "LIST", " ".join(sorted(session.caps))), server))
    elif sub == "REQ":
        if not session.registered:
            session.cap_negotiating = True
        wanted = msg.param(1).split()
        caps = set(session.caps)
        for item in wanted:
            name = item.lstrip("-")
            if name not in CAPABILITIES:
                session.send(Message("CAP", (nick, "NAK", msg.param(1)), server))
                return
            if item.startswith("-"):
                caps.discard(name)
            else:
                caps.add(name)
        session.set_caps(caps)
        session.send(Message("CAP", (nick, "ACK", msg.param(1)), server))
    elif sub == "END":
        if not session.registered:
            session.cap_negotiating = False
            try_register(session)
    else:
        raise IrcError(n.ERR_INVALIDCAPCMD, sub, "Invalid CAP command")


def handle_pass(session: Session, msg: Message) -> None:
    """PASS before registration; remembered and checked when registration completes."""
    if session.registered:
        raise IrcError(n.ERR_ALREADYREGISTERED, "You may not reregister")
    session.password = msg.params[0]


def handle_webirc(session: Session, msg: Message) -> None:
    """WEBIRC <secret> <gateway> <hostname> <ip>: a trusted gateway names the real client.

    Accepted only before registration, only from this machine (a loopback peer, or
    our own address when the server listens on one LAN address, which is where the
    bridge then dials) and only with the secret the bridge was given at start-up
    (ircv3.net/specs/extensions/webirc).
    """
    secret = session.server.config.webirc_password
    trusted = is_loopback(session.host)
    with contextlib.suppress(OSError):
        trusted = trusted or session.host == session.sock.getsockname()[0]
    if session.registered or session.nick != "*" or not secret or not trusted or not hmac.compare_digest(
        msg.params[0].encode(), secret.encode()
    ):
        session.kill("Invalid WEBIRC")
        return
    if not session.server.rehost(session, msg.params[3]):
        session.kill("Too many connections from your address")
        return
    session.gateway = msg.params[1]


def handle_user(session: Session, msg: Message) -> None:
    """USER <user> <mode> <unused> <realname>."""
    if session.registered:
        raise IrcError(n.ERR_ALREADYREGISTERED, "You may not reregister")
    if len(msg.params) < 4 or not msg.params[0]:
        raise IrcError(n.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")
    user = "".join(ch for ch in msg.params[0] if ch.isalnum() or ch in "-_.")[:16]
    session.user = user or "user"
    session.realname = msg.params[3]
    try_register(session)


def try_register(session: Session) -> None:
    """Finish registration once NICK and USER are in and CAP negotiation is over."""
    if session.registered or session.cap_negotiating or session.nick == "*" or not session.user:
        return
    server = session.server
    if server.config.password is not None and not server.check_password(session.password):
        session.send_numeric(n.ERR_PASSWDMISMATCH, "Password incorrect")
        session.kill("Bad password")
        return
    backplane = server.hub.backplane
    try:
        # Cluster-wide first (a Redis call, outside the hub's lock), then on this node.
        claimed = backplane.claim(session.nick) if backplane is not None else False
        try:
            server.hub.claim_nick(session, session.nick)
        except IrcError:
            if claimed and backplane is not None:
                backplane.release(session.nick)
            raise
    except IrcError as err:
        # Someone took the nick between NICK and USER: ask for another, as at NICK time.
        session.send(Message(err.numeric, ("*", *err.params), server.config.server_name))
        session.nick = "*"
        return
    session.registered = True
    welcome(session)
    server.on_registered(session)


def welcome(session: Session) -> None:
    """001-005 and the MOTD."""
    cfg = session.server.config
    session.send_numeric(n.RPL_WELCOME, f"Welcome to the {cfg.network} chat, {session.prefix}")
    session.send_numeric(n.RPL_YOURHOST, f"Your host is {cfg.server_name}, running Lobby")
    session.send_numeric(n.RPL_CREATED, f"This server was created {session.server.started_text}")
    session.send_numeric(n.RPL_MYINFO, cfg.server_name, f"lobby-{VERSION}", "i", "n")
    session.send_numeric(n.RPL_ISUPPORT, *isupport_tokens(session), "are supported by this server")
    send_motd(session)


def send_motd(session: Session) -> None:
    """The message of the day, or 422 when there is none."""
    motd = session.server.config.motd
    if not motd:
        session.send_numeric(n.ERR_NOMOTD, "MOTD File is missing")
        return
    session.send_numeric(n.RPL_MOTDSTART, f"- {session.server.config.server_name} Message of the day -")
    for line in motd.splitlines() or [""]:
        session.send_numeric(n.RPL_MOTD, f"- {line[:MOTD_LINE_MAX]}")
    session.send_numeric(n.RPL_ENDOFMOTD, "End of /MOTD command")
