"""One client connection: its reader and writer threads, its Outbox, and the codec in front of the core.

The reader thread frames bytes into lines and hands each to the codec: IRC lines are
parsed and dispatched to the core's command table; a person at nc/telnet has their
typed lines turned into commands by TextUser (textuser.py). What the client is sent
waits in its bounded Outbox: replies go out at once from the thread that made them,
fan-out through the server's flusher thread, and the writer thread takes over
whatever the socket would not take without blocking. Whatever ends a connection
(QUIT, EOF, an error, a kill from another thread), the reader's finally block removes
the user from the hub, so nobody is left as a ghost.

The Connection is the Link under the core's Client (core/client.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import select
import socket
import ssl
import struct
import termios
import threading
import time
from collections.abc import Callable
from typing import Protocol

from ..core.chat import Chat
from ..core.dispatch import dispatch
from ..core.identity import disconnect
from ..irc import LineBuffer, LineTooLong, Message, ProtocolError, check_length, decode_checked, parse_line
from ..irc import numerics as n
from .config import NetConfig
from .flood import FloodGate, Flooding
from .flusher import Flusher
from .outbox import Outbox
from .transport import TlsTransport

log = logging.getLogger("lobby.connection")

RECV_BYTES = 16384
# How often a reader held back by fake lag looks whether its connection was killed meanwhile
# (a hang-up by the client wakes it at once).
LAG_SLICE = 0.1
# The client has closed its side, or the connection broke: poll() events that say so.
HANGUP = select.POLLRDHUP | select.POLLHUP | select.POLLERR


def unread_bytes(sock: socket.socket) -> int:
    """Bytes received by the kernel that the socket's reader has not read yet."""
    try:
        count: int = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]
        return count
    except OSError:
        return 0


def _discard_input(sock: socket.socket, limit: int = 1 << 20) -> None:
    """Read and drop what the client sent that will never be handled, before closing.

    Closing a socket with unread input makes the kernel reset the connection rather than end
    it in order: what of ours is still waiting in the socket to go out (the ERROR that says
    why, to a client that reads slowly) is thrown away, and the client sees "connection reset"
    instead of the end of the stream. A flooder, or anyone who sent more after QUIT, has such
    input.
    """
    with contextlib.suppress(OSError):
        while limit > 0 and (data := sock.recv(65536, socket.MSG_DONTWAIT)):
            limit -= len(data)


class Codec(Protocol):
    """What turns a connection's framed input into the core's commands."""

    def strip(self, data: bytes) -> bytes:
        """Received bytes without what is not text (telnet commands)."""
        ...

    def handle_line(self, raw: bytes | LineTooLong) -> None:
        """Act on one framed line."""
        ...


class IrcCodec:
    """IRC clients: a too-long line gets 417, a good one is parsed and dispatched."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def strip(self, data: bytes) -> bytes:
        """IRC needs no filtering."""
        return data

    def handle_line(self, raw: bytes | LineTooLong) -> None:
        """Parse one line and run its command."""
        client = self.conn.client
        if isinstance(raw, LineTooLong):
            client.send_numeric(n.ERR_INPUTTOOLONG, "Input line was too long")
            return
        try:
            check_length(raw)
        except LineTooLong:
            client.send_numeric(n.ERR_INPUTTOOLONG, "Input line was too long")
            return
        text, valid = decode_checked(raw)
        if not text.strip():
            return
        try:
            message = parse_line(text)
        except ProtocolError:
            return
        if not valid:
            # UTF8ONLY: the bad bytes became U+FFFD; the sender is told (a standard reply when it
            # negotiated them, else a notice) and the line goes on.
            why = "Your message contained bytes that are not UTF-8; they were replaced"
            if client.has("standard-replies"):
                client.send_from_server("WARN", message.command, "INVALID_UTF8", why)
            else:
                client.send_from_server("NOTICE", client.nick, why)
        try:
            dispatch(self.conn.chat, client, message)
        except Exception:
            # A bug in one handler must not cost the user their connection.
            log.exception("command %r from %r failed", message.command, client)


# Decides, from a new connection's first bytes, whether a person is typing (textuser.sniff).
Sniffer = Callable[["Connection"], bytes]


class Connection:
    """A connected socket: threads, Outbox, flood gate; the Link of one core Client."""

    # Queue fan-out bytes: for the flusher (Outbox.deliver), or on TLS for the writer thread.
    # Never sent from the calling thread: one thread sending 500 lines would make 500
    # syscalls, while the flusher sends each member its pile in one.
    deliver_bytes: Callable[[bytes], None]

    def __init__(
        self,
        chat: Chat,
        config: NetConfig,
        flusher: Flusher,
        sock: socket.socket,
        address: tuple[str, int],
        tls: ssl.SSLContext | None = None,
        *,
        sniff: Sniffer | None = None,
        rehost: Callable[[Connection, str], bool] | None = None,
        on_close: Callable[[Connection], None] | None = None,
        spawn: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self.chat = chat
        self.config = config
        self.flusher = flusher
        self.sock = sock
        self.tls = TlsTransport(sock, tls) if tls is not None else None
        self.transport: socket.socket | TlsTransport = self.tls or sock
        self.port = address[1]
        self.outbox = Outbox(config.sendq_bytes, self._start_writer)
        # Room messages reach the Outbox without a call of ours per recipient (Chat.publish and
        # core/client.py's Route); not on TLS, whose every write goes through the writer.
        self.fan_out: list[bytes] | None = None
        if tls is None:
            # Fan-out goes straight to the Outbox (one Python call per recipient, not two); the
            # Client binds deliver_bytes and fan_out when made, so this comes first.
            self.deliver_bytes = self.outbox.fan_out_to(self._schedule, self._sendq_exceeded)
            self.fan_out = self.outbox.fan_out
        else:
            self.deliver_bytes = self._deliver_tls
        self.client = chat.client(self, address[0])
        self.client.secure = tls is not None
        self.codec: Codec = IrcCodec(self)
        self.connected_at = time.monotonic()
        self.buffer = LineBuffer()
        self.flood = FloodGate(config.flood_burst, config.flood_rate, config.flood_max_lag) if config.flood else None
        self._sniff = sniff
        # Runs a thread start elsewhere (the server's starters); None: here.
        self._spawn = spawn
        self._rehost = rehost
        self._on_close = on_close
        self._killed = threading.Event()
        # The client hung up while its lines were held in fake lag: the rest are dropped.
        self._hung_up = False
        # The reader is waiting out this client's fake lag (flood control).
        self._holding = False
        self._writer = threading.Thread(target=self._write_loop, name=f"writer-{self.port}", daemon=True)
        self._writer_started = False
        # Set once the writer asked for has been started (or could not be): the starters run it
        # a moment later, and an ending connection must wait for it before shutting the socket,
        # or the ERROR it was left to send is lost.
        self._writer_launched = threading.Event()
        self._reader = threading.Thread(target=self._read_loop, name=f"reader-{self.port}", daemon=True)

    def __repr__(self) -> str:
        return f"<Connection {self.client.nick} {self.client.host}:{self.port}>"

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
        if self._spawn is not None:
            # Thread.start() waits until the new thread has run, i.e. for the GIL: on a busy
            # server 5 ms or more, which the flusher (or whoever found the socket full) must
            # not spend. What is queued meanwhile waits in the Outbox for the writer.
            self._spawn(self._launch_writer)
        else:
            self._launch_writer()

    def _launch_writer(self) -> None:
        try:
            self._writer.start()
        except RuntimeError:
            # No thread to be had: this client can't be written to, so end it.
            log.warning("no writer thread for %r: disconnecting it", self)
            self._shutdown()
        finally:
            self._writer_launched.set()

    def join_threads(self, timeout: float) -> None:
        """Wait for the threads to end, for at most timeout seconds."""
        deadline = time.monotonic() + timeout
        for t in (self._reader, self._writer):
            if t.is_alive() and t is not threading.current_thread():
                t.join(max(0.0, deadline - time.monotonic()))

    # -- the Link the core sees ------------------------------------------------------

    def _deliver_tls(self, data: bytes) -> None:
        """deliver_bytes on TLS: every write goes through the writer thread."""
        if not self.outbox.put(data):
            self._sendq_exceeded()

    def _schedule(self) -> None:
        self.flusher.schedule(self)

    def _sendq_exceeded(self) -> None:
        self.client.kill("SendQ exceeded", flush=False)

    def send_bytes(self, data: bytes) -> None:
        """Send or queue raw bytes; a client whose queue is full is disconnected.

        On a plain socket with nothing queued the calling thread sends at once without
        blocking (Outbox.offer); the writer thread only handles what the socket won't take.
        """
        ok = self.outbox.offer(data, self._send_now) if self.tls is None else self.outbox.put(data)
        if not ok:
            self.client.kill("SendQ exceeded", flush=False)

    def rehost(self, host: str) -> bool:
        """Count this connection under another address (WEBIRC); False if that one is full."""
        return self._rehost(self, host) if self._rehost is not None else False

    def local_host(self) -> str | None:
        """The server-side address of this connection."""
        try:
            return str(self.sock.getsockname()[0])
        except OSError:
            return None

    def flush(self) -> bool:
        """The flusher's turn to send what is queued; True if more came meanwhile."""
        again = self.outbox.flush(self._send_now)
        if self.outbox.overflowed:
            self._sendq_exceeded()
            return False
        return again

    def _send_now(self, data: bytes) -> int:
        try:
            return self.sock.send(data, socket.MSG_DONTWAIT)
        except BlockingIOError:
            raise
        except OSError:
            # Broken (the peer reset or went away): the Outbox drops what is queued; shutting
            # the socket makes sure the reader ends the session even if it had not noticed.
            self._shutdown()
            raise

    def kill(self, reason: str, flush: bool = True) -> None:
        """End the connection from any thread: send ERROR, then close.

        With flush=False the socket is shut at once, for a client that is not
        reading: waiting on it would never end.
        """
        if self._killed.is_set():
            return
        self._killed.set()
        error = self.client.encode(Message("ERROR", (f"Closing link: {self.client.host} ({reason})",)))
        if flush:
            # Sent from this thread without blocking; a writer is left (or started) only for
            # what a live socket would not take at once. TLS writes all go through its writer.
            if not self.outbox.close(error, self._send_now if self.tls is None else None) and (
                threading.current_thread() is not self._reader
            ):
                # All sent: end it now (the reader wakes from its recv). From the reader itself
                # (QUIT), its own ending closes the socket, after the user has left the hub: a
                # client that sees the close may count on its nick being free.
                self._shutdown()
            return
        with contextlib.suppress(OSError):
            if self.tls is None:  # a plaintext line would only corrupt a TLS stream
                self.sock.send(error, socket.MSG_DONTWAIT)
        self.outbox.close(drop_rest=True)  # it isn't reading: what is queued would never arrive
        self._shutdown()

    def behind(self) -> bool:
        """Whether the client sent something the server has not read yet because it is busy.

        Not while its reader holds it back in fake lag: then the client is the one too fast.
        """
        return not self._holding and unread_bytes(self.sock) > 0

    @property
    def killed(self) -> bool:
        """Whether the connection is ending."""
        return self._killed.is_set()

    def _shutdown(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    # -- threads ------------------------------------------------------------

    def _read_loop(self) -> None:
        try:
            if self.tls is not None:
                # TLS listeners serve IRC clients only: there is no person typing at openssl s_client.
                try:
                    self.tls.handshake(self.config.registration_timeout)
                except OSError as err:
                    log.info("TLS handshake with %s failed: %s", self.client.host, err)
                    return
                data = b""
            else:
                # The first bytes decide whether this is an IRC client or a person at nc/telnet.
                data = self._sniff(self) if self._sniff is not None else b""
            while not self._killed.is_set() and not self._hung_up:
                if data:
                    self.client.last_seen = time.monotonic()
                    self._receive(data)
                    if self._killed.is_set():
                        break  # a QUIT (or any end decided by a line) read just now
                if not self.client.registered and not self._input_in_time():
                    self.client.kill("Registration timed out")
                    break
                try:
                    data = self.transport.recv(RECV_BYTES)
                except OSError:
                    break
                if not data:
                    break
        except Exception:
            log.exception("reader for %r failed", self)
            self.client.quit_reason = self.client.quit_reason or "Internal error"
        finally:
            self._finish()

    def _input_in_time(self) -> bool:
        """Wait for an unregistered client's next bytes until its deadline; False if none came.

        The registration deadline is kept here, by the thread that reads, rather than by the
        reaper: only this thread knows whether what the client sent is still being handled.
        On a server too busy to keep up (a join storm) a reader can sit for many seconds with
        NICK and USER already read but not yet acted on, and a client must not be dropped for
        the server's lateness. So a client is timed out only for its own silence: nothing
        arrived by the deadline. One that keeps sending without registering is let go at four
        times the deadline.
        """
        if self.tls is not None and self.tls.pending():
            return True
        timeout = self.config.registration_timeout
        left = self.connected_at + timeout - time.monotonic()
        if left < -3 * timeout:
            return False
        poller = select.poll()
        poller.register(self.sock, select.POLLIN | HANGUP)
        return bool(poller.poll(max(0, math.ceil(left * 1000))))

    def _receive(self, data: bytes) -> None:
        lines = self.buffer.feed(self.codec.strip(data))
        for index, line in enumerate(lines):
            if self.flood is not None and not self._admit(lines, index):
                break
            self.codec.handle_line(line)
            if self._killed.is_set():
                break

    def _admit(self, lines: list[bytes | LineTooLong], index: int) -> bool:
        """Wait out this line's fake lag; False if the client floods or was killed meanwhile."""
        assert self.flood is not None
        try:
            wait = self.flood.charge()
        except Flooding:
            self.client.kill("Excess Flood")
            return False
        if not wait:
            return True
        # Held back: what is still waiting, here and in the kernel, must stay small.
        backlog = sum(len(x) for x in lines[index + 1 :] if isinstance(x, bytes)) + unread_bytes(self.sock)
        if backlog > self.config.flood_max_backlog:
            self.client.kill("Excess Flood")
            return False
        return self._hold(wait)

    def _hold(self, wait: float) -> bool:
        """Wait out fake lag; False if the connection was killed or the client hung up meanwhile.

        A client that sent a pile of lines and closed its socket must not go on speaking for
        minutes after it left: once it has hung up, what it still has waiting in fake lag is
        dropped and it QUITs at once.
        """
        poller = select.poll()
        poller.register(self.sock, HANGUP)
        deadline = time.monotonic() + wait
        self._holding = True
        try:
            while not self._killed.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return True
                if poller.poll(max(1, int(min(left, LAG_SLICE) * 1000))):
                    self._hung_up = True
                    return False
            return False
        finally:
            self._holding = False

    def _finish(self) -> None:
        if self._on_close is not None:
            self._on_close(self)
        try:
            disconnect(self.chat, self.client, self.client.quit_reason or "Connection closed")
        except Exception:
            log.exception("removing %r failed", self)
        self._killed.set()
        # The reader saw EOF or an error (or a kill already closed the outbox, and then this does
        # nothing). A client that only shut its sending side still gets what can be sent from
        # this thread without blocking; the rest is dropped, as is everything for a peer that is
        # gone: when thousands leave at once, a writer thread each would freeze the server.
        if self.tls is not None:
            self.outbox.close()  # its writer is already running, and drains it
        else:
            self.outbox.close(send_now=None if self._hung_up else self._send_now, drop_rest=True)
        # Give the writer, if this connection has one, a moment to flush a final ERROR,
        # then make sure it cannot hang.
        if self._writer_started:
            self._writer_launched.wait(2.0)
        if self._writer.is_alive():
            self._writer.join(2.0)
        self._shutdown()
        if self._writer.is_alive():
            self._writer.join(1.0)
        _discard_input(self.sock)
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
