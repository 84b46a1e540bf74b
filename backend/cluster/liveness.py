"""Heartbeats: this node says it is alive, and notices the nodes that stopped saying so.

Each node refreshes ``alive:<node>`` (which expires after ttl) every heartbeat
seconds and, every check seconds, looks for nodes whose key expired: their nicks and
memberships are freed in Redis (FORGET_NODE, only those still pointing at them) and
their users quit here. A node missing from ``nodes`` is this one taken for dead, or a
Redis that restarted: the sender then recovers before sending anything more.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from .mirror import Mirror
from .scripts import Scripts
from .wire import NODES, PREFIX, alive_key

log = logging.getLogger("lobby.cluster")


@dataclass(frozen=True)
class Timers:
    """How often a node beats, how long a beat lasts, how often it looks for dead nodes (seconds).

    A node is taken for dead between ttl and ttl + check after its last beat; tests shorten them.
    """

    heartbeat: float = 1.0
    ttl: float = 5.0
    check: float = 2.0


class Liveness:
    """This node's heartbeat and the dead-node checks (run() is the thread)."""

    def __init__(self, node: str, client: Callable[[], Any], scripts: Scripts, mirror: Mirror,
                 mark_down: Callable[[object], None], stop: threading.Event, timers: Timers) -> None:
        self.node = node
        self.timers = timers
        self._client = client
        self._scripts = scripts
        self._mirror = mirror
        self._mark_down = mark_down
        self._stop = stop

    def beat(self) -> None:
        """Say this node is alive, for ttl seconds."""
        r = self._client()
        if r is not None:
            r.set(alive_key(self.node), str(time.time()), px=max(1, round(self.timers.ttl * 1000)))

    def run(self) -> None:
        """The heartbeat thread: beat, check this node is still known, now and then look for dead nodes."""
        next_check = time.monotonic() + self.timers.check
        while not self._stop.wait(self.timers.heartbeat):
            try:
                self.beat()
                r = self._client()
                if r is not None and not r.sismember(NODES, self.node):
                    self._mark_down(f"node {self.node} is not known to Redis: Redis restarted, or this node "
                                    "was taken for dead")
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + self.timers.check
                    self.check_nodes()
            except (redis.RedisError, OSError) as err:
                if not self._stop.is_set():
                    self._mark_down(err)
            except Exception:
                log.exception("cluster heartbeat failed")

    def check_nodes(self) -> None:
        """Free the nicks and memberships of nodes whose heartbeat expired; their users quit here."""
        r = self._client()
        if r is None:
            return
        nodes = {x for x in r.smembers(NODES) if x != self.node}
        # Nodes whose users are still mirrored here count too, in case another node forgot them first.
        nodes |= self._mirror.nodes()
        for node in nodes:
            if not r.exists(alive_key(node)):
                count = self._scripts.forget_node(args=[PREFIX, node])
                log.warning("node %s stopped answering; freed %s of its users", node, count)
                self._mirror.node_gone(node, "Server went away")
