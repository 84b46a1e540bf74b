"""One TCP connection to an IRC server, as the terminal client uses it.

It owns the socket and nothing else: opening, sending a Message as one line,
and reading the messages that arrive (for the client's receiver thread). Framing
and parsing come from backend/irc, the package the server uses too. What
the messages mean is client/chat.py's business.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

from backend.irc import LineBuffer, LineTooLong, Message, ProtocolError, decode, parse_line

CONNECT_TIMEOUT = 10.0
RECV_BYTES = 65536


class Connection:
    """A socket to host:port that can be opened again after it breaks.

    send() may be called from any thread (the input thread and the receiver both
    send); reading happens on one thread only.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()

    @property
    def address(self) -> str:
        """host:port, as shown to the user."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def open(self) -> None:
        """Connect, replacing any earlier socket; raise OSError when the server can't be reached."""
        sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._send_lock:
            old, self._sock = self._sock, sock
        if old is not None:
            _close(old)

    def send(self, message: Message) -> bool:
        """Send one message; False when there is no working connection."""
        data = message.to_bytes()
        with self._send_lock:
            if self._sock is None:
                return False
            try:
                self._sock.sendall(data)
            except OSError:
                return False
        return True

    def messages(self) -> Iterator[Message]:
        """The messages arriving on the current socket, until it closes or fails."""
        sock = self._sock
        if sock is None:
            return
        buffer = LineBuffer()
        while True:
            try:
                data = sock.recv(RECV_BYTES)
            except OSError:
                return
            if not data:
                return
            for raw in buffer.feed(data):
                if isinstance(raw, LineTooLong):
                    continue  # a server line we cannot hold is dropped, not fatal
                text = decode(raw)
                if not text.strip():
                    continue
                try:
                    yield parse_line(text)
                except ProtocolError:
                    continue

    def close(self) -> None:
        """Close the socket (reading threads see the end of the stream)."""
        with self._send_lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            _close(sock)


def _close(sock: socket.socket) -> None:
    # shutdown first: it wakes a thread blocked in recv() on this socket, close alone may not.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
