"""The /ws relay: one browser WebSocket <-> one TCP connection to the chat server.

It speaks the IRCv3 WebSocket transport (ircv3.net/specs/extensions/websocket):
one IRC line per WebSocket message, never with its CRLF, in text mode
(`text.ircv3.net`, or no subprotocol at all) or binary mode (`binary.ircv3.net`).
The bridge does not interpret IRC beyond that: the chat server is the one source
of truth, and a browser is an ordinary client to it. The bridge's own first line
is `WEBIRC`, which tells the server the browser's real address.

Threads: per WebSocket, the request thread (the flask-sock handler) relays
browser -> server, and simple-websocket's reader thread reads the browser's
socket; server -> browser goes through the app's one Pump thread (pump.py),
which watches every relay's chat-server socket and writes each browser what it
is owed, one frame per line but all of them in one non-blocking write. Every
write to a browser, simple-websocket's pongs and close frames included, goes
through Relay._write, so bytes never interleave mid-frame. Whichever side ends
first closes the other at once, so a closed tab is a QUIT for everyone else
right away, not a ghost until a ping timeout. Every Relay is registered in a
RelayRegistry so that the web server can end them all when it stops.

Admission: a storm of browsers must not starve users of the IRC port, so only
ADMIT_AT_ONCE browsers register at a time; the rest wait before their handshake
and, past ADMIT_WAIT_SECONDS, get a 503 with Retry-After (the page reconnects
with backoff after any failed connection). What the relay needs of simple-websocket beyond its
public API goes through wsadapter.WsAdapter, never straight to the ws object.
Frames that never become lines (pings, pongs, empty ones) are answered inside
simple-websocket, out of the chat server's sight, so the relay gives them a flood
budget of its own and closes a WebSocket that exceeds it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, g, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed
from werkzeug.datastructures import Headers

from backend.irc import LineBuffer, LineTooLong
from backend.net.flood import FloodGate, Flooding

from . import session, uploads
from .pump import Pump
from .wsadapter import WebSocket, WsAdapter

log = logging.getLogger("lobby.bridge")

TEXT_SUBPROTOCOL = "text.ircv3.net"
BINARY_SUBPROTOCOL = "binary.ircv3.net"
SUBPROTOCOLS = [TEXT_SUBPROTOCOL, BINARY_SUBPROTOCOL]
MAX_FRAME_BYTES = 8192
PING_INTERVAL = 25.0
GATEWAY_NAME = "lobby-web"

# RFC 6455 close codes the relay uses.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN_LATER = 1013

RECV_BYTES = 16384
# How often the request thread looks up from ws.receive() to see whether the
# relay was closed from elsewhere. It is a safety net only: data, a close and
# the end of simple-websocket's reader thread wake it at once through the
# WebSocket's own event, so this can be long (a 1 s poll cost 2,000 idle
# browsers a tenth of a core).
POLL_SECONDS = 10.0
# How long a closing relay waits for the browser to answer its close frame
# before it shuts the socket under it (a vanished peer never answers).
CLOSE_GRACE_SECONDS = 0.5
CONNECT_TIMEOUT_SECONDS = 5.0
# simple-websocket queues what the browser sends without limit, and we stop
# taking from that queue while the chat server isn't reading from us (flood
# control's fake lag does that). So: a browser this far ahead is cut off, and a
# send to the server may block this long at most. Pasting a page of text is a
# handful of lines; only a flooder gets near either limit.
MAX_PENDING_FRAMES = 256
UPSTREAM_SEND_TIMEOUT_SECONDS = 10
# Frames that never become IRC lines (pings, pongs, empty frames and empty
# continuations) are answered or dropped by simple-websocket and never reach the
# chat server's flood control, so the relay budgets them itself, with the server's
# default budget for lines: a burst of 20, then 4 a second; further than 15 s
# ahead of that, the WebSocket is closed (1008).
FRAME_FLOOD_BURST = 20
FRAME_FLOOD_RATE = 4.0
FRAME_FLOOD_MAX_LAG = 15.0
# Admission: at most this many browsers register at once (from the WebSocket
# handshake until their first end of NAMES, or ADMIT_HOLD_SECONDS at most); the
# others wait before their handshake, up to ADMIT_WAIT_SECONDS, then get a 503
# with Retry-After (the page retries with backoff). A storm of browsers thus
# runs a few at a time, and users of the IRC port keep their share of the
# server. App config LOBBY_WS_ADMIT, LOBBY_WS_ADMIT_WAIT and LOBBY_WS_ADMIT_HOLD override.
ADMIT_AT_ONCE = 64
ADMIT_WAIT_SECONDS = 30.0
ADMIT_HOLD_SECONDS = 10.0
RETRY_AFTER_SECONDS = 5
END_OF_NAMES = b" 366 "

bp = Blueprint("relay", __name__)
sock = Sock()
_relay_ids = itertools.count(1)


class Admission:
    """How many browsers may be registering at once; the rest wait their turn or are turned away.

    A slot is taken before the WebSocket handshake and given back when the
    browser has joined (its first end of NAMES), when its relay ends, or after
    `hold` seconds, whichever is first, so that a browser that never registers
    can't keep a slot. Waiters are served as slots free up; one that has waited
    `wait` seconds is refused (the caller answers 503 with Retry-After).
    """

    def __init__(self, limit: int = ADMIT_AT_ONCE, wait: float = ADMIT_WAIT_SECONDS,
                 hold: float = ADMIT_HOLD_SECONDS) -> None:
        self.limit = max(1, limit)
        self.wait = wait
        self.hold = hold
        self._cond = threading.Condition()
        self._held: dict[int, float] = {}  # ticket -> when its slot lapses
        self._tickets = itertools.count(1)
        self._closed = False
        self.waiting = 0

    def enter(self) -> Callable[[], None] | None:
        """Wait for a slot; return the function that gives it back, or None if refused."""
        deadline = time.monotonic() + self.wait
        with self._cond:
            self.waiting += 1
            try:
                while not self._closed:
                    now = time.monotonic()
                    for ticket in [t for t, lapse in self._held.items() if lapse <= now]:
                        del self._held[ticket]
                    if len(self._held) < self.limit:
                        ticket = next(self._tickets)
                        self._held[ticket] = now + self.hold
                        return lambda: self._leave(ticket)
                    if now >= deadline:
                        return None
                    self._cond.wait(min(deadline, *self._held.values()) - now)
                return None
            finally:
                self.waiting -= 1

    def _leave(self, ticket: int) -> None:
        with self._cond:
            if self._held.pop(ticket, None) is not None:
                self._cond.notify()

    def busy(self) -> int:
        """How many slots are taken now."""
        with self._cond:
            return len(self._held)

    def close(self) -> None:
        """Refuse everyone from now on, those waiting included: the web server is stopping."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        """Admit again: the web server has started (again)."""
        with self._cond:
            self._closed = False


class RelayRegistry:
    """The live relays of one app, so that a stopping web server can end them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._relays: set[Relay] = set()
        self.pump = Pump()

    def reopen(self) -> None:
        """A web server starts serving this app (again): a stopped Pump is replaced by a fresh one."""
        with self._lock:
            if self.pump.stopped:
                self.pump = Pump()

    def add(self, relay: Relay) -> None:
        """Track a relay that has started."""
        with self._lock:
            self._relays.add(relay)

    def discard(self, relay: Relay) -> None:
        """Forget a relay that has ended."""
        with self._lock:
            self._relays.discard(relay)

    def __len__(self) -> int:
        with self._lock:
            return len(self._relays)

    def close_all(self, reason: str = "Server shutting down") -> list[threading.Thread]:
        """Close every relay (going away), stop the Pump; return its thread for the caller to join."""
        with self._lock:
            relays = list(self._relays)
        # First silence every pump, then close: otherwise each closing relay's
        # QUIT is relayed to all the others still open, N² frames on the way out.
        for relay in relays:
            relay.silence()
        for relay in relays:
            relay.close(CLOSE_GOING_AWAY, reason)
        thread = self.pump.stop()
        return [thread] if thread is not None else []


def webirc_line(secret: str, ip: str, account: str | None = None) -> str:
    """The WEBIRC line naming a browser at ip; no reverse DNS, so the host is the address.

    The webirc spec: an IPv6 address that starts with ':' is prefixed with '0',
    or it would read as the trailing parameter. A browser signed in on the page
    (session.py) is named by the `account=` option, which the server trusts
    because only the bridge knows the secret.
    """
    address = "0" + ip if ip.startswith(":") else ip
    options = f" :account={account}" if account else ""
    return f"WEBIRC {secret} {GATEWAY_NAME} {address} {address}{options}"


def split_frame(data: str | bytes) -> list[bytes]:
    """The IRC lines in one browser frame, as UTF-8 bytes without line endings.

    The transport says one line per message, without CRLF; we are lenient like
    the TCP side (a trailing CRLF is dropped, an embedded one separates lines)
    so that a client bug can never splice half a line onto the next one.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return [line for line in raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n") if line.strip()]


def is_webirc(line: bytes) -> bool:
    """Whether a browser's line is a WEBIRC command: only the bridge may send those."""
    words = line.split()
    while words and words[0][:1] in (b"@", b":"):
        words = words[1:]
    return bool(words) and words[0].upper() == b"WEBIRC"


class Relay:
    """One browser's WebSocket and its TCP connection to the chat server."""

    def __init__(self, ws: WebSocket, upstream: socket.socket, binary: bool,
                 max_frame_bytes: int = MAX_FRAME_BYTES, registry: RelayRegistry | None = None,
                 admitted: Callable[[], None] | None = None, greeting: str | None = None,
                 uploader: uploads.Uploader | None = None) -> None:
        self.ws = WsAdapter(ws)
        # Gives back this browser's admission slot once it has joined (or the relay ends).
        self._admitted = admitted
        # The bridge's own line for the browser once it is registered (its upload ticket).
        self.greeting = greeting
        # Who this browser's uploads are from: its nick, followed from the server's lines (uploads.follow).
        self.uploader = uploader
        self.upstream = upstream
        self.binary = binary
        self.max_frame_bytes = max_frame_bytes
        self.registry = registry
        self.buffer = LineBuffer()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._silenced = threading.Event()
        self.frame_budget = FloodGate(FRAME_FLOOD_BURST, FRAME_FLOOD_RATE, FRAME_FLOOD_MAX_LAG)
        # Server -> browser goes through the app's one Pump; a relay on its own gets a Pump of its own.
        self._own_pump = registry is None
        self._pump = registry.pump if registry is not None else Pump(f"relay-pump-{next(_relay_ids)}")
        self._pump_done = threading.Event()
        self._out = bytearray()
        self._out_lock = threading.Lock()

    # -- the request thread: browser -> server ----------------------------------

    def run(self) -> None:
        """Relay until either side ends; return only when both are closed."""
        if self.registry is not None:
            self.registry.add(self)
        self.ws.watch_frames(self._charge_frame)
        self.ws.route_writes(self._write_from_elsewhere)
        try:
            if not self._pump.attach(self):
                self._pump_done.set()  # the web server is stopping
                return
            while not self._closing.is_set():
                data = self.ws.receive(timeout=POLL_SECONDS)
                if data is None:
                    continue
                if self.ws.pending_frames() > MAX_PENDING_FRAMES:
                    self.close(CLOSE_POLICY, "Too many messages at once")
                    break
                self._forward(data)
        except (ConnectionClosed, OSError):
            pass
        finally:
            self.close(CLOSE_NORMAL, "")
            self._finish()

    def _forward(self, data: str | bytes) -> None:
        size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
        if size > self.max_frame_bytes:
            # simple-websocket's max_message_size counts characters of a text
            # frame; this counts its bytes, so multi-byte text can't slip past.
            self.close(CLOSE_TOO_BIG, "Message too big")
            return
        lines = [line for line in split_frame(data) if not is_webirc(line)]
        if lines:
            self.upstream.sendall(b"".join(line + b"\r\n" for line in lines))

    def _charge_frame(self, kind: str) -> None:
        """On simple-websocket's reader thread: a frame that carries no line draws on the budget."""
        try:
            self.frame_budget.charge()
        except Flooding:
            if self._closing.is_set():
                return
            log.info("closing a WebSocket that sent too many %s frames", kind)
            self.close(CLOSE_POLICY, "Too many control or empty frames")
            # Let the flooder's last frames in, so that it gets our close frame, not a reset.
            self.ws.discard_input(quiet=0.1, limit=CLOSE_GRACE_SECONDS)

    # -- on the Pump's thread: server -> browser ---------------------------------

    def pump_readable(self) -> bool:
        """Pass on what the chat server sent; False once it has closed (or we have)."""
        if self._closing.is_set():
            return False
        try:
            data = self.upstream.recv(RECV_BYTES, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        if not data:
            return False
        if self._admitted is not None and END_OF_NAMES in data:
            self._admit_done()
        # The server never sends an over-long line; don't pass on what it didn't mean.
        lines = [line for line in self.buffer.feed(data) if not isinstance(line, LineTooLong)]
        # Only the welcome and NICK lines matter, so most chunks cost a substring search or two here (the
        # first line may have begun in the previous chunk).
        if self.uploader is not None and lines and (self.greeting is not None or b" NICK " in data
                                                    or b" NICK " in lines[0]):
            uploads.follow(self.uploader, lines)
        if self.greeting is not None:
            welcome = next((i for i, line in enumerate(lines) if uploads.is_welcome(line)), None)
            if welcome is not None:
                # Right after the welcome, so the page knows its upload ticket before anything else.
                lines.insert(welcome + 1, self.greeting.encode())
                self.greeting = None
        if not lines or self._silenced.is_set():
            return True
        # A text frame must be valid UTF-8: replace what isn't.
        messages = lines if self.binary else [line.decode("utf-8", errors="replace") for line in lines]
        # One frame per line, as the transport says, but all of them in one write.
        frames = self.ws.encode(messages)
        if frames is None:
            self.ws.send_many(messages)  # a WebSocket without the internals (a test double)
        else:
            self._write(frames)
        return True

    def pump_flush(self) -> bool:
        """Write what waits for the browser, without blocking; True once nothing is left."""
        raw = self.ws.raw_socket()
        with self._out_lock:
            if self._out and raw is not None:
                with contextlib.suppress(BlockingIOError):
                    del self._out[:raw.send(self._out, socket.MSG_DONTWAIT)]
            return not self._out

    def pump_backlog(self) -> bool:
        """Whether output waits for room in the browser's socket."""
        with self._out_lock:
            return bool(self._out)

    def pump_browser_fd(self) -> int | None:
        """The browser's socket, for the Pump to watch for room."""
        raw = self.ws.raw_socket()
        return raw.fileno() if raw is not None and raw.fileno() >= 0 else None

    def pump_ended(self) -> None:
        """The Pump has let go of our sockets: close (if not already) and let _finish go on."""
        self._pump_done.set()
        self.close(CLOSE_NORMAL, "The chat server closed the connection")

    # -- every write to the browser, whichever thread ---------------------------------

    def _write(self, data: bytes) -> bool:
        """Write to the browser in order without ever blocking; True if all of it went now.

        What doesn't fit waits in _out for the Pump. simple-websocket's own writes
        (pongs, close frames) come here too (WsAdapter.route_writes), so nothing
        can be written into the middle of a frame that only partly went out.
        """
        raw = self.ws.raw_socket()
        with self._out_lock:
            if not self._out and raw is not None:
                with contextlib.suppress(BlockingIOError):
                    data = data[raw.send(data, socket.MSG_DONTWAIT):]
            if data:
                self._out += data
            return not self._out

    def _write_from_elsewhere(self, data: bytes) -> int:
        """simple-websocket's writes (its reader thread, close()): the Pump finishes what doesn't fit."""
        if not self._write(data):
            self._pump.want_write(self)
        return len(data)

    def _admit_done(self) -> None:
        admitted, self._admitted = self._admitted, None
        if admitted is not None:
            admitted()

    # -- closing -----------------------------------------------------------------

    def silence(self) -> None:
        """Stop passing server lines to the browser: the relay is about to close."""
        self._silenced.set()

    def close(self, code: int = CLOSE_NORMAL, reason: str = "") -> None:
        """Close both sides, once, from any thread; the first caller's code wins."""
        with self._lock:
            if self._closing.is_set():
                return
            self._closing.set()
        # Shutting the TCP side down wakes the pump and makes the chat server see
        # an end of file now, which it turns into a QUIT for everyone else.
        with contextlib.suppress(OSError):
            self.upstream.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(Exception):
            self.ws.close(code, reason)
        # The request thread may sit in ws.receive(): the WebSocket's event wakes it.
        self.ws.wake_reader()

    def abort(self) -> None:
        """Shut the browser's socket under the relay: for a peer that stopped answering."""
        self.close(CLOSE_GOING_AWAY, "")
        self.ws.shutdown_socket()

    def _finish(self) -> None:
        """After close(): let the close handshake finish, then make sure every thread ends."""
        self.ws.join_reader(CLOSE_GRACE_SECONDS)
        self._pump_done.wait(CLOSE_GRACE_SECONDS)
        # Whatever is still running is waiting on a browser that doesn't answer;
        # shutting the socket also keeps werkzeug from writing an HTTP response
        # after the WebSocket's close frame (and ends the Pump's wait for room).
        self.abort()
        self._pump_done.wait()
        self.ws.join_reader(CLOSE_GRACE_SECONDS)
        self.upstream.close()
        self._admit_done()
        if self._own_pump:
            thread = self._pump.stop()
            if thread is not None:
                thread.join()
        if self.registry is not None:
            self.registry.discard(self)


def close_alone(ws: WsAdapter, code: int, reason: str) -> None:
    """Close a WebSocket that never got a relay, the way a Relay closes its own.

    The browser gets our close frame and a moment to answer it before the socket
    is shut: only then does it see our code and reason (werkzeug writes an HTTP
    response after the handler returns, which would spoil the close otherwise),
    and simple-websocket's reader thread ends with it.
    """
    with contextlib.suppress(Exception):
        ws.close(code, reason)
    ws.join_reader(CLOSE_GRACE_SECONDS)
    ws.shutdown_socket()
    ws.join_reader(CLOSE_GRACE_SECONDS)


# -- the HTTP side --------------------------------------------------------------------


def origin_allowed(origin: str | None, host: str, scheme: str, extra: list[str] | tuple[str, ...] = ()) -> bool:
    """Whether a WebSocket handshake's Origin is the page's own (or listed as trusted).

    A missing Origin is allowed: browsers always send one on a WebSocket, so its
    absence means a non-browser client, which cross-site hijacking can't involve.
    """
    if origin is None:
        return True
    if origin in extra:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # "null" (sandboxed frames, file:) and anything stranger
    page_scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    return parts.scheme == page_scheme and parts.netloc.lower() == host.lower()


@bp.before_request
def check_origin() -> Response | None:
    """Refuse a cross-site WebSocket before any handshake or relay happens (403)."""
    allowed = current_app.config.get("LOBBY_ALLOWED_ORIGINS", ())
    if origin_allowed(request.headers.get("Origin"), request.host, request.scheme, tuple(allowed)):
        return None
    log.info("refused a WebSocket from origin %r for host %r", request.headers.get("Origin"), request.host)
    return Response("cross-origin WebSocket refused\n", status=403, mimetype="text/plain",
                    headers=Headers({"Cache-Control": "no-store"}))


@bp.before_request
def no_compression() -> None:
    """Offer no permessage-deflate: simple-websocket accepts it whenever a browser asks (all do).

    IRC lines are short, and a compressor and decompressor per browser cost
    about 300 KB of memory each and a zlib call per frame; without it the relay
    frames lines itself (wsadapter.server_frame), several times cheaper.
    """
    request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)


@bp.before_request
def admit() -> Response | None:
    """Wait for an admission slot before the handshake; 503 with Retry-After if none comes in time."""
    admission = current_app.extensions.get("lobby.admission")
    if not isinstance(admission, Admission):
        return None
    leave = admission.enter()
    if leave is not None:
        g.lobby_admitted = leave
        return None
    log.info("asked a browser at %s to come back later: %d registering, %d waiting",
             request.remote_addr, admission.busy(), admission.waiting)
    return Response("Too many browsers arriving at once; try again shortly.\n", status=503, mimetype="text/plain",
                    headers=Headers({"Cache-Control": "no-store", "Retry-After": str(RETRY_AFTER_SECONDS)}))


@bp.teardown_request
def give_back_admission(_: BaseException | None) -> None:
    """A request that never became a relay (refused, failed) gives its slot back here."""
    leave = g.pop("lobby_admitted", None)
    if leave is not None:
        leave()


@sock.route("/ws", bp=bp)  # type: ignore[untyped-decorator]  # flask-sock has no type hints
def relay(ws: WebSocket) -> None:
    """Bridge one browser to the chat server until either side leaves."""
    config = current_app.config
    adapter = WsAdapter(ws)
    # The request socket may carry the HTTP handler's header timeout; a WebSocket must block.
    adapter.make_blocking()
    address = config["LOBBY_CHAT_ADDRESS"]
    try:
        upstream = socket.create_connection(tuple(address), timeout=CONNECT_TIMEOUT_SECONDS)
    except OSError as err:
        log.warning("bridge cannot reach the chat server at %s: %s", address, err)
        close_alone(adapter, CLOSE_TRY_AGAIN_LATER, "The chat server is not reachable")
        return
    upstream.settimeout(None)
    upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # Sends fail (OSError) instead of blocking forever on a server that stopped reading.
    upstream.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", UPSTREAM_SEND_TIMEOUT_SECONDS, 0))
    secret = config.get("LOBBY_WEBIRC_PASSWORD")
    account = session.signed_in_account() if secret else None
    try:
        if secret:
            line = webirc_line(secret, request.remote_addr or "0.0.0.0", account)
            upstream.sendall(line.encode() + b"\r\n")
    except OSError:
        upstream.close()
        close_alone(adapter, CLOSE_TRY_AGAIN_LATER, "The chat server is not reachable")
        return
    binary = adapter.subprotocol() == BINARY_SUBPROTOCOL
    registry = current_app.extensions.get("lobby.relays")
    # With uploads on, this connection's ticket lives exactly as long as the relay.
    book = uploads.tickets()
    uploader = uploads.Uploader(account=account)
    ticket = book.issue(uploader) if book is not None else None
    greeting = uploads.ticket_line(ticket, uploads.max_upload_bytes()) if ticket else None
    try:
        Relay(ws, upstream, binary, int(config.get("LOBBY_MAX_FRAME_BYTES", MAX_FRAME_BYTES)), registry,
              g.pop("lobby_admitted", None), greeting, uploader if ticket else None).run()
    finally:
        if book is not None and ticket:
            book.revoke(ticket)
