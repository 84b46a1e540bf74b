"""Web hardening over real sockets: slow request heads, Host checks, the Server header, control-frame floods.

Each test runs the real chat server and web server on free loopback ports;
make_server's teardown (through the chat_server fixture) checks that no thread is left running.
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from backend.server import ChatServer
from bridge import config_for, create_app
from bridge.web import WebServer

pytest_plugins = ["tests.webfixtures"]

WsFactory = Callable[..., Any]  # tests.webfixtures.WsClient factories


def ws_url(web: WebServer) -> str:
    return web.url.replace("http://", "ws://", 1) + "/ws"


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, dict(err.headers), err.read()


@pytest.fixture
def quick_web(chat_server: ChatServer) -> Iterator[WebServer]:
    """The web server with a one-second request-head deadline."""
    server = WebServer(create_app({"TESTING": True, **config_for(chat_server), "LOBBY_HEAD_TIMEOUT": 1.0}))
    server.start()
    yield server
    server.stop()


# -- a slow request head ------------------------------------------------------------------


def trickle_until_closed(address: tuple[str, int], head: bytes, give_up: float = 6.0) -> float:
    """Send head, then one header byte every 0.2 s; return the seconds until the server closed on us."""
    started = time.monotonic()
    with socket.create_connection(address, timeout=10) as conn:
        conn.sendall(head)
        conn.settimeout(0.2)
        while time.monotonic() - started < give_up:
            try:
                if conn.recv(4096) == b"":
                    return time.monotonic() - started
            except TimeoutError:
                pass
            except OSError:
                return time.monotonic() - started
            try:
                conn.send(b"X")
            except OSError:
                return time.monotonic() - started
    raise AssertionError(f"a client trickling its request head was still connected after {give_up} s")


@pytest.mark.parametrize("path", ["/", "/ws"])
def test_a_request_head_sent_a_byte_at_a_time_is_cut_off_at_the_deadline(
    quick_web: WebServer, ws_connect: WsFactory, path: str
) -> None:
    host = f"Host: 127.0.0.1:{quick_web.address[1]}\r\n"
    upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" if path == "/ws" else ""
    head = f"GET {path} HTTP/1.1\r\n{host}{upgrade}X-Slow: ".encode()
    # Each byte comes well within the per-read timeout (20 s): only a total deadline ends this.
    assert 0.8 < trickle_until_closed(quick_web.address, head) < 3.5
    # An honest request, and a WebSocket that stays open past the deadline, are unaffected.
    assert http_get(quick_web.url + "/healthz")[0] == 200
    client = ws_connect(ws_url(quick_web), "patient")
    time.sleep(1.5)
    client.send("PING :still-here")
    client.expect(r"PONG \S+ :?still-here")


# -- the Server header -------------------------------------------------------------------


def test_responses_name_no_server_versions(web: WebServer) -> None:
    for path in ("/", "/healthz", "/static/main.js", "/no-such-page"):
        status, headers, _ = http_get(web.url + path)
        assert status in (200, 404)
        assert headers.get("Server") == "Lobby", (path, headers)
    # werkzeug's own error pages (a request it can't parse) too.
    with socket.create_connection(web.address, timeout=10) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(120)) + b"\r\n")
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 431 ")  # too many headers
    assert b"\r\nServer: Lobby\r\n" in answer
    assert b"Werkzeug" not in answer and b"Python" not in answer
