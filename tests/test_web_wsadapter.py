"""bridge.wsadapter against a real flask-sock WebSocket: the internals it names are really there.

If a simple-websocket upgrade renames one of them, this is the test that says which.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import websocket
from flask import Flask
from flask_sock import Sock

from bridge.web import WebServer
from bridge.wsadapter import WsAdapter


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_the_adapter_reaches_simple_websockets_internals(make_server: Callable[..., Any]) -> None:
    # make_server is unused but for its teardown: it fails the test if a thread is left running.
    seen: dict[str, Any] = {}
    done = threading.Event()
    app = Flask(__name__)
    app.config["SOCK_SERVER_OPTIONS"] = {"subprotocols": ["text.ircv3.net"]}
    sock = Sock(app)

    @sock.route("/ws")  # type: ignore[untyped-decorator]
    def probe(ws: Any) -> None:
        adapter = WsAdapter(ws)
        try:
            seen["subprotocol"] = adapter.subprotocol()
            seen["socket"] = isinstance(adapter.raw_socket(), socket.socket)
            reader = adapter.reader_thread()
            seen["reader alive"] = reader is not None and reader.is_alive()
            # The client sends three frames that nobody receives: they wait in the queue.
            seen["pending"] = wait_for(lambda: adapter.pending_frames() == 3)
            adapter.make_blocking()
            seen["blocking"] = adapter.raw_socket().gettimeout() is None  # type: ignore[union-attr]
            adapter.shutdown_socket()
            adapter.join_reader(5)
            seen["reader ended"] = reader is not None and not reader.is_alive()
        finally:
            done.set()

    server = WebServer(app, "127.0.0.1", 0)
    server.start()
    client = websocket.create_connection(server.url.replace("http", "ws", 1) + "/ws",
                                         subprotocols=["text.ircv3.net"], timeout=10)
    try:
        for text in ("one", "two", "three"):
            client.send(text)
        assert done.wait(10)
    finally:
        client.shutdown()
        server.stop()
    assert seen == {"subprotocol": "text.ircv3.net", "socket": True, "reader alive": True, "pending": True,
                    "blocking": True, "reader ended": True}


def test_the_adapter_degrades_quietly_on_an_object_without_internals() -> None:
    class Bare:
        def receive(self, timeout: float | None = None) -> str | bytes | None:
            return None

        def send(self, data: str | bytes) -> None:
            pass

        def close(self, reason: int | None = None, message: str | None = None) -> None:
            pass

    adapter = WsAdapter(Bare())
    assert adapter.pending_frames() == 0
    assert adapter.raw_socket() is None and adapter.reader_thread() is None and adapter.subprotocol() is None
    adapter.wake_reader()
    adapter.shutdown_socket()
    adapter.join_reader(0.1)
    adapter.make_blocking()
