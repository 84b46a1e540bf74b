"""Facts about network addresses that the server, registration and the bridge share."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """Whether host is a loopback address: this machine (IPv4-mapped IPv6 included)."""
    try:
        return ipaddress.ip_address(host).is_loopback or host.startswith("::ffff:127.")
    except ValueError:
        return False
