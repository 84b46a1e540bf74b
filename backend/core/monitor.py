"""MONITOR (IRCv3): users ask to be told when given nicks come online or go offline.

The registry maps each watched nick (folded) to the clients watching it, behind its own
lock; notifications are sent after the lock is released. With extended-monitor, watchers
also hear of a watched user's AWAY and SETNAME as if they shared a room.
"""

from __future__ import annotations

import threading

from ..irc import IrcError, Message, fold, is_valid_nick
from ..irc import numerics as n
from ..irc.caps import MONITOR_MAX
from .client import Client
from .hub import Hub, Member


class Monitors:
    """Who watches which nick."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._lock = threading.Lock()
        self._watchers: dict[str, set[Client]] = {}
        self._watched: dict[Client, dict[str, str]] = {}  # client -> folded nick -> nick as written

    def add(self, client: Client, nicks: list[str]) -> None:
        """MONITOR + nick,...: watch them; answer with who of them is online now."""
        added: list[str] = []
        with self._lock:
            mine = self._watched.setdefault(client, {})
            for nick in nicks:
                key = fold(nick)
                if key in mine:
                    continue
                if len(mine) >= MONITOR_MAX:
                    rest = ",".join(nicks[nicks.index(nick):])
                    client.send_numeric(n.ERR_MONLISTFULL, str(MONITOR_MAX), rest, "Monitor list is full")
                    break
                mine[key] = nick
                self._watchers.setdefault(key, set()).add(client)
                added.append(nick)
        self.status(client, added)

    def remove(self, client: Client, nicks: list[str]) -> None:
        """MONITOR - nick,...: stop watching them."""
        with self._lock:
            mine = self._watched.get(client, {})
            for nick in nicks:
                key = fold(nick)
                if mine.pop(key, None) is not None:
                    self._unwatch(key, client)

    def clear(self, client: Client) -> None:
        """MONITOR C, and a client that leaves: forget its list."""
        with self._lock:
            for key in self._watched.pop(client, {}):
                self._unwatch(key, client)

    def listed(self, client: Client) -> list[str]:
        """The nicks client watches, as they wrote them."""
        with self._lock:
            return list(self._watched.get(client, {}).values())

    def status(self, client: Client, nicks: list[str]) -> None:
        """730 for those of nicks online (with their nick!user@host), 731 for the others."""
        online: list[str] = []
        offline: list[str] = []
        for nick in nicks:
            user = self._hub.find(nick)
            if user is not None:
                online.append(user.prefix)
            else:
                offline.append(nick)
        for numeric, names in ((n.RPL_MONONLINE, online), (n.RPL_MONOFFLINE, offline)):
            for chunk in _chunks(names):
                client.send_numeric(numeric, chunk)

    def watchers(self, nick: str) -> list[Client]:
        """The clients watching nick."""
        with self._lock:
            return list(self._watchers.get(fold(nick), ()))

    def came(self, user: Member) -> None:
        """user is online (registered, or renamed to this nick): tell who watches it."""
        for watcher in self.watchers(user.nick):
            if watcher is not user:
                watcher.send_numeric(n.RPL_MONONLINE, user.prefix)

    def went(self, nick: str) -> None:
        """nick is offline (quit, or renamed away from it): tell who watches it."""
        for watcher in self.watchers(nick):
            watcher.send_numeric(n.RPL_MONOFFLINE, nick)

    def extended(self, user: Member, cap: str) -> list[Client]:
        """extended-monitor: the watchers of user told of its changes that need cap (away-notify, setname)."""
        return [w for w in self.watchers(user.nick) if "extended-monitor" in w.caps and cap in w.caps]

    def _unwatch(self, key: str, client: Client) -> None:
        watchers = self._watchers.get(key)
        if watchers is not None:
            watchers.discard(client)
            if not watchers:
                del self._watchers[key]


def _chunks(names: list[str], size: int = 400) -> list[str]:
    """Comma-joined nicks in pieces that fit a line."""
    out: list[str] = []
    current: list[str] = []
    length = 0
    for name in names:
        if current and length + len(name) + 1 > size:
            out.append(",".join(current))
            current, length = [], 0
        current.append(name)
        length += len(name) + 1
    if current:
        out.append(",".join(current))
    return out


def handle_monitor(monitors: Monitors, client: Client, msg: Message) -> None:
    """MONITOR +|-|C|L|S [targets]."""
    sub = msg.params[0]
    targets = [t for t in msg.param(1).split(",") if t]
    if sub == "+":
        nicks = [t for t in targets if is_valid_nick(t)]
        if not nicks and not targets:
            raise IrcError(n.ERR_NEEDMOREPARAMS, "MONITOR", "Not enough parameters")
        monitors.add(client, nicks)
    elif sub == "-":
        monitors.remove(client, targets)
    elif sub.upper() == "C":
        monitors.clear(client)
    elif sub.upper() == "L":
        for chunk in _chunks(monitors.listed(client)):
            client.send_numeric(n.RPL_MONLIST, chunk)
        client.send_numeric(n.RPL_ENDOFMONLIST, "End of MONITOR list")
    elif sub.upper() == "S":
        monitors.status(client, monitors.listed(client))
    else:
        raise IrcError(n.ERR_UNKNOWNCOMMAND, "MONITOR", "Unknown MONITOR subcommand")
