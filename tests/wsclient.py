"""A WebSocket client of the bridge's /ws for tests, in the style of tests/ircclient.py."""

from __future__ import annotations

import contextlib
import re
import time
from typing import TYPE_CHECKING

import websocket

from backend.protocol import Message, parse_line

if TYPE_CHECKING:
    from bridge.web import WebServer

TIMEOUT = 10.0


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
