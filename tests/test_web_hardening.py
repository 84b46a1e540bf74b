"""Web hardening over real sockets: slow request heads, Host checks, the Server header, control-frame floods.

Each test runs the real chat server and web server on free loopback ports;
make_server's teardown (through the chat_server fixture) checks that no thread is left running.
"""

from __future__ import annotations

import select
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websocket

from backend.node import ChatServer
from bridge import config_for, create_app
from bridge.hosts import allowed_names, host_allowed, host_name
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


# -- Host checks (DNS rebinding) ------------------------------------------------------------


def test_a_foreign_host_name_is_refused_on_every_route_and_the_websocket(
    web: WebServer, chat_server: ChatServer, ws_connect: WsFactory
) -> None:
    port = web.address[1]
    evil = f"evil.example:{port}"
    for path in ("/", "/healthz", "/static/main.js", "/ws"):
        status, _, body = http_get(web.url + path, {"Host": evil})
        assert status == 421, path
        assert b"Misdirected" in body
    # What a rebound page sends: its Origin matches its Host, which once let the upgrade through.
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(ws_url(web), host=evil, origin=f"http://{evil}", timeout=10)
    assert refused.value.status_code == 421
    assert chat_server.sessions() == []
    # Loopback names with any port, and the address we listen on, are ours.
    for host in (f"localhost:{port}", "127.0.0.1", "127.0.0.1:1", f"[::1]:{port}", "LOCALHOST"):
        assert http_get(web.url + "/healthz", {"Host": host})[0] == 200, host
    client = ws_connect(ws_url(web), "viahost", host=f"localhost:{port}", origin=f"http://localhost:{port}")
    assert client.subprotocol == "text.ircv3.net"


def test_configured_hosts_are_answered(chat_server: ChatServer, ws_connect: WsFactory) -> None:
    app = create_app({"TESTING": True, **config_for(chat_server), "LOBBY_ALLOWED_HOSTS": ["chat.example"]})
    site = WebServer(app)
    site.start()
    try:
        named = f"chat.example:{site.address[1]}"
        assert http_get(site.url + "/", {"Host": named})[0] == 200
        assert http_get(site.url + "/", {"Host": "other.example"})[0] == 421
        client = ws_connect(ws_url(site), "named", host=named, origin=f"http://{named}")
        assert client.subprotocol == "text.ircv3.net"
    finally:
        site.stop()


def test_host_rules() -> None:
    assert host_name("Example.COM:80") == "example.com" and host_name("[::1]:8000") == "::1"
    assert host_name("::1") == "::1" and host_name("localhost.") == "localhost"
    for listen in ("127.0.0.1", "0.0.0.0", "::", None):
        assert host_allowed("localhost:1", listen) and host_allowed("127.0.0.2", listen)
        assert host_allowed("[::1]:2", listen) and host_allowed("app.localhost", listen)
        assert not host_allowed("evil.example", listen) and not host_allowed("", listen)
        assert not host_allowed("192.0.2.1", listen)  # TEST-NET: never this machine's
    # Listening on every interface (or a LAN address), the machine's own name and addresses are fine.
    assert host_allowed(socket.gethostname(), "0.0.0.0") and not host_allowed(socket.gethostname(), "127.0.0.1")
    assert host_allowed("192.0.2.1:8000", "192.0.2.1")  # the address we were told to listen on
    assert host_allowed("chat.example", "127.0.0.1", allowed_names(["chat.example:443"]))
    assert host_allowed("chat.example", None, allowed_names([], ["https://chat.example"]))


# -- control and empty frames ---------------------------------------------------------------


def close_frame_arrived(ws: websocket.WebSocket, code: int) -> bool:
    """Whether the server's close frame with code (or the end of the connection) is in our receive buffer."""
    if not select.select([ws.sock], [], [], 0)[0]:
        return False
    try:
        waiting = ws.sock.recv(65536, socket.MSG_PEEK)
    except OSError:
        return True
    return not waiting or code.to_bytes(2, "big") in waiting


def flood(client: Any, kind: str, count: int = 2000) -> None:
    """Send up to count frames that carry no IRC line; stop, as a client would, once the server closes."""
    ws = client.ws
    if kind == "continuation":
        ws.send_frame(websocket.ABNF(fin=0, opcode=websocket.ABNF.OPCODE_TEXT, data="PING :a"))
    for n in range(count):
        if n % 10 == 0:
            if close_frame_arrived(ws, 1008):
                return
            time.sleep(0.005)  # paced, so the relay keeps up and its queue limit is not what trips
        try:
            if kind == "ping":
                ws.ping("are you there")
            elif kind == "empty":
                ws.send_frame(websocket.ABNF(fin=1, opcode=websocket.ABNF.OPCODE_TEXT, data=""))
            else:
                ws.send_frame(websocket.ABNF(fin=0, opcode=websocket.ABNF.OPCODE_CONT, data=""))
        except (OSError, websocket.WebSocketConnectionClosedException):
            return


@pytest.mark.parametrize("kind", ["ping", "empty", "continuation"])
def test_a_flood_of_frames_without_lines_closes_the_websocket(
    ws_client: WsFactory, irc_user: Callable[..., Any], kind: str
) -> None:
    carol = irc_user("carol")
    steady = ws_client("steady")
    flooder = ws_client("flooder")
    carol.expect(r":flooder!\S+ JOIN")
    flood(flooder, kind)
    assert flooder.expect_close() == 1008
    carol.expect(r":flooder!\S+ QUIT")
    # Someone else, pinging now and then as a client library would, is unaffected.
    for n in range(5):
        steady.ws.ping(f"keepalive {n}")
    steady.send("PRIVMSG #lobby :still here")
    carol.expect(r":steady!\S+ PRIVMSG #lobby :still here")
