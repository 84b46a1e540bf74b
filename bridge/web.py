"""Running the web app: a threaded WSGI server that our own code starts and stops.

werkzeug's ThreadedWSGIServer gives every HTTP connection a thread; a WebSocket
keeps its thread (and simple-websocket's reader thread) for as long as it is
open, and shares the relays' one Pump thread. WebServer adds what a long-running process needs around
it: binding that reports errors instead of exiting, the bound address (port 0
picks a free one), and a stop() that really ends every thread it started:
relays are closed, lingering connections are shut, and threads are joined.

Against slow clients: a connection must send its whole request head (the request
line and headers, a WebSocket handshake included) within a total deadline, not
just some byte every so often; the serving thread's poll loop shuts the sockets
of those that are late. Responses say `Server: Lobby`, not which versions of
werkzeug and Python answer.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import Counter
from typing import Any

from flask import Flask
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from backend.core.addresses import is_loopback

from .relay import Admission, RelayRegistry

log = logging.getLogger("lobby.web")

BACKLOG = 1024
# How often serve_forever looks for a shutdown request: stop() waits this long at most.
POLL_SECONDS = 0.1
# A connection that hasn't sent its request headers by then is dropped, so idle
# sockets can't hold threads forever. The relay lifts it for WebSockets.
HEADER_TIMEOUT_SECONDS = 20.0
# ... and one that sends them a byte at a time ("slowloris") is dropped once its
# request head has taken this long in all (app config LOBBY_HEAD_TIMEOUT overrides).
HEAD_TIMEOUT_SECONDS = 12.0
SERVER_HEADER = "Lobby"
# How long stop() lets closing WebSockets say goodbye before shutting their sockets.
CLOSE_GRACE_SECONDS = 0.3


class _RequestHandler(WSGIRequestHandler):
    """werkzeug's handler, quieter: one log line per request is debug, not info."""

    timeout = HEADER_TIMEOUT_SECONDS

    def version_string(self) -> str:
        """The Server header: our name only, no versions for a scanner to match."""
        return SERVER_HEADER

    def parse_request(self) -> bool:
        """Read the headers; once they are in, the head deadline no longer applies."""
        complete = super().parse_request()
        if isinstance(self.server, _TrackingServer):
            self.server.head_complete(self.request)
        return complete

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug('%s "%s" %s %s', self.address_string(), getattr(self, "requestline", ""), code, size)


_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 25\r\n"
         b"Retry-After: 5\r\nConnection: close\r\n\r\nToo many connections now.")


class _TrackingServer(ThreadedWSGIServer):
    """A ThreadedWSGIServer that remembers each connection's thread and socket.

    It also bounds them: every connection costs a thread (a WebSocket, two), so
    past max_connections in all, or max_per_ip from one non-loopback address, a new
    connection gets a 503 at once instead of a thread.
    """

    def __init__(self, *args: Any, max_connections: int, max_per_ip: int, head_timeout: float,
                 **kwargs: Any) -> None:
        self.active: dict[threading.Thread, socket.socket] = {}
        self.active_lock = threading.Lock()
        self.max_connections = max_connections
        self.max_per_ip = max_per_ip
        self.head_timeout = head_timeout
        # Connections still sending their request head, and when they must be done.
        self._head_deadlines: dict[socket.socket, tuple[float, str]] = {}
        self._per_ip: Counter[str] = Counter()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        host = str(client_address[0])
        # Registered here, in the serving thread, before the thread starts, so
        # that stop() can never miss a connection that is just beginning.
        thread = threading.Thread(target=self._serve_one, args=(request, client_address),
                                  name=f"web-{client_address[1]}", daemon=True)
        with self.active_lock:
            busy = len(self.active) >= self.max_connections or (
                not is_loopback(host) and self._per_ip[host] >= self.max_per_ip)
            if not busy:
                self.active[thread] = request
                self._per_ip[host] += 1
                self._head_deadlines[request] = (time.monotonic() + self.head_timeout, host)
        if busy:
            log.warning("refused a web connection from %s: too many connections", host)
            self._refuse(request)
            return
        try:
            thread.start()
        except RuntimeError as err:
            # No thread to be had (a pids or memory limit): give the slot back, or capacity
            # would shrink for good and stop() would try to join a thread that never ran.
            log.error("cannot serve a web connection from %s: %s", host, err)
            self._release(thread, request, host)
            self._refuse(request)

    def _refuse(self, request: Any) -> None:
        """Answer 503 without ever blocking, and close the connection."""
        with contextlib.suppress(OSError):
            request.send(_BUSY, socket.MSG_DONTWAIT)
        self.shutdown_request(request)

    def _release(self, thread: threading.Thread, request: Any, host: str) -> None:
        """Forget a connection's thread, socket and per-address count."""
        with self.active_lock:
            self._head_deadlines.pop(request, None)
            if self.active.pop(thread, None) is None:
                return
            self._per_ip[host] -= 1
            if self._per_ip[host] <= 0:
                del self._per_ip[host]

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            self._release(threading.current_thread(), request, str(client_address[0]))

    def head_complete(self, request: socket.socket) -> None:
        """The connection has sent its whole request head: no deadline from now on."""
        with self.active_lock:
            self._head_deadlines.pop(request, None)

    def service_actions(self) -> None:
        """Called by serve_forever every poll: shut connections whose request head is late."""
        now = time.monotonic()
        with self.active_lock:
            late = [(sock, host) for sock, (deadline, host) in self._head_deadlines.items() if deadline <= now]
            for sock, _ in late:
                del self._head_deadlines[sock]
        for sock, host in late:
            log.info("dropped a web connection from %s: no complete request in %.0f s", host, self.head_timeout)
            # The handler's read then ends (end of file), and its thread with it.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class WebServer:
    """The web app on host:port: start() binds and serves, stop() ends every thread."""

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 0,
                 max_connections: int = 4096, max_per_ip: int = 48) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.max_connections = max_connections
        self.max_per_ip = max_per_ip
        self.address: tuple[str, int] = (host, port)
        self._server: _TrackingServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The page's address, e.g. http://127.0.0.1:8000 (IPv6 in brackets)."""
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> tuple[str, int]:
        """Bind, listen and serve in a thread; return the bound address. Raises OSError."""
        # We bind ourselves and hand werkzeug the descriptor: on a bind error
        # werkzeug would print and sys.exit(), and the caller deserves an OSError.
        info = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        family, _, _, _, sockaddr = info[0]
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(sockaddr)
            listener.listen(BACKLOG)
            head_timeout = float(self.app.config.get("LOBBY_HEAD_TIMEOUT", HEAD_TIMEOUT_SECONDS))
            server = _TrackingServer(self.host, self.port, self.app, handler=_RequestHandler, fd=listener.fileno(),
                                     max_connections=self.max_connections, max_per_ip=self.max_per_ip,
                                     head_timeout=head_timeout)
        finally:
            listener.close()  # werkzeug holds its own duplicate of the descriptor
        registry = self.app.extensions.get("lobby.relays")
        if isinstance(registry, RelayRegistry):
            registry.reopen()
        admission = self.app.extensions.get("lobby.admission")
        if isinstance(admission, Admission):
            admission.reopen()
        bound = server.socket.getsockname()
        self.address = (bound[0], bound[1])
        self.app.config["LOBBY_LISTEN_HOST"] = bound[0]  # for the app's Host check
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL_SECONDS},
                                        name="web-serve", daemon=True)
        self._thread.start()
        return self.address

    def stop(self, timeout: float = 1.0) -> None:
        """Stop accepting, close every WebSocket and connection, and join all threads."""
        server, serve_thread = self._server, self._thread
        if server is None or serve_thread is None:
            return
        self._server = self._thread = None
        deadline = time.monotonic() + timeout
        admission = self.app.extensions.get("lobby.admission")
        if isinstance(admission, Admission):
            admission.close()  # browsers waiting for a turn get their 503 now
        server.shutdown()  # returns once serve_forever has left its loop
        serve_thread.join(max(0.0, deadline - time.monotonic()))
        registry = self.app.extensions.get("lobby.relays")
        pumps = registry.close_all() if isinstance(registry, RelayRegistry) else []
        # WebSockets now have their close frame; give browsers a moment to answer.
        grace = min(CLOSE_GRACE_SECONDS, max(0.0, deadline - time.monotonic()))
        _join_all(_threads_of(server), time.monotonic() + grace)
        # Whatever is still open (a silent peer, a request never finished) is cut.
        with server.active_lock:
            sockets = list(server.active.values())
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        left = _join_all([*_threads_of(server), *pumps], max(deadline, time.monotonic() + 0.2))
        if left:
            log.warning("web server threads still running after stop: %s", left)


def _threads_of(server: _TrackingServer) -> list[threading.Thread]:
    with server.active_lock:
        return list(server.active)


def _join_all(threads: list[threading.Thread], deadline: float) -> list[threading.Thread]:
    """Join threads until deadline; return those still alive (one never started is not waited for)."""
    threads = [t for t in threads if t.ident is not None]
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [t for t in threads if t.is_alive()]
