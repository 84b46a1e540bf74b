"""Questions about the server itself: LUSERS, VERSION, TIME, INFO, ADMIN."""

from __future__ import annotations

import time

from ..irc import Message
from ..irc import numerics as n
from .chat import Chat
from .client import Client
from .isupport import send_isupport

VERSION = "0.1.0"
INFO_LINES = (
    "Lobby: a small chat you run yourself.",
    "A threaded TCP server speaking IRC, a web page bridged to it, and a terminal client.",
    "Source, issues and documentation come with the program (README.md).",
)


def send_lusers(chat: Chat, client: Client) -> None:
    """251-255 and 265/266: how many users, connections and rooms (also sent at registration)."""
    # Counters, not a walk over every user: this runs at every registration.
    everyone = chat.hub.user_count()
    local, invisible = chat.local_counts()
    unknown = max(0, chat.connection_count() - local)
    rooms = chat.hub.room_count()
    client.send_numeric(n.RPL_LUSERCLIENT,
                        f"There are {everyone - invisible} users and {invisible} invisible on 1 servers")
    client.send_numeric(n.RPL_LUSEROP, "0", "operator(s) online")
    if unknown:
        client.send_numeric(n.RPL_LUSERUNKNOWN, str(unknown), "unknown connection(s)")
    client.send_numeric(n.RPL_LUSERCHANNELS, str(rooms), "channels formed")
    client.send_numeric(n.RPL_LUSERME, f"I have {local} clients and 1 servers")
    client.send_numeric(n.RPL_LOCALUSERS, str(local), str(local), f"Current local users {local}, max {local}")
    client.send_numeric(n.RPL_GLOBALUSERS, str(everyone), str(everyone),
                        f"Current global users {everyone}, max {everyone}")


def handle_lusers(chat: Chat, client: Client, msg: Message) -> None:
    """LUSERS: the counts again."""
    send_lusers(chat, client)


def _not_us(chat: Chat, client: Client, msg: Message) -> bool:
    """A query naming another server: 402 (Lobby is one server, even with --redis)."""
    target = msg.param(0)
    if target and target.casefold() != chat.config.server_name.casefold() and "*" not in target:
        client.send_numeric(n.ERR_NOSUCHSERVER, target, "No such server")
        return True
    return False


def handle_version(chat: Chat, client: Client, msg: Message) -> None:
    """VERSION: 351, then the ISUPPORT tokens again."""
    if _not_us(chat, client, msg):
        return
    client.send_numeric(n.RPL_VERSION, f"lobby-{VERSION}", chat.config.server_name, "Lobby, a small self-hosted chat")
    send_isupport(chat, client)


def handle_time(chat: Chat, client: Client, msg: Message) -> None:
    """TIME: the server's local time, as a sentence (391)."""
    if _not_us(chat, client, msg):
        return
    now = time.time()
    text = time.strftime("%A %B %d %Y -- %H:%M:%S %z", time.localtime(now))
    client.send_numeric(n.RPL_TIME, chat.config.server_name, str(int(now)), "0", text)


def handle_info(chat: Chat, client: Client, msg: Message) -> None:
    """INFO: a few lines about Lobby (371), then 374."""
    if _not_us(chat, client, msg):
        return
    for line in (*INFO_LINES, f"Version {VERSION}; up since {chat.started_text}."):
        client.send_numeric(n.RPL_INFO, line)
    client.send_numeric(n.RPL_ENDOFINFO, "End of INFO list")


def handle_admin(chat: Chat, client: Client, msg: Message) -> None:
    """ADMIN: who runs this server (256-259), from the configuration."""
    if _not_us(chat, client, msg):
        return
    cfg = chat.config
    client.send_numeric(n.RPL_ADMINME, cfg.server_name, "Administrative info")
    client.send_numeric(n.RPL_ADMINLOC1, cfg.admin_location or f"The {cfg.network} chat")
    client.send_numeric(n.RPL_ADMINLOC2, "Run with Lobby")
    client.send_numeric(n.RPL_ADMINEMAIL, cfg.admin_email or "The person who started this server")
