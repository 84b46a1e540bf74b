"""One client connection: its reader and writer threads, and what we know of the user.

The reader thread frames bytes into lines and hands each to the command table. What
the client is sent waits in its bounded Outbox: replies go out at once from the thread
that made them, fan-out through the server's flusher thread, and the writer thread
takes over whatever the socket would not take without blocking. Whatever
ends a connection (QUIT, EOF, an error, a kill from another thread), the reader's
finally block removes the user from the hub, so nobody is left as a ghost.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import socket
import ssl
import struct
import termios
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import numerics as n
from .envelope import TAGS_NONE, Envelope, RenderKey, render_key_for
from .flood import FloodGate, Flooding
from .outbox import Outbox, Queued
from .protocol import (
    LineBuffer,
    LineTooLong,
    Message,
    ProtocolError,
    check_length,
    decode,
    parse_line,
)
from .transport import TlsTransport

if TYPE_CHECKING:
    from .server import ChatServer
    from .textuser import TextUser

log = logging.getLogger("lobby.session")

RECV_BYTES = 16384


def unread_bytes(sock: socket.socket) -> int:
    """Bytes received by the kernel that the socket's reader has not read yet."""
    try:
        count: int = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]
        return count
    except OSError:
        return 0


class Session:
    """A connected client, registered or not. Also the hub's Member."""

    def __init__(
        self, server: ChatServer, sock: socket.socket, address: tuple[str, int], tls: ssl.SSLContext | None = None
    ) -> None:
        self.server = server
        self.sock = sock
        self.tls = TlsTransport(sock, tls) if tls is not None else None
        self.transport: socket.socket | TlsTransport = self.tls or sock
        self.host = address[0]
        self.gateway: str | None = None
        self.port = address[1]
        self.nick = "*"
        self.user = ""
        self.realname = ""
        self.password: str | None = None
        self.caps: set[str] = set()
        self.render_key: RenderKey = TAGS_NONE
        self.renderer: Callable[[Envelope], bytes] | None = None
        # Set when this is a person at nc/telnet rather than an IRC client (textuser.py).
        self.text: TextUser | None = None
        self.registered = False
        self.cap_negotiating = False
        self.away: str | None = None
        # While a join is under way: the msgids delivered to this client live, so that the
        # join's replay leaves out what it already got (commands.join, ChatServer.on_join).
        self.joining: set[str] | None = None
        self.connected_at = time.monotonic()
        self.last_seen = self.connected_at
        self.ping_sent: float | None = None
        self.outbox = Outbox(server.config.sendq_bytes, self._start_writer)
        self.quit_reason: str | None = None
        self.buffer = LineBuffer()
        cfg = server.config
        self.flood = FloodGate(cfg.flood_burst, cfg.flood_rate, cfg.flood_max_lag) if cfg.flood else None
        self._killed = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name=f"writer-{self.port}", daemon=True)
        self._writer_started = False
        self._reader = threading.Thread(target=self._read_loop, name=f"reader-{self.port}", daemon=True)

    def __repr__(self) -> str:
        return f"<Session {self.nick} {self.host}:{self.port}>"

    @property
    def prefix(self) -> str:
        """The nick!user@host source of this user's messages."""
        return f"{self.nick}!{self.user or self.nick}@{self.host}"

    def start(self) -> None:
        """Start the reader thread (and, for TLS, the writer: every TLS write goes through it)."""
        if self.tls is not None:
            self._start_writer()
        self._reader.start()

    def _start_writer(self) -> None:
        """Start the writer thread the first time it is needed (outbox lock held, or before start()).

        Most connections never need it: the flusher and offer() send everything unless the
        client stops reading. Starting it late halves the threads of a big room.
        """
        if self._writer_started:
            return
        self._writer_started = True
        try:
            self._writer.start()
        except RuntimeError:
            # No thread to be had: this client can't be written to, so end it.
            log.warning("no writer thread for %r: disconnecting it", self)
            self._shutdown()

    def join_threads(self, timeout: float) -> None:
        """Wait for the threads to end, for at most timeout seconds."""
        deadline = time.monotonic() + timeout
        for t in (self._reader, self._writer):
            if t.is_alive() and t is not threading.current_thread():
                t.join(max(0.0, deadline - time.monotonic()))

    # -- sending ------------------------------------------------------------

    def set_caps(self, caps: set[str]) -> None:
        """Record negotiated capabilities and the tags they call for."""
        self.caps = caps
        self.render_key = render_key_for(caps)

    def deliver(self, envelope: Envelope) -> None:
        """Queue a shared envelope, rendered for this client's capabilities, for the flusher.

        Envelopes are what many clients get at once (room messages, joins, quits), so
        they are never sent from the calling thread: one thread sending 500 lines would
        make 500 syscalls, while the flusher sends each member its pile in one.
        """
        seen = self.joining
        if seen is not None:
            seen.add(envelope.msgid)
        data = envelope.render(self.render_key, self.renderer)
        if not data:
            return
        if self.tls is not None:
            ok = self.outbox.put(data)
        else:
            queued = self.outbox.defer(data)
            if queued is Queued.SCHEDULE:
                self.server.flusher.schedule(self)
            ok = queued is not Queued.FULL
        if not ok:
            self.kill("SendQ exceeded", flush=False)

    def flush(self) -> bool:
        """The flusher's turn to send what is queued; True if more came meanwhile."""
        return self.outbox.flush(self._send_now)

    def send(self, message: Message) -> None:
        """Queue a message meant for this client only."""
        data = self.encode(message)
        if data:
            self.send_bytes(data)

    def encode(self, message: Message) -> bytes:
        """A message as this client reads it: an IRC line, or a sentence for a text user."""
        return self.text.render(message) if self.text is not None else message.to_bytes()

    def send_numeric(self, numeric: str, *params: str) -> None:
        """Queue a numeric reply from the server, addressed to this client."""
        self.send(Message(numeric, (self.nick, *params), self.server.config.server_name))

    def send_bytes(self, data: bytes) -> None:
        """Send or queue raw bytes; a client whose queue is full is disconnected.

        On a plain socket with nothing queued the calling thread sends at once without
        blocking (Outbox.offer); the writer thread only handles what the socket won't take.
        """
        ok = self.outbox.offer(data, self._send_now) if self.tls is None else self.outbox.put(data)
        if not ok:
            self.kill("SendQ exceeded", flush=False)

    def _send_now(self, data: bytes) -> int:
        return self.sock.send(data, socket.MSG_DONTWAIT)

    # -- ending -------------------------------------------------------------

    def kill(self, reason: str, flush: bool = True) -> None:
        """End the connection from any thread: send ERROR, then close.

        With flush=False the socket is shut at once, for a client that is not
        reading: waiting on it would never end.
        """
        if self._killed.is_set():
            return
        self._killed.set()
        if self.quit_reason is None:
            self.quit_reason = reason
        error = self.encode(Message("ERROR", (f"Closing link: {self.host} ({reason})",)))
        if flush:
            self.outbox.close(error)
            if not error:  # nothing for a writer to flush (see Outbox.close): end it now
                self._shutdown()
            return
        with contextlib.suppress(OSError):
            if self.tls is None:  # a plaintext line would only corrupt a TLS stream
                self.sock.send(error, socket.MSG_DONTWAIT)
        self.outbox.close()
        self._shutdown()

    def _shutdown(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    # -- threads ------------------------------------------------------------

    def _read_loop(self) -> None:
        from .textuser import sniff

        try:
            if self.tls is not None:
                # TLS listeners serve IRC clients only: there is no person typing at openssl s_client.
                try:
                    self.tls.handshake(self.server.config.registration_timeout)
                except OSError as err:
                    log.info("TLS handshake with %s failed: %s", self.host, err)
                    return
                data = b""
            else:
                # The first bytes decide whether this is an IRC client or a person at nc/telnet.
                data = sniff(self)
            while not self._killed.is_set():
                if data:
                    self.last_seen = time.monotonic()
                    self._receive(data)
                try:
                    data = self.transport.recv(RECV_BYTES)
                except OSError:
                    break
                if not data:
                    break
        except Exception:
            log.exception("reader for %r failed", self)
            self.quit_reason = self.quit_reason or "Internal error"
        finally:
            self._finish()

    def _receive(self, data: bytes) -> None:
        if self.text is not None:
            data = self.text.strip(data)
        lines = self.buffer.feed(data)
        for index, line in enumerate(lines):
            if self.flood is not None and not self._admit(lines, index):
                break
            if self.text is not None:
                self.text.handle_line(line)
            else:
                self.handle_line(line)
            if self._killed.is_set():
                break

    def _admit(self, lines: list[bytes | LineTooLong], index: int) -> bool:
        """Wait out this line's fake lag; False if the client floods or was killed meanwhile."""
        assert self.flood is not None
        try:
            wait = self.flood.charge()
        except Flooding:
            self.kill("Excess Flood")
            return False
        if not wait:
            return True
        # Held back: what is still waiting, here and in the kernel, must stay small.
        backlog = sum(len(x) for x in lines[index + 1 :] if isinstance(x, bytes)) + unread_bytes(self.sock)
        if backlog > self.server.config.flood_max_backlog:
            self.kill("Excess Flood")
            return False
        return not self._killed.wait(wait)

    def _finish(self) -> None:
        try:
            self.server.disconnect(self, self.quit_reason or "Connection closed")
        except Exception:
            log.exception("removing %r failed", self)
        self._killed.set()
        self.outbox.close()
        # Give the writer, if this connection has one, a moment to flush a final ERROR,
        # then make sure it cannot hang.
        if self._writer.is_alive():
            self._writer.join(2.0)
        self._shutdown()
        if self._writer.is_alive():
            self._writer.join(1.0)
        self.sock.close()

    def _write_loop(self) -> None:
        try:
            while (data := self.outbox.take()) is not None:
                self.transport.sendall(data)
                self.outbox.done()
        except OSError:
            pass
        finally:
            self._shutdown()

    # -- input --------------------------------------------------------------

    def handle_line(self, raw: bytes | LineTooLong) -> None:
        """Act on one framed line: a too-long line gets 417, a good one is dispatched."""
        from .commands import dispatch

        if isinstance(raw, LineTooLong):
            self.send_numeric(n.ERR_INPUTTOOLONG, "Input line was too long")
            return
        try:
            check_length(raw)
        except LineTooLong:
            self.send_numeric(n.ERR_INPUTTOOLONG, "Input line was too long")
            return
        text = decode(raw)
        if not text.strip():
            return
        try:
            message = parse_line(text)
        except ProtocolError:
            return
        try:
            dispatch(self, message)
        except Exception:
            # A bug in one handler must not cost the user their connection.
            log.exception("command %r from %r failed", message.command, self)
