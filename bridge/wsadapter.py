"""The one module that knows simple-websocket's internals.

flask-sock hands a route a simple_websocket.Server. Its public API is send,
receive and close; the relay needs a little more, and the only way to get it is
through attributes the library does not document: the queue of received frames
(`input_buffer`), the event that wakes a blocked receive() (`event`), the raw
socket (`sock`), the reader thread (`thread`) and the chosen subprotocol
(`subprotocol`), and the wsproto connection whose events the reader thread
handles (`ws`), to see frames that never reach receive(). Every such access lives here, behind named methods, so that a
simple-websocket upgrade that renames one breaks this file and nothing else.

Each method degrades quietly when an attribute is missing (a test double, or a
future version): the relay then loses a safety net, never its main job.
This module holds no relay logic: it only reads and pokes the WebSocket object.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from simple_websocket import ConnectionClosed
from wsproto.connection import ConnectionState
from wsproto.events import Event, Message, Ping, Pong, TextMessage

OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2


def server_frame(payload: bytes, opcode: int) -> bytes:
    """One whole, unmasked frame (RFC 6455 5.2), as a server sends it."""
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, size))
    elif size < 65536:
        head = bytes((0x80 | opcode, 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 127)) + size.to_bytes(8, "big")
    return head + payload


def _plain(connection: Any) -> bool:
    """Whether frames may be written without wsproto: the connection is open and no extension is on.

    wsproto frames a message in Python, a few times slower than server_frame;
    with compression negotiated (permessage-deflate) only wsproto can do it.
    """
    proto = getattr(getattr(connection, "connection", None), "_proto", None)
    extensions = getattr(proto, "extensions", None)
    return (getattr(connection, "state", None) is ConnectionState.OPEN and isinstance(extensions, list)
            and not any(extension.enabled() for extension in extensions))


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


class _WatchedConnection:
    """A wsproto connection that reports each frame carrying no data as its events are handled."""

    def __init__(self, connection: Any, on_frame: Callable[[str], None]) -> None:
        self._connection = connection
        self._on_frame = on_frame

    def events(self) -> Iterator[Event]:
        for event in self._connection.events():
            if isinstance(event, Ping | Pong):
                self._on_frame("control")
            elif isinstance(event, Message) and event.frame_finished and not event.data:
                self._on_frame("empty")  # an empty message, or an empty continuation of one
            yield event

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


class _RoutedSocket:
    """The browser's socket as simple-websocket sees it once the relay takes over its writes."""

    def __init__(self, sock: socket.socket, write: Callable[[bytes], int], closed: Callable[[], None]) -> None:
        self.wrapped = sock
        self._write = write
        self._closed = closed

    def close(self) -> None:
        # The reader thread's last act, after it has marked the WebSocket closed: whoever
        # waits in receive() must hear of it (simple-websocket sets its event earlier, or not at all).
        self.wrapped.close()
        self._closed()

    def send(self, data: bytes, flags: int = 0) -> int:
        return self._write(bytes(data))

    def sendall(self, data: bytes, flags: int = 0) -> None:
        self._write(bytes(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


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

    def send_many(self, messages: list[str] | list[bytes]) -> None:
        """Send several messages, one frame each, in one sendall.

        simple-websocket's send() makes one frame and one system call per
        message; a browser owed a burst of lines gets them all in one write here.
        Without the internals (a test double), each goes through send().
        """
        frames = self.encode(messages)
        raw = self.raw_socket()
        if frames is None or raw is None:
            for message in messages:
                self.ws.send(message)
            return
        # sendall, not simple-websocket's bare send: a partial write would splice frames.
        raw.sendall(frames)

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
        raw = getattr(raw, "wrapped", raw)
        return raw if isinstance(raw, socket.socket) else None

    def route_writes(self, write: Callable[[bytes], int]) -> bool:
        """From now on simple-websocket writes (pongs, close frames) through write, not the socket.

        So that one writer keeps the browser's byte stream in order: the relay
        writes without blocking and finishes partial writes later, and a pong
        written straight to the socket meanwhile would land inside a frame.
        """
        raw = self.raw_socket()
        if raw is None:
            return False
        holder: Any = self.ws
        holder.sock = _RoutedSocket(raw, write, self.wake_reader)
        return True

    def encode(self, messages: list[str] | list[bytes]) -> bytes | None:
        """The frames for these messages (str: text, bytes: binary), one each; None without the internals."""
        connection = getattr(self.ws, "ws", None)
        if connection is None or self.raw_socket() is None or not callable(getattr(connection, "send", None)):
            return None
        if not getattr(self.ws, "connected", True):
            raise ConnectionClosed(getattr(self.ws, "close_reason", None), getattr(self.ws, "close_message", None))
        if _plain(connection):
            return b"".join(server_frame(m, OPCODE_BINARY) if isinstance(m, bytes)
                            else server_frame(m.encode("utf-8"), OPCODE_TEXT) for m in messages)
        return b"".join(connection.send(Message(data=m) if isinstance(m, bytes) else TextMessage(data=m))
                        for m in messages)

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

    def discard_input(self, quiet: float, limit: float) -> None:
        """Read and drop what the peer still sends, until it pauses for quiet seconds (limit at most).

        For the reader thread, after a close frame to a peer that floods: a socket
        closed with unread data is reset, and a peer that gets the reset may never
        read the close frame that says why.
        """
        raw = self.raw_socket()
        if raw is None:
            return
        deadline = time.monotonic() + limit
        try:
            while (left := deadline - time.monotonic()) > 0:
                raw.settimeout(min(quiet, left))
                if not raw.recv(65536):
                    break
        except OSError:
            pass  # a pause (TimeoutError) or the end of the connection
        finally:
            with contextlib.suppress(OSError):
                raw.settimeout(None)

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

    def watch_frames(self, on_frame: Callable[[str], None]) -> bool:
        """Call on_frame("control") for each ping or pong, on_frame("empty") for each empty data frame.

        simple-websocket answers pings and gathers fragments in its reader thread,
        so these frames never reach receive(); on_frame runs on that thread, as
        they are handled. Returns False if the WebSocket has no such internals.
        """
        connection = getattr(self.ws, "ws", None)
        if connection is None or not callable(getattr(connection, "events", None)):
            return False
        # The reader thread looks the attribute up for every read, so it uses the wrapper from now on.
        holder: Any = self.ws
        holder.ws = _WatchedConnection(connection, on_frame)
        return True

    def subprotocol(self) -> str | None:
        """The subprotocol chosen in the handshake, or None."""
        chosen = getattr(self.ws, "subprotocol", None)
        return chosen if isinstance(chosen, str) else None
