"""Questions about users: WHO (with masks and WHOX), WHOIS, USERHOST, ISON, MONITOR, and the MOTD again."""

from __future__ import annotations

import time

from ..irc import IrcError, Message
from ..irc import numerics as n
from .chat import Chat
from .client import Client
from .hub import Member
from .masks import matches
from .messages import MAX_TARGETS
from .monitor import handle_monitor
from .registration import send_motd

# WHOX fields in the order the reply carries them (ircv3 whox / Modern's RPL_WHOSPCRPL).
WHOX_ORDER = "tcuihsnfdlaor"


def handle_who(chat: Chat, client: Client, msg: Message) -> None:
    """WHO <#room|mask> [%fields[,token]]: a 352 (or WHOX 354) line per matching user, then 315."""
    mask = msg.params[0]
    whox = msg.param(1)
    fields, _, token = whox[1:].partition(",") if whox.startswith("%") else ("", "", "")
    hub = chat.hub
    rows: list[tuple[Member, str]] = []  # (user, their status prefix in the room)
    if mask.startswith("#"):
        view = hub.room(mask, client)  # as the asker sees it: +D and +u hide some members
        channel = view.name if view else mask
        if view is not None and (not view.secret or view.has(client)):
            rows = list(zip(view.members, view.status, strict=True))
    else:
        channel = "*"
        rows = [(u, "") for u in hub.users() if _visible(chat, client, u) and _who_matches(mask, u)]
    for user, status in rows:
        if fields:
            client.send_numeric(n.RPL_WHOSPCRPL, *_whox_fields(chat, user, channel, fields, token, status))
        else:
            client.send_numeric(
                n.RPL_WHOREPLY, channel, user.user or user.nick, user.host or chat.config.server_name,
                chat.config.server_name, user.nick, _flags(user, status, client.has("multi-prefix")),
                f"0 {user.realname}",
            )
    client.send_numeric(n.RPL_ENDOFWHO, mask, "End of /WHO list")


def _visible(chat: Chat, asker: Client, user: Member) -> bool:
    """An invisible (+i) user shows in WHO masks only to those who share a room with them."""
    if user is asker.member or not isinstance(user, Client) or "i" not in user.modes:
        return True
    return user in chat.hub.peers(asker)


def _who_matches(mask: str, user: Member) -> bool:
    if mask in ("*", "0"):
        return True
    return any(matches(mask, value) for value in (user.nick, user.prefix, user.host, user.realname))


def _flags(user: Member, status: str = "", multi_prefix: bool = False) -> str:
    """H here or G gone (away), * server operator, @ or + in the room, B a bot."""
    flags = "G" if user.away else "H"
    if isinstance(user, Client) and "o" in user.modes:
        flags += "*"
    flags += status if multi_prefix else status[:1]
    if isinstance(user, Client) and "B" in user.modes:
        flags += "B"
    return flags


def _whox_fields(chat: Chat, user: Member, channel: str, fields: str, token: str, status: str) -> list[str]:
    values = {
        "t": token or "0",
        "c": channel,
        "u": user.user or user.nick,
        "i": "255.255.255.255",  # never told: addresses are not shown to other users
        "h": user.host or chat.config.server_name,
        "s": chat.config.server_name,
        "n": user.nick,
        "f": _flags(user, status),
        "d": "0",
        "l": str(_idle(user)),
        "a": (user.account if isinstance(user, Client) else None) or "0",
        "o": "n/a",
        "r": user.realname,
    }
    return [values[f] for f in WHOX_ORDER if f in fields]


def _idle(user: Member) -> int:
    spoke = user.last_spoke if isinstance(user, Client) else time.monotonic()
    return max(0, int(time.monotonic() - spoke))


def handle_whois(chat: Chat, client: Client, msg: Message) -> None:
    """WHOIS [server] <nick>{,<nick>}: who each user is; 401 for one not online, then 318 always."""
    nicks = [x for x in msg.params[-1].split(",") if x]
    if len(nicks) > MAX_TARGETS:
        raise IrcError(n.ERR_TOOMANYTARGETS, msg.params[-1], f"Too many targets (at most {MAX_TARGETS})")
    for nick in nicks:
        user = chat.hub.find(nick)
        if user is None:
            client.send_numeric(n.ERR_NOSUCHNICK, nick, "No such nick")
            client.send_numeric(n.RPL_ENDOFWHOIS, nick, "End of /WHOIS list")
            continue
        _whois(chat, client, user)


def _whois(chat: Chat, client: Client, user: Member) -> None:
    cfg = chat.config
    client.send_numeric(n.RPL_WHOISUSER, user.nick, user.user or user.nick, user.host, "*", user.realname)
    shown = []
    for name in chat.hub.rooms_of(user):
        view = chat.hub.room(name, client)
        if view is None or (view.secret and not view.has(client)):
            continue  # a secret room is told only to those in it
        status = next((s for m, s in zip(view.members, view.status, strict=True) if m is user), None)
        if status is None:
            continue  # user is hidden from the asker there (+D, +u)
        shown.append(status[:1] + view.name)
    if shown:
        client.send_numeric(n.RPL_WHOISCHANNELS, user.nick, " ".join(shown))
    client.send_numeric(n.RPL_WHOISSERVER, user.nick, cfg.server_name, cfg.network)
    if isinstance(user, Client):
        if user.account is not None:
            client.send_numeric(n.RPL_WHOISACCOUNT, user.nick, user.account, "is logged in as")
        if "o" in user.modes:
            client.send_numeric(n.RPL_WHOISOPERATOR, user.nick, "is an IRC operator")
        if "B" in user.modes:
            client.send_numeric(n.RPL_WHOISBOT, user.nick, f"is a bot on {cfg.network}")
        if user.secure:
            client.send_numeric(n.RPL_WHOISSECURE, user.nick, "is using a secure connection")
        if user is client.member:
            client.send_numeric(n.RPL_WHOISHOST, user.nick, f"is connecting from {user.prefix} {user.host}")
        client.send_numeric(n.RPL_WHOISIDLE, user.nick, str(_idle(user)), str(int(user.connected_at)),
                            "seconds idle, signon time")
    if user.away:
        client.send_numeric(n.RPL_AWAY, user.nick, user.away)
    client.send_numeric(n.RPL_ENDOFWHOIS, user.nick, "End of /WHOIS list")


def handle_userhost(chat: Chat, client: Client, msg: Message) -> None:
    """USERHOST <nick>{ <nick>} (at most 5): nick=+user@host, with - for an away user."""
    replies = []
    for nick in " ".join(msg.params).split()[:5]:
        user = chat.hub.find(nick)
        if user is not None:
            replies.append(f"{user.nick}={'-' if user.away else '+'}{user.user or user.nick}@{user.host}")
    client.send_numeric(n.RPL_USERHOST, " ".join(replies))


def handle_ison(chat: Chat, client: Client, msg: Message) -> None:
    """ISON <nick>...: which of these nicks are online."""
    hub = chat.hub
    online = [u.nick for nick in " ".join(msg.params).split() if (u := hub.find(nick))]
    client.send_numeric(n.RPL_ISON, " ".join(online))


def handle_monitor_command(chat: Chat, client: Client, msg: Message) -> None:
    """MONITOR +|-|C|L|S [nick,...]: be told when nicks come and go (core/monitor.py)."""
    handle_monitor(chat.monitors, client, msg)


def handle_motd(chat: Chat, client: Client, msg: Message) -> None:
    """MOTD: the message of the day again."""
    send_motd(chat, client)
