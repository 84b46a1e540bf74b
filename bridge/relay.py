"""The /ws relay: one browser WebSocket <-> one TCP connection to the chat server.

It speaks the IRCv3 WebSocket transport (ircv3.net/specs/extensions/websocket):
one IRC line per WebSocket message, never with its CRLF, in text mode
(`text.ircv3.net`, or no subprotocol at all) or binary mode (`binary.ircv3.net`).
The bridge does not interpret IRC beyond that: the chat server is the one source
of truth, and a browser is an ordinary client to it. The bridge's own first line
is `WEBIRC`, which tells the server the browser's real address.

Threads, per WebSocket: the request thread (the flask-sock handler) relays
browser -> server; a pump thread relays server -> browser and is the only one
that calls `ws.send`. Whichever side ends first closes the other at once, so a
closed tab is a QUIT for everyone else right away, not a ghost until a ping
timeout. Every Relay is registered in a RelayRegistry so that the web server can
end them all when it stops. What the relay needs of simple-websocket beyond its
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
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed
from werkzeug.datastructures import Headers

from backend.irc import LineBuffer, LineTooLong
from backend.net.flood import FloodGate, Flooding

from . import session, uploads
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
# relay was closed from elsewhere. It is a safety net only: closing normally
# wakes it at once through the WebSocket's own event.
POLL_SECONDS = 1.0
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

bp = Blueprint("relay", __name__)
sock = Sock()
_relay_ids = itertools.count(1)


class RelayRegistry:
    """The live relays of one app, so that a stopping web server can end them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._relays: set[Relay] = set()

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
        """Close every relay (going away); return their pump threads for the caller to join."""
        with self._lock:
            relays = list(self._relays)
        # First silence every pump, then close: otherwise each closing relay's
        # QUIT is relayed to all the others still open, N² frames on the way out.
        for relay in relays:
            relay.silence()
        for relay in relays:
            relay.close(CLOSE_GOING_AWAY, reason)
        return [relay.pump for relay in relays]


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
                 greeting: str | None = None) -> None:
        self.ws = WsAdapter(ws)
        # The bridge's own line for the browser once it is registered (its upload ticket).
        self.greeting = greeting
        self.upstream = upstream
        self.binary = binary
        self.max_frame_bytes = max_frame_bytes
        self.registry = registry
        self.buffer = LineBuffer()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._silenced = threading.Event()
        self.frame_budget = FloodGate(FRAME_FLOOD_BURST, FRAME_FLOOD_RATE, FRAME_FLOOD_MAX_LAG)
        self.pump = threading.Thread(target=self._pump_loop, name=f"relay-pump-{next(_relay_ids)}", daemon=True)

    # -- the request thread: browser -> server ----------------------------------

    def run(self) -> None:
        """Relay until either side ends; return only when both are closed."""
        if self.registry is not None:
            self.registry.add(self)
        self.ws.watch_frames(self._charge_frame)
        try:
            self.pump.start()
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

    # -- the pump thread: server -> browser --------------------------------------

    def _pump_loop(self) -> None:
        code, reason = CLOSE_NORMAL, "The chat server closed the connection"
        try:
            while not self._closing.is_set():
                data = self.upstream.recv(RECV_BYTES)
                if not data:
                    break
                for line in self.buffer.feed(data):
                    if self._silenced.is_set():
                        break
                    if isinstance(line, LineTooLong):
                        continue  # the server never sends these; don't pass on what it didn't mean
                    if self.binary:
                        self.ws.send(line)
                    else:
                        # A text frame must be valid UTF-8: replace what isn't.
                        self.ws.send(line.decode("utf-8", errors="replace"))
                    if self.greeting is not None and uploads.is_welcome(line):
                        self.ws.send(self.greeting.encode() if self.binary else self.greeting)
                        self.greeting = None
        except (ConnectionClosed, OSError):
            pass
        except Exception:
            # wsproto refuses to send after a close (LocalProtocolError) and the like.
            log.debug("relay pump ended", exc_info=True)
        finally:
            self.close(code, reason)

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
        self.pump.join(CLOSE_GRACE_SECONDS)
        # Whatever is still running is waiting on a browser that doesn't answer;
        # shutting the socket also keeps werkzeug from writing an HTTP response
        # after the WebSocket's close frame.
        self.abort()
        self.pump.join()
        self.ws.join_reader(CLOSE_GRACE_SECONDS)
        self.upstream.close()
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
    try:
        if secret:
            line = webirc_line(secret, request.remote_addr or "0.0.0.0", session.signed_in_account())
            upstream.sendall(line.encode() + b"\r\n")
    except OSError:
        upstream.close()
        close_alone(adapter, CLOSE_TRY_AGAIN_LATER, "The chat server is not reachable")
        return
    binary = adapter.subprotocol() == BINARY_SUBPROTOCOL
    registry = current_app.extensions.get("lobby.relays")
    # With uploads on, this connection's ticket lives exactly as long as the relay.
    book = uploads.tickets()
    ticket = book.issue() if book is not None else None
    greeting = uploads.ticket_line(ticket, uploads.max_upload_bytes()) if ticket else None
    try:
        Relay(ws, upstream, binary, int(config.get("LOBBY_MAX_FRAME_BYTES", MAX_FRAME_BYTES)), registry,
              greeting).run()
    finally:
        if book is not None and ticket:
            book.revoke(ticket)
