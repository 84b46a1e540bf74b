"""A raw-socket IRC client for tests: send lines, wait for lines matching a pattern.

Shaped after miniircd's end-to-end test: short, readable, real. It parses with the
project's own protocol module, as every client of ours does.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import socket
import time
from collections.abc import Callable

from backend.irc import LineBuffer, Message, parse_line

TIMEOUT = 10.0


_tokens = itertools.count(1)


class IrcClient:
    """One TCP connection to the chat server, with line-level helpers."""

    def __init__(self, address: tuple[str, int], timeout: float = TIMEOUT, sock: socket.socket | None = None) -> None:
        self.sock = sock or socket.create_connection(address, timeout=timeout)
        self.timeout = timeout
        self.buffer = LineBuffer()
        self.pending: list[str] = []
        self.seen: list[str] = []
        self.nick = "*"

    def send(self, line: str) -> None:
        """Send one line, adding CRLF."""
        self.sock.sendall(line.encode("utf-8") + b"\r\n")

    def send_raw(self, data: bytes) -> None:
        """Send bytes exactly as given."""
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return False
        if not data:
            raise ConnectionError("server closed the connection; seen: " + repr(self.seen[-10:]))
        for raw in self.buffer.feed(data):
            assert isinstance(raw, bytes)
            self.pending.append(raw.decode("utf-8", errors="replace"))
        return True

    def expect(self, pattern: str, timeout: float | None = None) -> Message:
        """Read lines until one matches pattern (a regex searched in the raw line); return it parsed."""
        deadline = time.monotonic() + (timeout or self.timeout)
        regex = re.compile(pattern)
        while True:
            while self.pending:
                line = self.pending.pop(0)
                self.seen.append(line)
                if regex.search(line):
                    return parse_line(line)
            if not self._fill(deadline):
                raise AssertionError(f"no line matching {pattern!r} within the timeout; last lines: {self.seen[-15:]}")

    def lines_until(self, pattern: str, timeout: float | None = None) -> list[str]:
        """All lines read up to and including the first match of pattern."""
        start = len(self.seen)
        self.expect(pattern, timeout)
        return self.seen[start:]

    def assert_silent(self, pattern: str, wait: float = 0.5) -> None:
        """Fail if a line matching pattern arrives within wait seconds."""
        deadline = time.monotonic() + wait
        regex = re.compile(pattern)
        while True:
            while self.pending:
                line = self.pending.pop(0)
                self.seen.append(line)
                assert not regex.search(line), f"unexpected line {line!r}"
            if not self._fill(deadline):
                return

    def sync(self, token: str | None = None) -> list[str]:
        """PING the server and read up to its PONG; return the lines read before the PONG.

        Without a token, each call uses a new one, so no earlier PONG can be taken for this one.

        The server answers in order, so whatever it had queued for this client before the PING
        has been read by then: a condition to wait on instead of a fixed silence.
        """
        token = token or f"sync{next(_tokens)}"
        start = len(self.seen)
        self.send(f"PING {token}")
        self.expect(rf"PONG \S+ :?{re.escape(token)}$")
        return self.seen[start:-1]

    def never(self, pattern: str) -> None:
        """Fail if a line matching pattern reached this client, up to a PING sent now (so it could)."""
        bad = [line for line in self.sync(f"never{next(_tokens)}") if re.search(pattern, line)]
        assert not bad, bad

    def expect_closed(self, timeout: float | None = None) -> list[str]:
        """Read until the server closes the connection; return the lines read."""
        deadline = time.monotonic() + (timeout or self.timeout)
        start = len(self.seen)
        try:
            while True:
                self.seen.extend(self.pending)
                self.pending.clear()
                if not self._fill(deadline):
                    raise AssertionError("connection still open; last lines: " + repr(self.seen[-10:]))
        except (ConnectionError, OSError):
            self.seen.extend(self.pending)
            self.pending.clear()
        return self.seen[start:]

    def register(self, nick: str, caps: str = "") -> IrcClient:
        """CAP/NICK/USER, then wait for the end of the auto-join to the default room."""
        if caps:
            self.send("CAP LS 302")
            self.send(f"CAP REQ :{caps}")
        self.send(f"NICK {nick}")
        self.send(f"USER {nick.lower()[:8] or 'u'} 0 * :{nick} Test")
        if caps:
            self.expect(r" CAP \S+ ACK ")
            self.send("CAP END")
        self.expect(r" 001 ")
        self.nick = nick
        self.expect(r" 366 \S+ #lobby ")
        return self

    def close(self) -> None:
        """Close the socket."""
        with contextlib.suppress(OSError):
            self.sock.close()


def wait_until(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """Poll condition until it holds; fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within the timeout")
        time.sleep(0.02)


def connect(address: tuple[str, int], nick: str | None = None, caps: str = "") -> IrcClient:
    """A new client, registered as nick if one is given."""
    client = IrcClient(address)
    if nick:
        client.register(nick, caps)
    return client
