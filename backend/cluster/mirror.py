"""Other nodes' users and events, applied to this node's Hub.

The Hub holds a mirror of the users on other nodes (RemoteUser members, whose
deliver() does nothing), so NAMES, WHO, WHOIS, ISON and nick checks read local
state and never wait on Redis. Mirror.apply takes one event from another node (the
JSON of wire.payload, decoded), changes the Hub through its own methods and
delivers the event's envelope to the local members it concerns. Nothing here talks
to Redis: the subscriber thread (subscriber.py) feeds it, and tests can too.
"""

from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ..core.chat import Chat
from ..core.client import Client
from ..core.envelope import Envelope
from ..core.history import Ref
from ..core.hub import Member
from ..core.joinburst import tell_sights
from ..core.modes import parse_changes
from ..core.notify import told_of_change
from ..core.redaction import forget_files, tell
from ..irc import IrcError, Message, fold
from .wire import envelope_of

log = logging.getLogger("lobby.cluster")

# Msgids of other nodes' messages already delivered here: one sent twice (its reply lost, then
# sent again) is delivered once.
SEEN_MAX = 10000


@dataclass(eq=False)
class RemoteUser:
    """A user connected to another node, as the local Hub sees it."""

    nick: str
    user: str
    host: str
    realname: str
    node: str
    away: str | None = None
    # Nothing to queue here: the node that holds this user delivers to it (Member.route).
    route: ClassVar[None] = None

    @property
    def prefix(self) -> str:
        """nick!user@host, as their own node shows it."""
        return f"{self.nick}!{self.user or self.nick}@{self.host}"

    def deliver(self, envelope: Envelope) -> None:
        """Nothing: the node that holds this user delivers to it."""


def _tell(members: list[Member], envelope: Envelope) -> None:
    for member in members:
        member.deliver(envelope)


class Mirror:
    """This node's view of the other nodes' users, kept by applying their events.

    on_sync is called when another node asks every node to announce its users again.
    """

    def __init__(self, chat: Chat, node: str, on_sync: Callable[[], None]) -> None:
        self.chat = chat
        self.hub = chat.hub
        self.node = node
        self._on_sync = on_sync
        self._seen: OrderedDict[str, None] = OrderedDict()  # subscriber thread only

    def apply(self, event: dict[str, Any]) -> None:
        """Apply one event from another node to the local Hub and deliver it to local members."""
        kind = event["type"]
        envelope = envelope_of(event)
        state = _STATE.get(kind)
        if state is not None:
            state(self, event)
            return
        if kind == "redact":
            self._redact(event, envelope)
            return
        said = _SAID.get(kind)
        if said is None or envelope is None:
            return
        if kind in ("room", "private"):
            # Sent again after a reply was lost (see sender.py): deliver it once.
            if envelope.msgid in self._seen:
                return
            self._seen[envelope.msgid] = None
            if len(self._seen) > SEEN_MAX:
                self._seen.popitem(last=False)
        said(self, event, envelope)

    # -- the mirror's users ---------------------------------------------------------

    def remote(self, info: dict[str, str], node: str) -> RemoteUser | None:
        """The mirrored user described by info (added, or updated); None if the nick is taken here."""
        current = self.hub.find(info["nick"])
        if isinstance(current, RemoteUser) and current.node == node:
            current.away = info.get("away") or None
            return current
        if current is not None:
            log.warning("remote user %s on node %s clashes with a user here; ignored", info["nick"], node)
            return None
        member = RemoteUser(info["nick"], info.get("user", ""), info.get("host", ""), info.get("realname", ""), node,
                            info.get("away") or None)
        try:
            self.hub.claim_nick(member, member.nick)
        except IrcError:
            return None
        self.chat.monitors.came(member)
        return member

    def find_remote(self, nick: str, node: str) -> RemoteUser | None:
        """The mirrored user of node with this nick, if any."""
        member = self.hub.find(nick)
        return member if isinstance(member, RemoteUser) and member.node == node else None

    def nodes(self) -> set[str]:
        """The nodes whose users are mirrored here."""
        return {member.node for member in self.hub.users() if isinstance(member, RemoteUser)}

    def node_gone(self, node: str, reason: str) -> None:
        """Every user of a node that left quits for the local members who shared a room with them."""
        for member in self.hub.users():
            if isinstance(member, RemoteUser) and member.node == node:
                _tell(self.hub.remove(member), Envelope(Message("QUIT", (reason,), member.prefix)))
                self.chat.monitors.went(member.nick)

    def apply_roster(self, node: str, roster: dict[str, list[str]]) -> None:
        """A node's full list of users and their rooms: drop what the mirror has in excess."""
        hub = self.hub
        for member in hub.users():
            if not isinstance(member, RemoteUser) or member.node != node:
                continue
            rooms = roster.get(fold(member.nick))
            if rooms is None:
                envelope = Envelope(Message("QUIT", ("Left while the cluster was split",), member.prefix))
                _tell(hub.remove(member), envelope)
                self.chat.monitors.went(member.nick)
                continue
            for room in hub.rooms_of(member):
                if fold(room) not in rooms:
                    with contextlib.suppress(IrcError):
                        name, told = hub.part(member, room)
                        _tell(told, Envelope(Message("PART", (name,), member.prefix)))

    # -- events about state alone -----------------------------------------------------

    def _down(self, event: dict[str, Any]) -> None:
        self.node_gone(event["node"], "Server shut down")

    def _hello(self, event: dict[str, Any]) -> None:
        self.remote(event["user"], event["node"])


    def _sync(self, event: dict[str, Any]) -> None:
        self._on_sync()

    def _roster(self, event: dict[str, Any]) -> None:
        self.apply_roster(event["node"], event["roster"])

    # -- events users see (each with its envelope) --------------------------------------

    def _join(self, event: dict[str, Any], envelope: Envelope) -> None:
        member = self.remote(event["user"], event["node"])
        if member is None:
            return
        try:
            result = self.hub.join(member, event["room"], privileged=True)  # its own node checked
        except IrcError:
            return
        if result is not None:
            _tell(result[1], envelope)

    def _part(self, event: dict[str, Any], envelope: Envelope) -> None:
        member = self.find_remote(event["nick"], event["node"])
        if member is None:
            return
        try:
            _, told = self.hub.part(member, event["room"])
        except IrcError:
            return
        _tell(told, envelope)

    def _quit(self, event: dict[str, Any], envelope: Envelope) -> None:
        member = self.find_remote(event["nick"], event["node"])
        if member is not None:
            _tell(self.hub.remove(member), envelope)
            self.chat.monitors.went(member.nick)

    def _nick(self, event: dict[str, Any], envelope: Envelope) -> None:
        member = self.find_remote(event["nick"], event["node"])
        if member is None:
            return
        try:
            told = self.hub.rename(member, event["new"])
        except IrcError:
            log.warning("remote rename %s -> %s clashes with a local user", event["nick"], event["new"])
            return
        _tell(told, envelope)
        if fold(event["nick"]) != fold(member.nick):
            self.chat.monitors.went(event["nick"])
            self.chat.monitors.came(member)

    def _room(self, event: dict[str, Any], envelope: Envelope) -> None:
        room = event["room"]
        member = self.find_remote((envelope.message.source or "").split("!")[0], event["node"])
        if envelope.message.command == "TOPIC" and member is not None:
            with contextlib.suppress(IrcError):
                self.hub.set_topic(member, room, envelope.message.params[-1], when=envelope.time,
                                   privileged=True)
        self.chat.store(room, envelope)  # stored before anyone here can see it
        if member is not None and (sight := self.hub.reveal(member, room)) is not None:
            tell_sights(self.hub, room, (sight,))  # they were hidden here too (+D): their JOIN first
        _tell(self.hub.members_of(room), envelope)

    def _mode(self, event: dict[str, Any], envelope: Envelope) -> None:
        """Another node's room operator changed modes: the same changes here, unchecked (it checked)."""
        params = envelope.message.params
        changes, _, _ = parse_changes(params[1], list(params[2:])) if len(params) > 1 else ([], [], [])
        setter = self.find_remote((envelope.message.source or "").split("!")[0], event["node"])
        if setter is None or not changes:
            return
        try:
            room, _, _, members, sights = self.hub.change_modes(setter, event["room"], changes, privileged=True)
        except IrcError:
            return
        # Who the change brings into sight here (+D, +u) sees their JOIN before the MODE; out of sight, a PART after.
        tell_sights(self.hub, room, (s for s in sights if s.joined))
        _tell(members, envelope)
        tell_sights(self.hub, room, (s for s in sights if not s.joined))
        self.chat.save_room(room)

    def _kick(self, event: dict[str, Any], envelope: Envelope) -> None:
        """Another node's operator removed someone (from either node) from a room."""
        kicker = self.find_remote((envelope.message.source or "").split("!")[0], event["node"])
        if kicker is None:
            return
        try:
            _, _, told = self.hub.kick(kicker, event["room"], event["target"], privileged=True)
        except IrcError:
            return
        _tell(told, envelope)

    def _away(self, event: dict[str, Any], envelope: Envelope) -> None:
        member = self.find_remote(event["nick"], event["node"])
        if member is not None:
            member.away = event["text"] or None
            _tell(list(told_of_change(self.chat, member, "away-notify")), envelope)

    def _setname(self, event: dict[str, Any], envelope: Envelope) -> None:
        member = self.find_remote(event["nick"], event["node"])
        if member is not None:
            member.realname = event["realname"]
            _tell(list(told_of_change(self.chat, member, "setname")), envelope)

    def _redact(self, event: dict[str, Any], envelope: Envelope | None) -> None:
        """Another node took back kept lines (a REDACT, an unreact): out of this node's copy too, and
        the REDACT told to the members here who see it (for a private message: its other end)."""
        key, msgids = str(event["key"]), [str(m) for m in event.get("msgids", [])]
        if self.chat.history is not None and msgids:
            # The event names no text or author: this node's copy of the message does, and the files it
            # names may be in this node's files directory. (A private message kept on another node only
            # is not here: its files, if any were uploaded here, stay.)
            said = [row for row in self.chat.history.around(key, Ref(msgid=msgids[0]), 1) if row.msgid == msgids[0]]
            self.chat.history.forget(key, msgids)
            if said and envelope is not None:
                forget_files(self.chat, said[0])
        if envelope is None:
            return
        if "to_node" in event:
            target = self.hub.find(event["target"]) if event["to_node"] == self.node else None
            if isinstance(target, Client):
                tell([target], envelope)
            return
        tell(self.hub.members_of(key), envelope)

    def _private(self, event: dict[str, Any], envelope: Envelope) -> None:
        if event.get("to_node") != self.node:
            return
        target = self.hub.find(event["target"])
        if target is not None and not isinstance(target, RemoteUser):
            target.deliver(envelope)


# What each type of event does here. State events first: they need no envelope.
_STATE: dict[str, Callable[[Mirror, dict[str, Any]], None]] = {
    "down": Mirror._down,
    "hello": Mirror._hello,
    "sync": Mirror._sync,
    "roster": Mirror._roster,
}
_SAID: dict[str, Callable[[Mirror, dict[str, Any], Envelope], None]] = {
    "join": Mirror._join,
    "part": Mirror._part,
    "quit": Mirror._quit,
    "nick": Mirror._nick,
    "room": Mirror._room,
    "private": Mirror._private,
    "away": Mirror._away,
    "setname": Mirror._setname,
    "mode": Mirror._mode,
    "kick": Mirror._kick,
}
