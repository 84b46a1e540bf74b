"""The chat as one object: settings, the hub, the history and cluster ports, and the publish seam.

Handlers (core/identity.py, rooms.py, messages.py, ...) get the Chat and the Client
that sent a command. They change state through the Hub, then call publish(): the
one place where an event reaches this node's members and the other nodes. Room
messages and topics are stored first (store before publish), so a user joining
meanwhile either is among those they reach or reads them in the replay.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable
from itertools import repeat
from typing import Any

from .client import Client, Link, SharedUser
from .config import ChatConfig
from .envelope import Envelope
from .events import Event, RoomMessage
from .guard import FailureGuard
from .history import HistoryStore, Stored, conversation_key, kept, kept_tags, kept_text
from .hub import Hub, Member
from .joinburst import JoinBurst
from .monitor import Monitors
from .ports import AccountStore, Attachments, Cluster, NullCluster, RoomStore
from .serverbans import KLines

log = logging.getLogger("lobby.chat")


class Chat:
    """Everything a command handler may reach; no sockets, no threads of its own."""

    def __init__(
        self,
        config: ChatConfig | None = None,
        hub: Hub | None = None,
        history: HistoryStore | None = None,
        cluster: Cluster | None = None,
    ) -> None:
        self.config = config or ChatConfig()
        self.hub = hub or Hub(persistent_rooms=self.config.auto_join, persistent_modes=self.config.auto_join_modes)
        self.history = history
        self.cluster: Cluster = cluster or NullCluster()
        # Where rooms' settings are kept across restarts (store/rooms.py); None keeps them in memory.
        self.rooms_store: RoomStore | None = None
        # Accounts (store/accounts.py); None: no accounts, no SASL.
        self.accounts: AccountStore | None = None
        # Uploaded files (the web app's files directory); None: a deleted message takes no file with it.
        self.attachments: Attachments | None = None
        self.monitors = Monitors(self.hub)
        # JOINs told to rooms' members in batches (core/joinburst.py).
        self.joins = JoinBurst(self.hub)
        # Set by the network layer while it serves (net/server.py): takes the links Chat.publish
        # queued bytes for through their Route, to send them. None: every delivery is a call.
        # (Any: the links are the network layer's own objects, whatever it needs them to be.)
        self.fan_out_ready: Callable[[Collection[Any]], None] | None = None
        # Server-wide bans set by server operators (core/klines.py).
        self.klines = KLines()
        # Wrong passwords per address, to slow guessing down (registration.check_server_password).
        cfg = self.config
        self.guard = FailureGuard(cfg.password_delay, cfg.password_delay_max, cfg.password_quiet)
        self.started = time.time()
        self.started_text = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started))
        # Set while the server shuts down: everyone is told at once, so no QUIT per user.
        self.stopping = False
        self._history_late = False
        self._count_lock = threading.Lock()
        self._connections = 0
        self._registered = 0
        self._invisible = 0

    def client(self, link: Link, host: str) -> Client:
        """A new, unregistered client on this chat, reached through link; gone() when it ends."""
        with self._count_lock:
            self._connections += 1
        return Client(link, host, self.config.server_name)

    def gone(self, client: Client, user_left: bool = True) -> None:
        """A client's connection ended (counted for LUSERS; its MONITOR list forgotten). user_left:
        False for one connection of several of a user (multiclient), who is still here."""
        with self._count_lock:
            self._connections -= 1
            if client.registered and user_left:
                self._registered -= 1
                self._invisible -= "i" in client.modes
        self.monitors.clear(client)

    def count(self, registered: int = 0, invisible: int = 0) -> None:
        """A client registered (+1) or turned invisible (+1) or visible again (-1): for LUSERS."""
        with self._count_lock:
            self._registered += registered
            self._invisible += invisible

    def connection_count(self) -> int:
        """Connections to this node, registered or not."""
        with self._count_lock:
            return self._connections

    def local_counts(self) -> tuple[int, int]:
        """Registered clients of this node, and how many of them are invisible (+i)."""
        with self._count_lock:
            return self._registered, self._invisible

    def publish(self, event: Event, recipients: Iterable[Member] = (), exclude: Member | None = None) -> None:
        """The publish seam: tell the other nodes, then deliver the event's envelope to recipients here.

        The cluster hears first: its sender queues the event in order, so a history read on
        this node that waits for what it queued (cluster/streams.py) never misses it.
        """
        envelope = self._announce(event)
        if envelope is not None:
            _deliver_each(envelope, recipients, exclude)

    def publish_room(self, event: RoomMessage, exclude: Client) -> None:
        """publish() to every member of a room but exclude (the sender), through the room's Audience.

        Once per message said in a room: each group of members who read lines alike has the
        bytes queued by map() (C), and the network layer is handed their links in one call.
        """
        ready = self.fan_out_ready
        if ready is None:
            self.publish(event, self.hub.members_of(event.room), exclude)
            return
        envelope = event.envelope
        self._announce(event)
        audience = self.hub.audience(event.room)
        if audience is None:
            return
        owner = exclude.member
        for group in audience.groups:
            data = envelope.render(group.key)
            if data:
                fan_outs, links = group.but(owner)
                deque(map(list.append, fan_outs, repeat(data)), maxlen=0)
                if links:
                    ready(links)
        if audience.others:
            _deliver_each(envelope, audience.others, exclude)

    def _announce(self, event: Event) -> Envelope | None:
        """Tell the other nodes of event, and have JOINs still on their way to members go first;
        the envelope to deliver here, if it has one."""
        self.cluster.publish(event)
        envelope: Envelope | None = getattr(event, "envelope", None)
        if envelope is not None and self.joins.busy:
            self.joins.drain()
        return envelope

    def store(self, room: str, envelope: Envelope) -> None:
        """Keep a room message or topic change in the history (before it is published); room may
        also be a private conversation's key (store_private)."""
        if self.history is None or not kept(envelope.message):
            return
        # A multiline message is kept line by line, as clients without multiline read it.
        for part in envelope.parts():
            m = part.message
            self.history.add(room, part.msgid, part.time, m.source or "", m.command, kept_text(m), kept_tags(m))

    def store_private(self, sender: Client, target: Member, envelope: Envelope) -> None:
        """Keep a private message when both ends are signed in to accounts (guests' are never kept)."""
        if self.history is None or sender.account is None or not isinstance(target, Client):
            return
        if target.account is None or not kept(envelope.message):
            return
        self.store(conversation_key(sender.account, target.account), envelope)

    def recent(self, client: Client, room: str) -> list[Stored]:
        """A room's last lines for a user who just joined it, less those they already got live.

        None for a client that negotiated draft/chathistory: it asks for what it wants, and a
        replay as well would show every line twice (the intent of ircv3-specifications#437).
        """
        if self.history is None or self.config.history_lines <= 0 or client.has("draft/chathistory"):
            return []
        try:
            rows = self.history.latest(room, self.config.history_lines)
        except TimeoutError:
            # The history can't answer in time (a storm of joins): join without the replay,
            # and say so once per storm rather than with a traceback per join.
            if not self._history_late:
                self._history_late = True
                log.warning("history too busy to replay on join: users join without recent lines for now")
            return []
        self._history_late = False
        live = client.joining
        if live:
            rows = [row for row in rows if row.msgid not in live]
        return rows

    def save_room(self, name: str) -> None:
        """Keep a room's settings (topic, modes, lists) where they outlive a restart, if anywhere."""
        if self.rooms_store is None:
            return
        settings = self.hub.settings(name)
        if settings is not None:
            self.rooms_store.save(settings)

    def check_password(self, given: str | None) -> bool:
        """Whether given matches the server password (constant time)."""
        expected = self.config.password or ""
        return hmac.compare_digest((given or "").encode(), expected.encode())


def _deliver_each(envelope: Envelope, members: Iterable[Member], exclude: Member | None) -> None:
    """Deliver envelope to each member but exclude, the connection that acted (it gets its own
    echo); its user's other connections (multiclient) still get it, as it happened to their user."""
    owner = exclude.member if isinstance(exclude, Client) else exclude
    for member in members:
        if member is not owner:
            member.deliver(envelope)
        elif isinstance(member, SharedUser) and isinstance(exclude, Client):
            member.deliver(envelope, skip=exclude)
