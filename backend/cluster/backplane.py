"""Several Lobby nodes sharing rooms through Redis (`lobby serve --redis redis://HOST:PORT/DB`).

Each node keeps its own connections and its own Hub; the Backplane is the node's
link to the others, the core's Cluster port (claim, release, publish). It owns the
Redis clients and the lifecycle (start, close, crash) and is made of parts, one job
each:

- outbound.py: this node's events as Redis writes, stream entries and payloads;
- sender.py: the queue of those and the thread sending them, held through an outage;
- subscriber.py and mirror.py: other nodes' events, applied to the local Hub;
- registry.py: nick claims, the user and room hashes, the snapshot, announcing again;
- liveness.py: heartbeats and dead-node checks;
- streams.py and backfill.py: the shared room history and this node's copy of it;
- wire.py and scripts.py: key names, the JSON of an event, the Lua scripts.

Redis holds (all keys under PREFIX) the registry's keys (registry.py), ``alive:<node>``
heartbeats (liveness.py), each room's history stream (streams.py) and the one pub/sub
channel ``events`` (wire.py).

Threads: the subscriber, the heartbeat and the sender; all stop in close(). No Redis
call is made while the hub lock is held: the Hub is only touched through its own
methods, before or after talking to Redis.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from typing import Any

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry

from ..core.chat import Chat
from ..core.events import Event
from ..store.sqlite import History
from .backfill import copy_streams, restore_streams
from .liveness import Liveness, Timers
from .mirror import Mirror, RemoteUser
from .outbound import Outbound
from .registry import Registry
from .scripts import Scripts
from .sender import HELD_MAX, Sender
from .streams import StreamHistory
from .subscriber import Subscriber
from .wire import CHANNEL, HISTORY, NODES, PREFIX, alive_key, redact

__all__ = ["CHANNEL", "HELD_MAX", "HISTORY", "PREFIX", "READ_TIMEOUT", "Backplane", "BackplaneError", "RemoteUser",
           "Timers", "redact"]

log = logging.getLogger("lobby.cluster")

# History reads (replay on join, CHATHISTORY) give up on Redis this soon and read the node's own
# copy instead: a user joining never waits long on a Redis that hangs.
READ_TIMEOUT = 2.0


class BackplaneError(Exception):
    """Redis can't be reached or used at start-up."""


class Backplane:
    """This node's link to the others through one Redis server."""

    def __init__(self, url: str, chat: Chat, history: History | None, timers: Timers | None = None) -> None:
        self.url = url
        self.chat = chat
        self.history = history
        self.node = uuid.uuid4().hex[:12]
        self._redis: redis.Redis | None = None
        self._reads: redis.Redis | None = None  # history reads: short timeouts, one retry
        self._pubsub: Any = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.streams: StreamHistory | None = None
        self.scripts = Scripts()
        # HELD_MAX is read here, from this module, so that a test can lower it for the nodes it starts.
        self.sender = Sender(self._recover, lambda: self.scripts.store_sha, self._stop, held_max=HELD_MAX)
        self.mirror = Mirror(chat, self.node, on_sync=self._announce)
        self.registry = Registry(self.node, chat, self.mirror, self.sender, self._client)
        self.outbound = Outbound(self.node, self.sender.submit, self.scripts)
        self.liveness = Liveness(self.node, self._client, self.scripts, self.mirror, self.sender.mark_down,
                                 self._stop, timers or Timers())

    @property
    def _down(self) -> bool:
        """Whether Redis is known to be away (the sender holds events meanwhile)."""
        return self.sender.down

    def _client(self) -> redis.Redis | None:
        """The Redis client while started, else None (then nothing is sent)."""
        return self._redis

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> None:
        """Connect, subscribe, load the other nodes' users and rooms, start the threads.

        Raises BackplaneError when Redis can't be reached.
        """
        try:
            # Two retries (redis-py's default is ten): enough to get past a connection Redis closed, while a
            # Redis that hangs is given up on (and events held) within about 15 s, not a minute.
            r = redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5,
                                     health_check_interval=10, retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2))
            r.ping()
            self._redis = r
            self.sender.client = r
            self.scripts.load(r)
            self.liveness.beat()
            r.sadd(NODES, self.node)
            # Subscribe before reading the snapshot: events in between are applied twice, harmlessly.
            self._pubsub = r.pubsub(ignore_subscribe_messages=True)
            self._pubsub.subscribe(CHANNEL)
            self.registry.load_snapshot(r)
            restore_streams(r, self.scripts.seed, self.history, self.node)
            copy_streams(r, self.history)
        except (redis.RedisError, ValueError, OSError) as err:
            self.close(tell=False)
            raise BackplaneError(f"cannot use Redis at {redact(self.url)}: {err}") from err
        history = self.history
        if history is not None:
            # Replay and CHATHISTORY read the shared streams from now on (this node's copy when they can't).
            self._reads = redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=READ_TIMEOUT,
                                               socket_connect_timeout=READ_TIMEOUT, retry=Retry(NoBackoff(), 1))
            self.streams = StreamHistory(self._reader, HISTORY, history.local, self.sender.mark_down,
                                         self.sender.wait_sent)
            history.shared = self.streams
        subscriber = Subscriber(self.node, self._pubsub, self.mirror, self.sender.mark_down, self._resync, self._stop)
        for target, name in ((subscriber.run, "cluster-sub"), (self.liveness.run, "cluster-beat"),
                             (self.sender.run, "cluster-send")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("node %s joined the cluster at %s", self.node, redact(self.url))

    def close(self, tell: bool = True) -> None:
        """Stop the threads; with tell, send what is held, free this node's nicks and memberships
        and tell the others."""
        self._stop.set()
        self.sender.wake()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(3.0)
        history = self.history
        if history is not None and self.streams is not None and history.shared is self.streams:
            history.shared = None
        r = self._redis
        if tell and r is not None:
            self.sender.send_held_at_close(r, self._prepare_to_store)
            try:
                self.scripts.forget_node(args=[PREFIX, self.node])
                r.delete(alive_key(self.node))
                r.publish(CHANNEL, json.dumps({"node": self.node, "type": "down"}))
            except redis.RedisError as err:
                log.warning("could not tell the cluster this node is leaving: %s", err)
        if self._pubsub is not None:
            with contextlib.suppress(redis.RedisError, OSError):
                self._pubsub.close()
        if r is not None:
            r.close()
        if self._reads is not None:
            self._reads.close()
        self._redis = None
        self.sender.client = None

    def crash(self) -> None:
        """Drop everything without telling Redis, as a killed process would (for tests)."""
        self.close(tell=False)

    # -- the Cluster port ---------------------------------------------------------

    def claim(self, nick: str) -> bool:
        """Claim nick cluster-wide; True if newly claimed here. Raises IrcError 433 if another node has it."""
        return self.registry.claim(nick)

    def release(self, nick: str) -> None:
        """Give up this node's claim on nick."""
        self.outbound.release(nick)

    def publish(self, event: Event) -> None:
        """Tell the other nodes what happened here (queued for the sender thread)."""
        self.outbound.publish(event)

    def wait_sent(self, timeout: float = 1.0) -> None:
        """Wait, at most timeout seconds, until what this node queued so far has reached Redis."""
        self.sender.wait_sent(timeout)

    # -- what the parts ask of each other -------------------------------------------

    def _reader(self) -> redis.Redis | None:
        """The client history reads use, or None while Redis is known to be away (read the local copy)."""
        return None if self.sender.down or self._redis is None else self._reads

    def _recover(self, r: Any) -> None:
        """Redis answers again (sender thread, before sending what is held): put back what it lost,
        announce this node's users and rooms, and copy into the local copy what the others said."""
        self._prepare_to_store(r)
        self.registry.rejoin(r)
        copy_streams(r, self.history)

    def _prepare_to_store(self, r: Any) -> None:
        """What storing room messages needs after Redis restarted: the STORE script and the streams."""
        self.scripts.reload_store(r)
        restore_streams(r, self.scripts.seed, self.history, self.node)

    def _announce(self) -> None:
        """Another node asked for every node's users (its mirror missed events)."""
        self.registry.announce()

    def _resync(self) -> None:
        """Subscribed again after missing events: every node announces its users anew, this one too."""
        self.registry.send_state("sync")
        self.registry.announce()
