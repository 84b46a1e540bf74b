"""Shared fixtures: a real chat server on a free loopback port, and raw IRC clients."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from backend.node import ChatServer, ServerConfig
from tests.ircclient import IrcClient, connect

# How often test servers' accept threads look up to see whether they should stop (default 0.5 s).
ACCEPT_POLL = 0.05


def wait_for_threads(baseline: set[threading.Thread], timeout: float = 10.0) -> list[threading.Thread]:
    """Wait until no thread beyond baseline is alive; return any that are left."""
    deadline = time.monotonic() + timeout
    while True:
        extra = [t for t in threading.enumerate() if t not in baseline and t.is_alive()]
        if not extra or time.monotonic() > deadline:
            return extra
        time.sleep(0.05)


@pytest.fixture
def make_server() -> Iterator[Callable[..., ChatServer]]:
    """A factory for started chat servers on port 0; all are stopped and their threads checked."""
    baseline = set(threading.enumerate())
    servers: list[ChatServer] = []
    clients: list[IrcClient] = []

    def factory(**overrides: object) -> ChatServer:
        # accept_poll: stop() waits for the accept thread's next wake-up; a short one makes each
        # test's teardown (and a test's own server restarts) about half a second quicker.
        config = ServerConfig(host="127.0.0.1", port=0, accept_poll=ACCEPT_POLL)
        for key, value in overrides.items():
            setattr(config, key, value)
        server = ChatServer(config)
        server.start()
        servers.append(server)
        return server

    factory.clients = clients  # type: ignore[attr-defined]
    yield factory
    for client in clients:
        client.close()
    for server in servers:
        server.stop()
    leftover = wait_for_threads(baseline)
    assert not leftover, f"threads left running: {leftover}"


@pytest.fixture
def server(make_server: Callable[..., ChatServer]) -> ChatServer:
    """One started chat server with default settings."""
    return make_server()


@pytest.fixture
def client(server: ChatServer, make_server: Callable[..., ChatServer]) -> Callable[..., IrcClient]:
    """A factory for raw clients of the server fixture, registered when given a nick."""

    def factory(nick: str | None = None, caps: str = "") -> IrcClient:
        c = connect(server.address, nick, caps)
        make_server.clients.append(c)  # type: ignore[attr-defined]
        return c

    return factory
