"""The subscriber thread: other nodes' events from CHANNEL, handed to the Mirror.

A lost subscription means events were missed: the sender is told Redis is down (it
recovers, copying the streams, once Redis is back), and once subscribed again every
node is asked to announce its users (on_resubscribed), so the mirrors agree again.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import redis

from .mirror import Mirror

log = logging.getLogger("lobby.cluster")


class Subscriber:
    """Reads pubsub (subscribed to CHANNEL) and applies other nodes' events (run() is the thread)."""

    def __init__(self, node: str, pubsub: Any, mirror: Mirror, mark_down: Callable[[object], None],
                 on_resubscribed: Callable[[], None], stop: threading.Event) -> None:
        self.node = node
        self._pubsub = pubsub
        self._mirror = mirror
        self._mark_down = mark_down
        self._on_resubscribed = on_resubscribed
        self._stop = stop

    def run(self) -> None:
        """Apply events until the stop is set; an event that fails is logged, not fatal."""
        lost = False
        while not self._stop.is_set():
            try:
                item = self._pubsub.get_message(timeout=0.5)
            except (redis.RedisError, OSError, ValueError) as err:
                if self._stop.is_set():
                    return
                log.warning("lost the Redis subscription: %s; retrying", err)
                self._mark_down(err)
                lost = True
                self._stop.wait(1.0)
                continue
            if lost:
                lost = False
                log.warning("subscribed to Redis again; asking every node for its users")
                self._on_resubscribed()
            if item is None or item.get("type") != "message":
                continue
            try:
                event = json.loads(item["data"])
                if event.get("node") != self.node:
                    self._mirror.apply(event)
            except Exception:
                log.exception("could not apply cluster event %r", item.get("data"))
