"""Which Host headers the web app answers: a defence against DNS rebinding.

A page on evil.example can make its own name resolve to 127.0.0.1 (or a LAN
address) and then talk to Lobby with `Host: evil.example`; its Origin matches
that Host, so an Origin check alone lets the WebSocket through. So every request
must name a host that the server is really reachable as:

- loopback: `localhost` (and `*.localhost`), `127.0.0.0/8`, `::1`;
- the address the web server listens on;
- when it listens on every interface or on a non-loopback address: this
  machine's own addresses (an IP literal we can bind to) and its host name;
- the names in LOBBY_ALLOWED_HOSTS (app config, or the environment variable of
  that name, comma-separated), and the hosts of LOBBY_ALLOWED_ORIGINS.

Any port is fine. Behind a reverse proxy (LOBBY_TRUSTED_PROXIES > 0) the proxy
picks the names it serves, so with no LOBBY_ALLOWED_HOSTS the check is left to
it. No sockets to clients here: only names and a bind() test.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

WILDCARDS = ("", "0.0.0.0", "::")


def host_name(host: str) -> str:
    """The name or address in a Host header, lower case, without port or brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def is_loopback_name(name: str) -> bool:
    """localhost, *.localhost, or a loopback address."""
    if name == "localhost" or name.endswith(".localhost"):
        return True
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(name).is_loopback
    return False


@functools.lru_cache(maxsize=256)
def is_own_address(name: str) -> bool:
    """Whether name is an IP address of this machine: only those can be bound to."""
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if address.is_unspecified or address.is_multicast:
        return False
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((name, 0))
    except OSError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def own_names() -> frozenset[str]:
    """This machine's host name, with and without .local (mDNS)."""
    name = socket.gethostname().lower()
    return frozenset({name, name.split(".", 1)[0], name.split(".", 1)[0] + ".local"})


def allowed_names(hosts: Iterable[str], origins: Iterable[str] = ()) -> frozenset[str]:
    """The configured host names, from LOBBY_ALLOWED_HOSTS entries and trusted origins."""
    names = {host_name(host) for host in hosts if host.strip()}
    names |= {host_name(urlsplit(origin).netloc) for origin in origins if urlsplit(origin).netloc}
    return frozenset(names)


def host_allowed(host: str, listen_host: str | None, allowed: frozenset[str] = frozenset()) -> bool:
    """Whether a request naming host should be answered by a server listening on listen_host."""
    name = host_name(host)
    if not name:
        return False
    if is_loopback_name(name) or name in allowed:
        return True
    if listen_host is None:
        return False
    listen = host_name(listen_host)
    if name == listen:
        return True
    if listen in WILDCARDS or not is_loopback_name(listen):
        return name in own_names() or is_own_address(name)
    return False
