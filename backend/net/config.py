"""What the network layer can be told at start-up, on top of the chat's own settings."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from ..core.config import ChatConfig


@dataclass
class NetConfig(ChatConfig):
    """Listening, limits, timers and TLS; every timer is settable so that tests never sleep through one."""

    host: str = "127.0.0.1"
    port: int = 14900
    sendq_bytes: int = 512 * 1024
    registration_timeout: float = 30.0
    ping_interval: float = 90.0
    ping_timeout: float = 60.0
    # How long a silent new connection waits before it is taken for a person at nc/telnet.
    text_silence: float = 1.0
    # How often an accept thread wakes to see whether the server is stopping; stop() waits up to this long.
    accept_poll: float = 0.5
    # The listen queue; the kernel caps it at net.core.somaxconn (4096 by default since Linux 5.4).
    backlog: int = 4096
    max_clients: int = 4096
    # Flood control: a burst of lines, then a steady rate; further ahead than max_lag: Excess Flood.
    flood: bool = True
    flood_burst: int = 20
    flood_rate: float = 4.0
    flood_max_lag: float = 15.0
    flood_max_backlog: int = 16 * 1024
    # Loopback is exempt: the bridge connects from there and names browsers with WEBIRC.
    max_per_ip: int = 20
    tls_port: int | None = None
    tls_context: ssl.SSLContext | None = None
