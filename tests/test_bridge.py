"""The web bridge over real sockets: /ws as a Python WebSocket client sees it, the page's headers, /healthz.

Every test runs a real chat server (make_server) and the real web server on free
loopback ports; make_server's teardown checks that no thread is left running.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import websocket

from backend.irc import parse_line
from backend.node import ChatServer
from bridge import CONTENT_SECURITY_POLICY, DEFAULTS, chat_address_for, config_for, create_app
from bridge.relay import MAX_PENDING_FRAMES, Relay, is_webirc, origin_allowed, split_frame, webirc_line
from bridge.web import WebServer
from tests.ircclient import IrcClient, wait_until

pytest_plugins = ["tests.webfixtures"]

WsFactory = Callable[..., Any]  # tests.webfixtures.WsClient factories
IrcFactory = Callable[..., IrcClient]


def session_of(server: ChatServer, nick: str):  # type: ignore[no-untyped-def]
    """The server's Session for nick."""
    for session in server.sessions():
        if session.nick == nick:
            return session
    raise AssertionError(f"no session for {nick}; sessions: {server.sessions()}")


def ws_url(web: WebServer) -> str:
    return web.url.replace("http://", "ws://", 1) + "/ws"


def http_get(url: str) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, dict(response.headers), response.read()


# -- the WebSocket transport -------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "chosen", "opcode"),
    [
        (["text.ircv3.net", "binary.ircv3.net"], "text.ircv3.net", websocket.ABNF.OPCODE_TEXT),
        (["binary.ircv3.net", "text.ircv3.net"], "binary.ircv3.net", websocket.ABNF.OPCODE_BINARY),
        (["x-unknown", "binary.ircv3.net"], "binary.ircv3.net", websocket.ABNF.OPCODE_BINARY),
        (None, None, websocket.ABNF.OPCODE_TEXT),
    ],
)
def test_subprotocol_is_the_clients_first_choice_and_sets_the_frame_type(
    ws_client: WsFactory, offered: list[str] | None, chosen: str | None, opcode: int
) -> None:
    client = ws_client(subprotocols=offered)
    assert client.subprotocol == chosen
    client.send("NICK sub" if opcode == websocket.ABNF.OPCODE_TEXT else b"NICK sub")
    client.send("USER sub 0 * :Sub")
    client.expect(r" 001 sub ")
    assert {op for op, _ in client.frames} == {opcode}


def test_registration_through_the_bridge_joins_the_default_room(
    ws_client: WsFactory, irc_user: IrcFactory
) -> None:
    carol = irc_user("carol")
    web_user = ws_client()
    web_user.send("CAP LS 302")
    web_user.send("CAP REQ :server-time message-tags echo-message")
    web_user.send("NICK wanda")
    web_user.send("USER wanda 0 * :Wanda")
    web_user.expect(r" CAP \S+ ACK ")
    web_user.send("CAP END")
    welcome = web_user.expect(r" 001 ")
    assert welcome.params[0] == "wanda"
    joined = web_user.expect(r" JOIN #lobby")
    assert joined.source and joined.source.startswith("wanda!")
    names = web_user.expect(r" 353 ")
    assert set(names.params[-1].split()) == {"carol", "wanda"}
    carol.expect(r":wanda!\S+ JOIN #lobby")
    carol.send("PRIVMSG #lobby :hello wanda")
    message = web_user.expect(r"PRIVMSG #lobby")
    assert message.params == ("#lobby", "hello wanda")
    assert "time" in message.tags and "msgid" in message.tags
    web_user.send("PRIVMSG #lobby :hi carol")
    assert carol.expect(r"PRIVMSG #lobby").params == ("#lobby", "hi carol")
    assert web_user.expect(r"PRIVMSG #lobby :hi carol").source.startswith("wanda!")  # echo-message


def test_one_irc_line_per_frame_without_line_endings(ws_client: WsFactory, irc_user: IrcFactory) -> None:
    carol = irc_user("carol")
    web_user = ws_client("wendy")
    # Two lines in one TCP segment from the server still become two frames.
    carol.send("PRIVMSG #lobby :one\r\nPRIVMSG #lobby :two")
    web_user.expect(r":two$")
    for _, payload in web_user.frames:
        assert isinstance(payload, str)
        assert "\r" not in payload and "\n" not in payload
        parse_line(payload)  # each frame is one whole message
    ones = [p for _, p in web_user.frames if str(p).endswith(":one")]
    assert len(ones) == 1
    # From the browser, a trailing CRLF is tolerated and does not leak into the text.
    web_user.send("PRIVMSG #lobby :three\r\n")
    assert carol.expect(r"PRIVMSG #lobby").params == ("#lobby", "three")


def test_a_cross_origin_handshake_is_refused_before_any_relay(
    web: WebServer, chat_server: ChatServer, ws_client: WsFactory
) -> None:
    for origin in ("http://evil.example", "null", "https://" + web.url.removeprefix("http://")):
        with pytest.raises(websocket.WebSocketBadStatusException) as refused:
            websocket.create_connection(ws_url(web), origin=origin, timeout=10)
        assert refused.value.status_code == 403
    assert chat_server.sessions() == []  # no TCP connection was made for them
    # The page's own origin is welcome, as is a client that sends no Origin at all.
    assert ws_client("same", origin=web.url).subprotocol == "text.ircv3.net"
    assert ws_client("noorigin", suppress_origin=True).subprotocol == "text.ircv3.net"


FORWARDED = ["X-Forwarded-Proto: https", "X-Forwarded-Host: chat.example", "X-Forwarded-For: 203.0.113.7"]


@pytest.mark.parametrize("proxies", [0, 1])
def test_behind_an_https_proxy_the_forwarded_origin_is_ours_only_when_the_proxy_is_trusted(
    proxies: int, make_server: Callable[..., ChatServer], ws_connect: WsFactory
) -> None:
    """What nginx sends for https://chat.example: accepted with --trusted-proxies 1, refused with 0."""
    chat = make_server(webirc_password="bridge-secret")
    site = WebServer(create_app({"TESTING": True, **config_for(chat), "LOBBY_TRUSTED_PROXIES": proxies}))
    site.start()
    try:
        if proxies:
            client = ws_connect(ws_url(site), "proxied", origin="https://chat.example", header=FORWARDED)
            assert client.subprotocol == "text.ircv3.net"
            # The browser's own address (X-Forwarded-For) is what WEBIRC tells the server.
            assert session_of(chat, "proxied").host == "203.0.113.7"
        else:
            # Without trust those headers could be anyone's: the Origin is not the page's own.
            with pytest.raises(websocket.WebSocketBadStatusException) as refused:
                websocket.create_connection(ws_url(site), origin="https://chat.example", header=FORWARDED,
                                            timeout=10)
            assert refused.value.status_code == 403
            assert chat.sessions() == []
    finally:
        site.stop()


def test_an_oversized_frame_closes_the_connection(
    ws_client: WsFactory, irc_user: IrcFactory, chat_server: ChatServer
) -> None:
    carol = irc_user("carol")
    big = ws_client("big")
    carol.expect(r":big!\S+ JOIN")
    big.send("PRIVMSG #lobby :" + "x" * 9000)
    assert big.expect_close() == 1009
    carol.expect(r":big!\S+ QUIT")
    carol.assert_silent(r"x{100}")

    # 3,000 characters but 9,000 bytes: the limit is in bytes.
    wide = ws_client("wide")
    carol.expect(r":wide!\S+ JOIN")
    wide.send("PRIVMSG #lobby :" + "€" * 3000)
    assert wide.expect_close() == 1009
    carol.expect(r":wide!\S+ QUIT")

    # Under the limit the frame is relayed; the server answers an overlong IRC line itself.
    fine = ws_client("fine")
    fine.send("PRIVMSG #lobby :" + "y" * 8000)
    fine.expect(r" 417 ")
    fine.send("PING :still-here")
    fine.expect(r"PONG \S+ :?still-here")


def test_the_browsers_address_reaches_the_server_through_webirc(
    web: WebServer, chat_server: ChatServer, irc_user: IrcFactory, ws_client: WsFactory
) -> None:
    # Connect from 127.0.0.2 (still loopback on Linux): the bridge itself dials from 127.0.0.1.
    raw = socket.create_connection(web.address, timeout=10, source_address=("127.0.0.2", 0))
    try:
        client = ws_client("remote", socket=raw)
        session = session_of(chat_server, "remote")
        assert session.host == "127.0.0.2"
        assert session.gateway == "lobby-web"
        carol = irc_user("carol")
        carol.send("WHOIS remote")
        assert carol.expect(r" 311 ").params[3] == "127.0.0.2"
        carol.send("WHO #lobby")
        who = [line for line in carol.lines_until(r" 315 ") if " 352 " in line]
        assert any(" 127.0.0.2 " in line and " remote " in line for line in who)
        assert client.expect(r"JOIN #lobby").source == "carol!carol@127.0.0.1"
    finally:
        raw.close()


def test_a_browser_cannot_send_its_own_webirc(ws_client: WsFactory, chat_server: ChatServer) -> None:
    sneaky = ws_client()
    sneaky.send("WEBIRC guess lobby-web 203.0.113.9 203.0.113.9")
    sneaky.send("NICK sneaky")
    sneaky.send("USER sneaky 0 * :Sneaky")
    sneaky.expect(r" 001 ")
    assert session_of(chat_server, "sneaky").host == "127.0.0.1"


def test_closing_the_websocket_is_a_quit_at_once(ws_client: WsFactory, irc_user: IrcFactory) -> None:
    carol = irc_user("carol")
    tab = ws_client("tab")
    carol.expect(r":tab!\S+ JOIN #lobby")
    tab.close()
    quit_line = carol.expect(r":tab!\S+ QUIT", timeout=5)
    assert quit_line.params[0]

    # A tab that vanishes without a close frame (a crash, a dropped network) too.
    crash = ws_client("crash")
    carol.expect(r":crash!\S+ JOIN #lobby")
    crash.ws.sock.shutdown(socket.SHUT_RDWR)
    carol.expect(r":crash!\S+ QUIT", timeout=5)


def test_the_server_closing_closes_the_websocket(
    ws_client: WsFactory, chat_server: ChatServer
) -> None:
    web_user = ws_client("leaver")
    web_user.send("QUIT :bye")
    web_user.expect(r"^ERROR ")
    assert web_user.expect_close() == 1000
    wait_until(lambda: chat_server.sessions() == [])


def test_a_websocket_is_closed_with_try_again_later_while_the_chat_server_is_down(
    ws_client: WsFactory, chat_server: ChatServer
) -> None:
    chat_server.stop()
    assert ws_client().expect_close() == 1013


def test_idle_websockets_are_pinged(chat_server: ChatServer, ws_connect: WsFactory) -> None:
    assert DEFAULTS["SOCK_SERVER_OPTIONS"]["ping_interval"] == 25  # what proxies see in production
    fast = {**DEFAULTS["SOCK_SERVER_OPTIONS"], "ping_interval": 0.2}
    server = WebServer(create_app({**config_for(chat_server), "SOCK_SERVER_OPTIONS": fast}), "127.0.0.1", 0)
    server.start()
    try:
        client = ws_connect(ws_url(server))
        client.ws.settimeout(10)
        opcode, _ = client.ws.recv_data(control_frame=True)  # websocket-client answers with a pong
        assert opcode == websocket.ABNF.OPCODE_PING
        client.register("pinged")  # and the relay carries on
        client.close()
    finally:
        server.stop()


def test_healthz_reports_users_and_rooms(web: WebServer, irc_user: IrcFactory, ws_client: WsFactory) -> None:
    status, headers, body = http_get(web.url + "/healthz")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"status": "ok", "users": 0, "rooms": 0}
    carol = irc_user("carol")
    ws_client("webby")
    carol.send("JOIN #side")
    carol.expect(r"JOIN #side")
    _, _, body = http_get(web.url + "/healthz")
    assert json.loads(body) == {"status": "ok", "users": 2, "rooms": 2}


def test_web_server_stop_ends_relays_and_threads(
    web_app, chat_server: ChatServer, irc_user: IrcFactory, ws_connect: WsFactory  # type: ignore[no-untyped-def]
) -> None:
    before = set(threading.enumerate())
    server = WebServer(web_app, "127.0.0.1", 0)
    server.start()
    carol = irc_user("carol")
    client = ws_connect(ws_url(server), "stopper")
    carol.expect(r":stopper!\S+ JOIN")
    idle = socket.create_connection(server.address, timeout=10)  # never sends a request
    try:
        server.stop()
        assert client.expect_close() in (1001, None)
        carol.expect(r":stopper!\S+ QUIT")
        with contextlib.suppress(ConnectionResetError):
            assert idle.recv(1) == b""  # cut: an end of file, or a reset
        left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        assert not [t for t in left if t.name.startswith(("web-", "relay-"))]
        with pytest.raises(OSError):
            socket.create_connection(server.address, timeout=2).close()
    finally:
        idle.close()


# -- the page's HTTP side ---------------------------------------------------------------


class _Audit(HTMLParser):
    """Collects what a strict CSP would refuse: inline scripts, style attributes, handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.ids: set[str] = set()
        self.in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        if names.get("id"):
            self.ids.add(str(names["id"]))
        if tag == "script" and not names.get("src"):
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("inline <style>")
        for name, _ in attrs:
            if name == "style" or name.startswith("on"):
                self.problems.append(f"{tag} {name}=")


def test_the_page_has_a_strict_csp_and_no_inline_code(web: WebServer) -> None:
    status, headers, body = http_get(web.url + "/")
    assert status == 200
    csp = headers["Content-Security-Policy"]
    assert csp == CONTENT_SECURITY_POLICY
    for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "base-uri 'none'",
                      "frame-ancestors 'none'"):
        assert directive in csp
    assert "unsafe" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    audit = _Audit()
    audit.feed(body.decode())
    assert audit.problems == []
    assert {"name", "message", "messages", "users"} <= audit.ids
    for asset in ("main.js", "irc.js", "style.css"):
        status, headers, _ = http_get(f"{web.url}/static/{asset}")
        assert status == 200 and headers["X-Content-Type-Options"] == "nosniff"
    assert "javascript" in http_get(f"{web.url}/static/main.js")[1]["Content-Type"]


def test_page_scripts_never_write_html() -> None:
    static = Path(__file__).resolve().parent.parent / "web" / "static"
    sinks = re.compile(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function")
    for script in static.glob("*.js"):
        assert not sinks.search(script.read_text()), script.name


# -- the relay's pieces, without sockets to a browser -------------------------------------


class FakeWs:
    """Just enough of simple_websocket.Server for a Relay: frames in, frames out."""

    def __init__(self, incoming: list[str | bytes]) -> None:
        self.incoming = list(incoming)
        self.sent: list[str | bytes] = []
        self.closed: tuple[int | None, str | None] | None = None
        self.got_all = threading.Event()
        self.input_buffer: list[str | bytes] = []

    def receive(self, timeout: float | None = None) -> str | bytes | None:
        if self.incoming:
            return self.incoming.pop(0)
        self.got_all.set()
        if self.closed:
            from simple_websocket import ConnectionClosed

            raise ConnectionClosed()
        time.sleep(min(timeout or 0.05, 0.05))
        return None

    def send(self, data: str | bytes) -> None:
        self.sent.append(data)

    def close(self, reason: int | None = None, message: str | None = None) -> None:
        self.closed = (reason, message)


def test_relay_replaces_invalid_utf8_in_text_frames_and_keeps_bytes_in_binary() -> None:
    for binary in (False, True):
        ours, theirs = socket.socketpair()
        ws = FakeWs(["PRIVMSG #a :from the browser"])
        relay = Relay(ws, ours, binary=binary)
        worker = threading.Thread(target=relay.run)
        worker.start()
        assert ws.got_all.wait(5)
        theirs.sendall(b":x!x@h PRIVMSG #a :caf\xc3\xa9 \xff\xfe ok\r\n")
        theirs.settimeout(5)
        assert theirs.recv(100) == b"PRIVMSG #a :from the browser\r\n"
        theirs.close()  # the server side ends: the relay closes the WebSocket
        worker.join(5)
        assert not worker.is_alive()
        if binary:
            assert ws.sent == [b":x!x@h PRIVMSG #a :caf\xc3\xa9 \xff\xfe ok"]
        else:
            assert ws.sent == [":x!x@h PRIVMSG #a :café \ufffd\ufffd ok"]
        assert ws.closed is not None and ws.closed[0] == 1000


def test_relay_cuts_off_a_browser_that_floods_faster_than_it_is_relayed() -> None:
    ours, theirs = socket.socketpair()
    ws = FakeWs(["PRIVMSG #a :x"])
    ws.input_buffer = ["PRIVMSG #a :more"] * (MAX_PENDING_FRAMES + 1)  # what simple-websocket holds back
    relay = Relay(ws, ours, binary=False)
    worker = threading.Thread(target=relay.run)
    worker.start()
    worker.join(5)
    assert not worker.is_alive()
    assert ws.closed is not None and ws.closed[0] == 1008
    theirs.settimeout(5)
    assert theirs.recv(100) == b""  # nothing was relayed, and the server side is closed
    theirs.close()


def test_frame_helpers() -> None:
    assert split_frame("NICK a") == [b"NICK a"]
    assert split_frame("NICK a\r\n") == [b"NICK a"]
    assert split_frame(b"NICK a\nUSER a 0 * :A\r\n\r\n") == [b"NICK a", b"USER a 0 * :A"]
    assert split_frame("") == []
    assert is_webirc(b"WEBIRC x y z w") and is_webirc(b"@t=1 :src webirc x")
    assert not is_webirc(b"PRIVMSG #a :WEBIRC")
    assert webirc_line("s", "192.0.2.1") == "WEBIRC s lobby-web 192.0.2.1 192.0.2.1"
    assert webirc_line("s", "::1") == "WEBIRC s lobby-web 0::1 0::1"
    assert chat_address_for("0.0.0.0", 5) == ("127.0.0.1", 5)
    assert chat_address_for("::", 5) == ("::1", 5)
    assert chat_address_for("127.0.0.1", 5) == ("127.0.0.1", 5)


def test_origin_rules() -> None:
    assert origin_allowed(None, "h:1", "http")
    assert origin_allowed("http://h:1", "h:1", "http")
    assert origin_allowed("http://H:1", "h:1", "ws")
    assert origin_allowed("https://h", "h", "https")
    assert not origin_allowed("https://h:1", "h:1", "http")
    assert not origin_allowed("http://h:2", "h:1", "http")
    assert not origin_allowed("http://h:1.evil.example", "h:1", "http")
    assert not origin_allowed("null", "h:1", "http")
    assert not origin_allowed("file://", "h:1", "http")
    assert origin_allowed("https://chat.example", "h:1", "http", ("https://chat.example",))


# -- lobby serve ------------------------------------------------------------------------------


def test_lobby_serve_runs_the_web_side_and_stops_on_sigterm(ws_connect: WsFactory) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--irc-port", "0", "--web-port", "0", "--db", ":memory:"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        chat_line = proc.stdout.readline().strip()
        web_line = proc.stdout.readline().strip()
        assert re.fullmatch(r"chat server on 127\.0\.0\.1:\d+", chat_line), chat_line
        match = re.fullmatch(r"web on (http://127\.0\.0\.1:\d+)", web_line)
        assert match, web_line
        url = match[1]
        assert json.loads(http_get(url + "/healthz")[2])["status"] == "ok"
        # Registering proves the bridge's WEBIRC, with the secret made at start-up, was accepted.
        ws_connect(url.replace("http", "ws") + "/ws", "viaserve")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


def test_lobby_serve_trusted_proxies_flag_reaches_the_bridge(ws_connect: WsFactory) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--irc-port", "0", "--web-port", "0", "--db", ":memory:",
         "--trusted-proxies", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        match = re.fullmatch(r"web on (http://127\.0\.0\.1:\d+)", proc.stdout.readline().strip())
        assert match
        url = match[1].replace("http", "ws") + "/ws"
        ws_connect(url, "tls-user", origin="https://chat.example", header=FORWARDED)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]


def test_lobby_serve_exits_1_when_the_web_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "backend.cli", "serve", "--irc-port", "0", "--web-port", str(port),
             "--db", ":memory:"],
            capture_output=True, text=True, timeout=30,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_web_connections_past_the_cap_get_503_not_a_thread(web_app) -> None:  # type: ignore[no-untyped-def]
    def connection_threads() -> int:
        return len([t for t in threading.enumerate() if re.fullmatch(r"web-\d+", t.name) and t.is_alive()])

    server = WebServer(web_app, "127.0.0.1", 0, max_connections=2)
    server.start()
    held = [socket.create_connection(server.address, timeout=10) for _ in range(2)]  # idle: each holds a thread
    try:
        wait_until(lambda: connection_threads() == 2)
        refused = socket.create_connection(server.address, timeout=10)
        with refused:
            answer = b""
            while chunk := refused.recv(4096):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert connection_threads() == 2
        held.pop().close()
        wait_until(lambda: connection_threads() < 2)
        status, _, _ = http_get(server.url + "/healthz")
        assert status == 200
    finally:
        for sock in held:
            sock.close()
        server.stop()
