"""Server-wide bans (K-lines): a server operator keeps a `nick!user@host` mask off the server, for a time.

`KLINE [duration] <mask> [reason]` bans and disconnects whoever matches now; `UNKLINE <mask>`
lifts it; `KLINE LIST` (or `STATS k`) lists them with 216/219. Durations: `30` (minutes),
`45s`, `30m`, `2h`, `7d`; none is until lifted. Registration refuses a match with 465. They
live in memory on the node where they were set.
"""

from __future__ import annotations

import logging
import re
import time

from ..irc import IrcError, Message
from ..irc import numerics as n
from .chat import Chat
from .client import Client
from .masks import matches
from .modes import is_oper
from .room import normal_mask
from .serverbans import KLine

log = logging.getLogger("lobby.oper")

_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "": 60}


def check_klined(chat: Chat, client: Client) -> bool:
    """At registration: True (and 465 + disconnect) when a K-line matches the client."""
    line = chat.klines.banning(client.prefix)
    if line is None:
        return False
    client.send_numeric(n.ERR_YOUREBANNEDCREEP, f"You are banned from this server: {line.reason}")
    client.kill(f"K-Lined: {line.reason}")
    return True


def handle_kline(chat: Chat, client: Client, msg: Message) -> None:
    """KLINE [duration] <mask> [reason] | KLINE LIST."""
    if not is_oper(client):
        raise IrcError(n.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
    params = list(msg.params)
    if params[0].upper() == "LIST":
        send_klines(chat, client)
        return
    expires: float | None = None
    if (match := _DURATION.match(params[0])) is not None and len(params) > 1:
        expires = time.time() + int(match[1]) * _UNIT[match[2]]
        params.pop(0)
    mask = normal_mask(params[0])
    if mask in ("*!*@*", "*!*@", "!*@*"):
        client.send_from_server("FAIL", "KLINE", "INVALID_PARAMS", mask, "That mask would ban everyone")
        return
    reason = " ".join(params[1:]) or "Banned by an operator"
    chat.klines.add(KLine(mask, client.nick, reason, expires))
    log.info("%s K-lined %s (%s)%s", client.nick, mask, reason, "" if expires is None else " for a time")
    until = "until lifted" if expires is None else f"for {int(expires - time.time())} s"
    client.send_from_server("NOTICE", client.nick, f"K-line on {mask} {until}: {reason}")
    for user in chat.hub.users():
        if isinstance(user, Client) and user is not client and matches(mask, user.prefix):
            user.send_numeric(n.ERR_YOUREBANNEDCREEP, f"You are banned from this server: {reason}")
            user.kill(f"K-Lined: {reason}")


def handle_unkline(chat: Chat, client: Client, msg: Message) -> None:
    """UNKLINE <mask>: lift a K-line."""
    if not is_oper(client):
        raise IrcError(n.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
    mask = normal_mask(msg.params[0])
    if chat.klines.remove(mask):
        log.info("%s lifted the K-line on %s", client.nick, mask)
        client.send_from_server("NOTICE", client.nick, f"K-line on {mask} lifted")
    else:
        client.send_from_server("FAIL", "UNKLINE", "NO_SUCH_KLINE", mask, "There is no such K-line")


def send_klines(chat: Chat, client: Client) -> None:
    """216 per K-line (mask, seconds left or 0, setter and reason), then 219."""
    now = time.time()
    for line in chat.klines.current():
        left = "0" if line.expires is None else str(int(line.expires - now))
        client.send_numeric(n.RPL_STATSKLINE, "K", line.mask, left, line.setter, line.reason)
    client.send_numeric(n.RPL_ENDOFSTATS, "K", "End of /STATS report")
