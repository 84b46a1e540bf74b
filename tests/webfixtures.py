"""Fixtures for the bridge and page tests: a chat server with WEBIRC, the web server, clients.

Test modules load these with `pytest_plugins = ["tests.webfixtures"]`. Everything
listens on free loopback ports; teardown order (browser pages, then the web
server, then make_server's chat servers and its thread-leak check) follows from
the fixtures' dependencies.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket
from flask import Flask

from backend.irc import Message, parse_line
from backend.node import ChatServer
from bridge import config_for, create_app
from bridge.web import WebServer
from tests.ircclient import IrcClient, connect

# Debian's Chromium; LOBBY_CHROMIUM points elsewhere (Playwright can't download browsers here).
CHROMIUM = os.environ.get("LOBBY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT = 10.0


# -- servers -------------------------------------------------------------------------


@pytest.fixture
def chat_server(make_server: Callable[..., ChatServer]) -> ChatServer:
    """A chat server that trusts the bridge's WEBIRC secret."""
    return make_server(webirc_password=secrets.token_urlsafe(18))


@pytest.fixture
def web_app(chat_server: ChatServer) -> Flask:
    """The bridge app, pointed at chat_server."""
    return create_app({"TESTING": True, **config_for(chat_server)})


@pytest.fixture
def web(web_app: Flask) -> Iterator[WebServer]:
    """The web app served on a free loopback port; stopped (threads and all) after the test."""
    server = WebServer(web_app, "127.0.0.1", 0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def irc_user(chat_server: ChatServer, make_server: Callable[..., ChatServer]) -> Callable[..., IrcClient]:
    """A factory for raw TCP users of chat_server ("terminal users"), closed at teardown."""

    def factory(nick: str | None = None, caps: str = "") -> IrcClient:
        c = connect(chat_server.address, nick, caps)
        make_server.clients.append(c)  # type: ignore[attr-defined]
        return c

    return factory


# -- WebSocket clients ------------------------------------------------------------------


class WsClient:
    """A Python WebSocket client of /ws with IrcClient's expect() style."""

    def __init__(self, ws: websocket.WebSocket) -> None:
        self.ws = ws
        self.frames: list[tuple[int, str | bytes]] = []
        self.seen: list[str] = []

    @property
    def subprotocol(self) -> str | None:
        return self.ws.getsubprotocol()

    def send(self, line: str | bytes) -> None:
        if isinstance(line, bytes):
            self.ws.send_binary(line)
        else:
            self.ws.send(line)

    def recv_frame(self, timeout: float = TIMEOUT) -> tuple[int, str | bytes]:
        """The next data frame (opcode, payload); raises when the connection closes."""
        self.ws.settimeout(timeout)
        opcode, data = self.ws.recv_data()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise websocket.WebSocketConnectionClosedException(close_code(data))
        payload: str | bytes = data.decode("utf-8") if opcode == websocket.ABNF.OPCODE_TEXT else data
        self.frames.append((opcode, payload))
        text = payload if isinstance(payload, str) else payload.decode("utf-8", errors="replace")
        self.seen.append(text)
        return opcode, payload

    def expect(self, pattern: str, timeout: float = TIMEOUT) -> Message:
        """Read frames until one matches pattern; return it parsed."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no frame matching {pattern!r}; last frames: {self.seen[-15:]}")
            try:
                self.recv_frame(remaining)
            except websocket.WebSocketTimeoutException:
                continue
            except websocket.WebSocketConnectionClosedException as closed:
                raise AssertionError(f"closed ({closed}) before a frame matched {pattern!r}; "
                                     f"last frames: {self.seen[-15:]}") from None
            if regex.search(self.seen[-1]):
                return parse_line(self.seen[-1])

    def register(self, nick: str) -> WsClient:
        self.send(f"NICK {nick}")
        self.send(f"USER {nick[:8]} 0 * :{nick} (web)")
        self.expect(r" 001 ")
        self.expect(r" 366 \S+ #lobby ")
        return self

    def expect_close(self, timeout: float = TIMEOUT) -> int | None:
        """Read until the server closes the WebSocket; return the close code (None if it just vanished)."""
        deadline = time.monotonic() + timeout
        self.ws.settimeout(0.5)
        while time.monotonic() < deadline:
            try:
                opcode, data = self.ws.recv_data(control_frame=True)
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketConnectionClosedException, OSError):
                return None
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return close_code(data)
        raise AssertionError("the WebSocket is still open")

    def close(self) -> None:
        """Close politely if still open, and always release the socket."""
        with contextlib.suppress(Exception):
            self.ws.close(timeout=1)
        self.ws.shutdown()  # close() leaves the socket open when the server closed first


def close_code(data: bytes) -> int | None:
    return int.from_bytes(data[:2], "big") if len(data) >= 2 else None


def ws_url(web: WebServer) -> str:
    return web.url.replace("http://", "ws://", 1) + "/ws"


@pytest.fixture
def ws_connect() -> Iterator[Callable[..., WsClient]]:
    """A factory for WebSocket clients of any URL, registered when given a nick; closed at teardown."""
    made: list[WsClient] = []

    def factory(url: str, nick: str | None = None, **options: Any) -> WsClient:
        options.setdefault("subprotocols", ["text.ircv3.net"])
        options.setdefault("timeout", TIMEOUT)
        client = WsClient(websocket.create_connection(url, **options))
        made.append(client)
        if nick:
            client.register(nick)
        return client

    yield factory
    for client in made:
        client.close()


@pytest.fixture
def ws_client(web: WebServer, ws_connect: Callable[..., WsClient]) -> Callable[..., WsClient]:
    """A factory for WebSocket clients of the web fixture's /ws."""

    def factory(nick: str | None = None, **options: Any) -> WsClient:
        return ws_connect(ws_url(web), nick, **options)

    return factory


# -- the browser -----------------------------------------------------------------------


def chromium_missing() -> None:
    """Skip when Chromium isn't installed, except on CI, where that is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing, and browser tests must run on CI (apt-get install chromium)")
    pytest.skip(f"{CHROMIUM} is not installed")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Debian Chromium for the whole session, driven by Playwright."""
    if not Path(CHROMIUM).exists():
        chromium_missing()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser: Any, web: WebServer) -> Iterator[Callable[..., Any]]:
    """A factory for pages of the chat, each in its own context (own localStorage).

    Pages record uncaught errors in page.errors; contexts close before the web
    server stops, so their WebSockets end from the browser's side first. (Don't
    give Playwright a path= to save to: it writes files from executor threads
    that outlive the test and trip make_server's thread-leak check.)
    """
    contexts: list[Any] = []

    def factory(**context_options: Any) -> Any:
        context_options.setdefault("viewport", {"width": 1100, "height": 700})
        context = browser.new_context(**context_options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda err: page.errors.append(str(err)))
        page.goto(web.url)
        return page

    yield factory
    for context in contexts:
        with contextlib.suppress(Exception):
            context.close()
