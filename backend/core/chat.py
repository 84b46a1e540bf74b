"""The chat as one object: settings, the hub, the history and cluster ports, and the publish seam.

Handlers (core/identity.py, rooms.py, messages.py, ...) get the Chat and the Client
that sent a command. They change state through the Hub, then call publish(): the
one place where an event reaches this node's members and the other nodes. Room
messages and topics are stored first (store before publish), so a user joining
meanwhile either is among those they reach or reads them in the replay.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Iterable

from .client import Client, Link
from .config import ChatConfig
from .envelope import Envelope
from .events import Event
from .guard import FailureGuard
from .history import HistoryStore, Stored
from .hub import Hub, Member
from .monitor import Monitors
from .ports import Cluster, NullCluster

# What history keeps: what was said, and topic changes. TAGMSG (typing, reactions) is relayed only.
STORED = frozenset({"PRIVMSG", "NOTICE", "TOPIC"})


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
        self.hub = hub or Hub(persistent_rooms=self.config.auto_join)
        self.history = history
        self.cluster: Cluster = cluster or NullCluster()
        self.monitors = Monitors(self.hub)
        # Wrong passwords per address, to slow guessing down (registration.check_server_password).
        cfg = self.config
        self.guard = FailureGuard(cfg.password_delay, cfg.password_delay_max, cfg.password_quiet)
        self.started = time.time()
        self.started_text = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started))
        # Set while the server shuts down: everyone is told at once, so no QUIT per user.
        self.stopping = False
        self._count_lock = threading.Lock()
        self._connections = 0

    def client(self, link: Link, host: str) -> Client:
        """A new, unregistered client on this chat, reached through link; gone() when it ends."""
        with self._count_lock:
            self._connections += 1
        return Client(link, host, self.config.server_name)

    def gone(self, client: Client) -> None:
        """A client's connection ended (counted for LUSERS; its MONITOR list forgotten)."""
        with self._count_lock:
            self._connections -= 1
        self.monitors.clear(client)

    def connection_count(self) -> int:
        """Connections to this node, registered or not."""
        with self._count_lock:
            return self._connections

    def publish(self, event: Event, recipients: Iterable[Member] = (), exclude: Member | None = None) -> None:
        """The publish seam: tell the other nodes, then deliver the event's envelope to recipients here.

        The cluster hears first: its sender queues the event in order, so a history read on
        this node that waits for what it queued (cluster/streams.py) never misses it.
        """
        self.cluster.publish(event)
        envelope: Envelope | None = getattr(event, "envelope", None)
        if envelope is None:
            return
        for member in recipients:
            if member is not exclude:
                member.deliver(envelope)

    def store(self, room: str, envelope: Envelope) -> None:
        """Keep a room message or topic change in the history (before it is published)."""
        m = envelope.message
        if self.history is None or m.command not in STORED:
            return
        self.history.add(room, envelope.msgid, envelope.time, m.source or "", m.command, m.params[-1])

    def recent(self, client: Client, room: str) -> list[Stored]:
        """A room's last lines for a user who just joined it, less those they already got live.

        None for a client that negotiated draft/chathistory: it asks for what it wants, and a
        replay as well would show every line twice (the intent of ircv3-specifications#437).
        """
        if self.history is None or self.config.history_lines <= 0 or client.has("draft/chathistory"):
            return []
        rows = self.history.latest(room, self.config.history_lines)
        live = client.joining
        if live:
            rows = [row for row in rows if row.msgid not in live]
        return rows

    def check_password(self, given: str | None) -> bool:
        """Whether given matches the server password (constant time)."""
        expected = self.config.password or ""
        return hmac.compare_digest((given or "").encode(), expected.encode())
