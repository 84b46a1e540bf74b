"""The one module that knows simple-websocket's internals.

flask-sock hands a route a simple_websocket.Server. Its public API is send,
receive and close; the relay needs a little more, and the only way to get it is
through attributes the library does not document: the queue of received frames
(`input_buffer`), the event that wakes a blocked receive() (`event`), the raw
socket (`sock`), the reader thread (`thread`) and the chosen subprotocol
(`subprotocol`). Every such access lives here, behind named methods, so that a
simple-websocket upgrade that renames one breaks this file and nothing else.

Each method degrades quietly when an attribute is missing (a test double, or a
future version): the relay then loses a safety net, never its main job.
This module holds no relay logic: it only reads and pokes the WebSocket object.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Protocol


class WebSocket(Protocol):
    """The public API of simple_websocket.Server that a Relay uses (and tests can fake)."""

    def receive(self, timeout: float | None = None) -> str | bytes | None:
        """The next message, or None after timeout; raises ConnectionClosed when closed."""
        ...

    def send(self, data: str | bytes) -> None:
        """Send one message: str as a text frame, bytes as a binary one."""
        ...

    def close(self, reason: int | None = None, message: str | None = None) -> None:
        """Send a close frame with this code and text."""
        ...


class WsAdapter:
    """A simple_websocket.Server (or a double of one), with the internals the relay needs named."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws

    # -- the public API, passed through ------------------------------------------

    def receive(self, timeout: float | None = None) -> str | bytes | None:
        """The next message, or None after timeout; raises ConnectionClosed when closed."""
        return self.ws.receive(timeout=timeout)

    def send(self, data: str | bytes) -> None:
        """Send one message: str as a text frame, bytes as a binary one."""
        self.ws.send(data)

    def close(self, code: int, reason: str) -> None:
        """Send a close frame with this code and reason."""
        self.ws.close(reason=code, message=reason)

    # -- the internals -----------------------------------------------------------

    def pending_frames(self) -> int:
        """How many received messages wait in simple-websocket's queue (it has no limit)."""
        queue = getattr(self.ws, "input_buffer", None)
        return len(queue) if isinstance(queue, list) else 0

    def raw_socket(self) -> socket.socket | None:
        """The browser's TCP socket under the WebSocket, if there is one."""
        raw = getattr(self.ws, "sock", None)
        return raw if isinstance(raw, socket.socket) else None

    def make_blocking(self) -> None:
        """Clear any timeout the HTTP handler left on the socket.

        simple-websocket does not retry a partial send, so a WebSocket's socket must block.
        """
        raw = self.raw_socket()
        if raw is not None:
            raw.settimeout(None)

    def shutdown_socket(self) -> None:
        """Shut the raw socket both ways: wakes the reader thread and ends the connection now."""
        raw = self.raw_socket()
        if raw is not None:
            with contextlib.suppress(OSError):
                raw.shutdown(socket.SHUT_RDWR)

    def wake_reader(self) -> None:
        """Wake a thread blocked in receive(), e.g. after the relay was closed from elsewhere."""
        event = getattr(self.ws, "event", None)
        if isinstance(event, threading.Event):
            event.set()

    def reader_thread(self) -> threading.Thread | None:
        """simple-websocket's own thread that reads the socket (and answers pings)."""
        thread = getattr(self.ws, "thread", None)
        return thread if isinstance(thread, threading.Thread) else None

    def join_reader(self, timeout: float) -> None:
        """Wait up to timeout for the reader thread to end."""
        thread = self.reader_thread()
        if thread is not None:
            thread.join(timeout)

    def subprotocol(self) -> str | None:
        """The subprotocol chosen in the handshake, or None."""
        chosen = getattr(self.ws, "subprotocol", None)
        return chosen if isinstance(chosen, str) else None
