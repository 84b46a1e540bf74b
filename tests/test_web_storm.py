"""Many browsers at once (issue 16 item 3, issue 19): admission, batched frames, no poll, IRC users unharmed.

Real chat server and web server on free loopback ports; make_server's teardown (through
the chat_server fixture) checks that no thread is left running. No timing is asserted:
the admission limits are set small and its waits to 0 or long, so each outcome is decided
by what the browsers do, never by a clock.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import websocket
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Message, Request

from backend.node import ChatServer
from bridge import config_for, create_app, relay
from bridge.pump import Pump
from bridge.web import WebServer
from bridge.wsadapter import OPCODE_BINARY, OPCODE_TEXT, WsAdapter, server_frame
from tests.ircclient import IrcClient, wait_until
from tests.pagehelpers import expect, join

pytest_plugins = ["tests.webfixtures"]

WsFactory = Callable[..., Any]  # tests.webfixtures.WsClient factories


def ws_url(web: WebServer) -> str:
    return web.url.replace("http://", "ws://", 1) + "/ws"


def serve(chat_server: ChatServer, **config: Any) -> WebServer:
    server = WebServer(create_app({"TESTING": True, **config_for(chat_server), **config}))
    server.start()
    return server


@pytest.fixture
def make_web(chat_server: ChatServer) -> Iterator[Callable[..., WebServer]]:
    """Web servers with the given app config, stopped after the test."""
    made: list[WebServer] = []

    def factory(**config: Any) -> WebServer:
        made.append(serve(chat_server, **config))
        return made[-1]

    yield factory
    for server in made:
        server.stop()


@pytest.fixture
def bridge_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="lobby")
    return caplog


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


def refused(url: str) -> websocket.WebSocketBadStatusException:
    with pytest.raises(websocket.WebSocketBadStatusException) as info:
        websocket.create_connection(url, subprotocols=["text.ircv3.net"], timeout=10)
    return info.value


# -- admission ----------------------------------------------------------------------------


def test_a_browser_past_the_admission_limit_is_told_to_retry_and_then_gets_in(
    make_web: Callable[..., WebServer], ws_connect: WsFactory, bridge_log: pytest.LogCaptureFixture
) -> None:
    web = make_web(LOBBY_WS_ADMIT=2, LOBBY_WS_ADMIT_WAIT=0, LOBBY_WS_ADMIT_HOLD=3600)
    url = ws_url(web)
    first, second = ws_connect(url), ws_connect(url)  # handshaken, not registered: both hold a turn
    err = refused(url)
    assert err.status_code == 503
    headers = {k.lower(): v for k, v in (err.resp_headers or {}).items()}
    assert int(headers["retry-after"]) > 0
    first.register("early")  # joined: its turn is free again
    ws_connect(url, "third")
    assert any("come back later" in r.getMessage() for r in bridge_log.records)
    second.close()
    no_tracebacks(bridge_log)


def test_a_waiting_browser_is_admitted_when_a_turn_frees_up(
    make_web: Callable[..., WebServer], ws_connect: WsFactory, bridge_log: pytest.LogCaptureFixture
) -> None:
    web = make_web(LOBBY_WS_ADMIT=1, LOBBY_WS_ADMIT_WAIT=60, LOBBY_WS_ADMIT_HOLD=3600)
    url = ws_url(web)
    holder = ws_connect(url)
    admission = web.app.extensions["lobby.admission"]
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(ws_connect(url, "patient")))
    waiter.start()
    try:
        wait_until(lambda: admission.waiting == 1)
        assert not got  # still waiting its turn, before any handshake
    finally:
        holder.close()  # its relay ends and gives the turn back
        waiter.join(20)
    assert not waiter.is_alive() and got
    got[0].send("PING :still-here")
    got[0].expect(r"PONG .*still-here")
    no_tracebacks(bridge_log)


def test_a_burst_beyond_the_limit_is_all_served_or_told_to_retry(
    make_web: Callable[..., WebServer], ws_connect: WsFactory, irc_user: Callable[..., IrcClient],
    bridge_log: pytest.LogCaptureFixture,
) -> None:
    web = make_web(LOBBY_WS_ADMIT=3, LOBBY_WS_ADMIT_WAIT=0, LOBBY_WS_ADMIT_HOLD=3600)
    url = ws_url(web)
    honest = irc_user("honest")
    honest.send("PART #lobby")
    honest.send("JOIN #quiet")
    honest.expect(r" 366 honest #quiet ")
    outcomes: dict[int, str] = {}
    lock = threading.Lock()

    def browser(i: int) -> None:
        for _ in range(50):  # retries, as the page does after a refusal
            try:
                ws_connect(url, f"burst{i}")
            except websocket.WebSocketBadStatusException as err:
                assert err.status_code == 503
                with lock:
                    outcomes[i] = "retried"
                continue
            with lock:
                outcomes[i] = outcomes.get(i, "") + " joined"
            return

    threads = [threading.Thread(target=browser, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    honest.sync("during-the-burst")  # an IRC user's PING is answered while browsers pile in
    for t in threads:
        t.join(60)
    assert all(not t.is_alive() for t in threads)
    assert sorted(outcomes) == list(range(12))
    assert all(o.endswith("joined") for o in outcomes.values())
    assert any(o.startswith("retried") for o in outcomes.values())  # the limit did bite
    honest.sync("after-the-burst")
    no_tracebacks(bridge_log)


def test_stopping_the_web_server_refuses_browsers_still_waiting(
    chat_server: ChatServer, ws_connect: WsFactory
) -> None:
    web = serve(chat_server, LOBBY_WS_ADMIT=1, LOBBY_WS_ADMIT_WAIT=3600, LOBBY_WS_ADMIT_HOLD=3600)
    url = ws_url(web)
    try:
        ws_connect(url)
        admission = web.app.extensions["lobby.admission"]
        errors: list[BaseException] = []

        def wait_in_line() -> None:
            try:
                websocket.create_connection(url, timeout=20).close()
            except Exception as err:  # any refusal will do; a hang is the failure
                errors.append(err)

        waiter = threading.Thread(target=wait_in_line)
        waiter.start()
        wait_until(lambda: admission.waiting == 1)
    finally:
        web.stop()
    waiter.join(20)
    assert not waiter.is_alive() and errors


def test_admission_gives_turns_back() -> None:
    gate = relay.Admission(limit=2, wait=0, hold=3600)
    a, b = gate.enter(), gate.enter()
    assert a is not None and b is not None
    assert gate.enter() is None
    a()
    a()  # giving a turn back twice frees one turn only
    c = gate.enter()
    assert c is not None and gate.enter() is None
    lapsing = relay.Admission(limit=1, wait=0, hold=0)
    assert lapsing.enter() is not None
    assert lapsing.enter() is not None  # a turn held past `hold` lapses


# -- frames and wake-ups ----------------------------------------------------------------


def test_a_burst_of_lines_arrives_one_line_per_frame_in_order(
    ws_client: WsFactory, irc_user: Callable[..., IrcClient]
) -> None:
    browser = ws_client("reader")
    talker = irc_user("talker")
    talker.send_raw(b"".join(b"PRIVMSG #lobby :line %d\r\n" % i for i in range(15)))  # within the flood burst
    browser.expect(r"PRIVMSG #lobby :line 14$")
    said = [f for f in browser.seen if " PRIVMSG #lobby :line " in f]
    assert [f.rsplit(" ", 1)[1] for f in said] == [str(i) for i in range(15)]
    assert all("\r" not in f and "\n" not in f for f in browser.seen)


def test_send_many_writes_one_frame_per_message_in_one_write() -> None:
    server_conn = WSConnection(ConnectionType.SERVER)
    ours, theirs = socket.socketpair()
    writes: list[bytes] = []

    class CountingSocket(socket.socket):
        def sendall(self, data: Any, flags: int = 0) -> None:
            writes.append(bytes(data))
            super().sendall(data, flags)

    counted = CountingSocket(fileno=ours.detach())

    class Ws:
        ws = server_conn
        sock = counted
        connected = True

        def send(self, data: str | bytes) -> None:
            raise AssertionError("send_many must not fall back to one send per message")

    # A server connection must be open before it frames messages: take it through a handshake.
    client = WSConnection(ConnectionType.CLIENT)
    server_conn.receive_data(client.send(Request(host="x", target="/ws")))
    next(server_conn.events())
    client.receive_data(server_conn.send(AcceptConnection()))
    next(client.events())
    try:
        WsAdapter(Ws()).send_many(["one", "two", "three"])
        WsAdapter(Ws()).send_many([b"\xffbinary"])
        assert len(writes) == 2
        theirs.settimeout(5)
        data = b""
        got: list[str | bytes] = []
        while len(got) < 4:
            data = theirs.recv(4096)
            client.receive_data(data)
            got += [e.data for e in client.events() if isinstance(e, Message)]
        assert got == ["one", "two", "three", b"\xffbinary"]
    finally:
        counted.close()
        theirs.close()


def test_a_relay_wakes_on_data_not_on_a_poll(
    monkeypatch: pytest.MonkeyPatch, ws_client: WsFactory, irc_user: Callable[..., IrcClient]
) -> None:
    monkeypatch.setattr(relay, "POLL_SECONDS", 3600.0)  # were anything waiting for the poll, it would hang
    browser = ws_client("waker")
    talker = irc_user("talker")
    browser.send("PRIVMSG #lobby :from the browser")
    talker.expect(r"PRIVMSG #lobby :from the browser")
    talker.send("PRIVMSG #lobby :to the browser")
    browser.expect(r"PRIVMSG #lobby :to the browser")
    browser.send("QUIT :bye")  # the server ends the connection: the relay must notice at once
    assert browser.expect_close() in (1000, None)
    talker.expect(r"waker!\S+ QUIT")
    # simple-websocket's reader thread ends on its own (a frame over the limit): the relay must hear of it.
    big = ws_client("big")
    talker.expect(r"big!\S+ JOIN")
    big.send("PRIVMSG #lobby :" + "x" * 9000)
    assert big.expect_close() == 1009
    talker.expect(r"big!\S+ QUIT")


def test_frames_of_every_length_decode_as_sent() -> None:
    client, server = WSConnection(ConnectionType.CLIENT), WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="x", target="/ws")))
    next(server.events())
    client.receive_data(server.send(AcceptConnection()))
    next(client.events())
    sent: list[str | bytes] = ["é" * 2, "x" * 125, "y" * 126, "z" * 70000, b"\x00\xff" * 40000]
    for message in sent:
        opcode = OPCODE_BINARY if isinstance(message, bytes) else OPCODE_TEXT
        client.receive_data(server_frame(message if isinstance(message, bytes) else message.encode(), opcode))
    got = [e.data for e in client.events() if isinstance(e, Message)]
    assert got == sent


def test_the_bridge_offers_no_compression(web: WebServer, ws_connect: WsFactory) -> None:
    browser = ws_connect(ws_url(web), "plain", header=["Sec-WebSocket-Extensions: permessage-deflate"])
    headers = {k.lower(): v for k, v in browser.ws.getheaders().items()}
    assert "sec-websocket-extensions" not in headers
    browser.send("PING :uncompressed")
    browser.expect(r"PONG .*uncompressed")


def test_an_app_served_again_after_a_stop_admits_and_relays_again(
    chat_server: ChatServer, ws_connect: WsFactory
) -> None:
    app = create_app({"TESTING": True, **config_for(chat_server)})
    for round_ in range(2):
        web = WebServer(app)
        web.start()
        try:
            browser = ws_connect(ws_url(web), f"again{round_}")
            browser.send(f"PING :round-{round_}")
            browser.expect(rf"PONG .*round-{round_}")
        finally:
            web.stop()


def test_a_browser_that_gave_up_while_waiting_costs_no_traceback_and_no_turn(
    make_web: Callable[..., WebServer], ws_connect: WsFactory, bridge_log: pytest.LogCaptureFixture
) -> None:
    bridge_log.set_level(logging.DEBUG)  # Flask's "Exception on /ws" goes to the app's own logger
    web = make_web(LOBBY_WS_ADMIT=1, LOBBY_WS_ADMIT_WAIT=60, LOBBY_WS_ADMIT_HOLD=3600)
    url = ws_url(web)
    admission = web.app.extensions["lobby.admission"]
    holder = ws_connect(url)
    quitter = socket.create_connection(web.address)
    host = f"{web.address[0]}:{web.address[1]}"
    quitter.sendall((f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    wait_until(lambda: admission.waiting == 1)
    quitter.close()  # the tab was closed while it waited its turn
    holder.close()
    wait_until(lambda: admission.waiting == 0 and admission.busy() == 0)
    ws_connect(url, "next")  # the quitter's turn came back
    no_tracebacks(bridge_log)


def test_a_browser_that_stops_reading_holds_up_no_one_else(
    make_server: Callable[..., ChatServer], ws_connect: WsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    waited: list[object] = []
    write_mode = Pump._write_mode

    def counting(self: Pump, channel: Any) -> None:
        waited.append(channel)
        write_mode(self, channel)

    monkeypatch.setattr(Pump, "_write_mode", counting)
    # A SendQ big enough for the whole burst: on a loaded machine the live browser's own backlog
    # may grow for a while, and that (the chat server's limit) is not what this test is about.
    chat = make_server(webirc_password="s3cret-for-the-bridge", flood=False, sendq_bytes=64 * 1024 * 1024)
    web = serve(chat)
    try:
        url = ws_url(web)
        # A tiny receive buffer, never read: the bridge's writes to it soon find no room.
        stuck = ws_connect(url, "stuck", sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
        live = ws_connect(url, "live")
        talker = IrcClient(chat.address)
        make_server.clients.append(talker)  # type: ignore[attr-defined]
        talker.register("talker")
        pad = "x" * 400
        talker.send_raw(b"".join(f"PRIVMSG #lobby :{i} {pad}\r\n".encode() for i in range(20000)))
        talker.send("PRIVMSG #lobby :the last word")
        live.expect(r"PRIVMSG #lobby :the last word", timeout=120)
        assert sum(" PRIVMSG #lobby :" in f for f in live.seen) == 20001
        assert waited  # the Pump did find the stuck browser's socket full, and went on with the others
        talker.close()
        stuck.close()
    finally:
        web.stop()


def test_the_page_told_to_come_back_later_gets_in_once_a_turn_frees(
    web: WebServer, new_page: Callable[..., Any], ws_client: WsFactory
) -> None:
    admission = web.app.extensions["lobby.admission"]
    admission.limit, admission.wait = 1, 0  # one turn, and no waiting for it: refused at once
    holder = ws_client()  # handshaken but not registered: it holds the only turn
    page = new_page()
    join(page, "patient")
    expect(page.locator("#status")).to_contain_text("reconnecting")  # the 503 is a failed connection
    holder.register("holder")  # joined: the turn is free again
    expect(page.locator("#status")).to_have_text("online")
    expect(page.locator("#users")).to_contain_text("patient")
    assert not page.errors
