"""The TCP server: listening sockets, the accept threads and the keep-alive reaper.

Threads: one accepts connections per listener and does nothing else, so that the listen
queue never overflows while the server is busy (a client the kernel turns away is dropped
for nothing it did); a few starters set up what was accepted; each connection has a reader
and, when it needs one, a writer (connection.py), and keeps the registration deadline;
one reaper PINGs idle connections and drops those that stop answering. The server keeps
every live Connection so that it can reach them all, for timeouts and for telling them
goodbye at shutdown.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable

from ..core.addresses import is_loopback
from ..core.chat import Chat
from ..irc import Message
from .config import NetConfig
from .connection import Connection
from .flusher import Flusher
from .textuser import sniff

log = logging.getLogger("lobby.server")

# An accepted socket, its peer's address, and the TLS context of the port it came in on.
Arrival = tuple[socket.socket, tuple[str, int], ssl.SSLContext | None]

# Threads setting up accepted connections (and starting writer threads). Thread.start()
# waits until the new thread has run, which on a busy server means waiting for the GIL (a
# switch interval, 5 ms, or more): one starter would take 50 s to start 10,000 readers.
# Several wait side by side.
STARTERS = 16


def _refuse(conn: socket.socket, reason: str) -> None:
    """Tell a connection we won't serve it, without ever blocking on it, and close it."""
    with contextlib.suppress(OSError):
        conn.send(f"ERROR :{reason}\r\n".encode(), socket.MSG_DONTWAIT)
    conn.close()


def format_address(host: str, port: int) -> str:
    """host:port, with brackets around an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class TcpServer:
    """Serves one Chat over TCP: start() binds and serves, stop() tells everyone and ends."""

    def __init__(self, chat: Chat, config: NetConfig) -> None:
        self.chat = chat
        self.config = config
        self._sessions: set[Connection] = set()
        self._sessions_lock = threading.Lock()
        self._stopping = threading.Event()
        self._listeners: list[tuple[socket.socket, ssl.SSLContext | None]] = []
        self._threads: list[threading.Thread] = []
        self._starters: list[threading.Thread] = []
        self._starters_done = False
        self._per_host: Counter[str] = Counter()
        self.address: tuple[str, int] = (self.config.host, self.config.port)
        self.tls_address: tuple[str, int] | None = None
        self.flusher = Flusher(before_pass=chat.joins.drain)
        # Accepted sockets waiting for the starter thread; None tells it to stop.
        # Also writer threads to start (Connection's spawn): a start waits for the GIL.
        self._arrivals: queue.SimpleQueue[Arrival | Callable[[], None] | None] = queue.SimpleQueue()

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> tuple[str, int]:
        """Bind, listen, start the flusher, accept and reaper threads; return the bound address.

        Raises OSError if a port can't be used.
        """
        self.flusher.start()
        # From now on the flusher delivers batched JOINs (core/joinburst.py), once per pass.
        self.chat.joins.wake = self.flusher.poke
        # And room messages are queued in one step per recipient, the flusher handed the lot.
        self.chat.fan_out_ready = self.flusher.ready
        self._listen(self.config.port, None)
        bound = self._listeners[0][0].getsockname()
        self.address = (bound[0], bound[1])
        if self.config.tls_port is not None and self.config.tls_context is not None:
            self._listen(self.config.tls_port, self.config.tls_context)
            tls_bound = self._listeners[1][0].getsockname()
            self.tls_address = (tls_bound[0], tls_bound[1])
        reaper = threading.Thread(target=self._reap_loop, name="reaper", daemon=True)
        reaper.start()
        self._threads.append(reaper)
        return self.address

    def _listen(self, port: int, tls: ssl.SSLContext | None) -> None:
        if not self._starters:
            for i in range(STARTERS):
                starter = threading.Thread(target=self._start_loop, name=f"starter-{i}", daemon=True)
                starter.start()
                self._starters.append(starter)
        info = socket.getaddrinfo(self.config.host, port, type=socket.SOCK_STREAM)
        family, _, _, _, sockaddr = info[0]
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(sockaddr)
            listener.listen(self.config.backlog)
        except OSError:
            listener.close()
            self.stop()
            raise
        listener.settimeout(self.config.accept_poll)
        self._listeners.append((listener, tls))
        name = "accept-tls" if tls else "accept"
        thread = threading.Thread(target=self._accept_loop, args=(listener, tls), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, reason: str = "Server shutting down", timeout: float = 1.5) -> None:
        """Stop accepting, send every client ERROR, and wait briefly for them to go."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        for thread in self._threads:
            thread.join(1.0)
        for listener, _ in self._listeners:
            listener.close()
        for _ in self._starters:
            self._arrivals.put(None)
        for starter in self._starters:
            starter.join(2.0)
        # From now on a writer is started by whoever asks (the goodbyes below may need some), and
        # one asked for just before is started here: a connection's end waits for it.
        self._starters_done = True
        while True:
            try:
                item = self._arrivals.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._take(item)  # stopping: an arrival is closed
        sessions = self.connections()
        for conn in sessions:
            conn.client.kill(reason)
        deadline = time.monotonic() + timeout
        for conn in sessions:
            conn.join_threads(max(0.05, deadline - time.monotonic()))
        self.chat.joins.wake = None
        self.chat.fan_out_ready = None
        self.flusher.stop()

    def connections(self) -> list[Connection]:
        """Every live connection, registered or not."""
        with self._sessions_lock:
            return list(self._sessions)

    # -- threads --------------------------------------------------------------

    def _accept_loop(self, listener: socket.socket, tls: ssl.SSLContext | None) -> None:
        while not self._stopping.is_set():
            try:
                conn, addr = listener.accept()
            except TimeoutError:
                continue
            except OSError as err:
                if self._stopping.is_set():
                    return
                # Out of file descriptors and the like: say so, back off, keep serving.
                log.warning("accept failed: %s", err)
                time.sleep(0.1)
                continue
            self._arrivals.put((conn, addr, tls))

    def _start_loop(self) -> None:
        """Admit each accepted socket and start its reader (a thread start can wait for the GIL)."""
        while (item := self._arrivals.get()) is not None:
            self._take(item)

    def _take(self, item: Arrival | Callable[[], None]) -> None:
        """Run work handed to the starters (a writer's start), or admit an accepted socket and
        start its reader; once stopping, the socket is closed."""
        if callable(item):
            item()
            return
        conn, addr, tls = item
        if self._stopping.is_set():
            conn.close()
            return
        conn.setblocking(True)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # Admitted and counted in one go: the starters work side by side.
        with self._sessions_lock:
            refusal = self._refusal(addr[0])
            if refusal is None:
                session = Connection(self.chat, self.config, self.flusher, conn, addr, tls,
                                     sniff=sniff, rehost=self._rehost, on_close=self._forget,
                                     spawn=self._spawn)
                self._sessions.add(session)
                self._per_host[session.client.host] += 1
        if refusal is not None:
            _refuse(conn, refusal)
            return
        try:
            session.start()
        except RuntimeError as err:  # can't start a thread: refuse this one politely
            log.error("cannot serve %s: %s", addr, err)
            self._forget(session)
            _refuse(conn, "Server is busy, try again later")

    def _spawn(self, work: Callable[[], None]) -> None:
        """Have a starter run work (a writer thread's start), or run it here once they have stopped."""
        if self._starters_done:
            work()
        else:
            self._arrivals.put(work)

    def _refusal(self, host: str) -> str | None:
        """Why a new connection from host must be refused, or None to accept it (lock held)."""
        if len(self._sessions) >= self.config.max_clients:
            log.warning("refused %s: server full (%d connections)", host, len(self._sessions))
            return "Server is full, try again later"
        if self._host_full(host):
            log.warning("refused %s: %d connections from that address", host, self._per_host[host])
            return "Too many connections from your address"
        return None

    def _rehost(self, conn: Connection, host: str) -> bool:
        """Count a connection under a new address (WEBIRC); False if that address is over its limit."""
        with self._sessions_lock:
            if self._host_full(host):
                return False
            self._per_host[conn.client.host] -= 1
            self._per_host[host] += 1
            conn.client.host = host
            return True

    def _host_full(self, host: str) -> bool:
        """Whether host already has its share of connections (lock held; loopback is exempt)."""
        return not is_loopback(host) and self._per_host[host] >= self.config.max_per_ip

    def _forget(self, conn: Connection) -> None:
        with self._sessions_lock:
            if conn in self._sessions:
                self._sessions.discard(conn)
                host = conn.client.host
                self._per_host[host] -= 1
                if self._per_host[host] <= 0:
                    del self._per_host[host]

    def _reap_loop(self) -> None:
        tick = min(1.0, self.config.ping_timeout / 4)
        while not self._stopping.wait(tick):
            self.reap(time.monotonic())

    def reap(self, now: float) -> None:
        """PING idle connections and drop those that stopped answering.

        Not a client whose lines the server has yet to read: when it is too busy to keep up
        (a join storm), the missing PONG is waiting on our side, not theirs. The registration
        deadline is kept by each connection's reader (Connection._input_in_time), which alone
        knows whether the client's NICK and USER are still being handled.
        """
        cfg = self.config
        for conn in self.connections():
            s = conn.client
            if not s.registered:
                continue
            if s.ping_sent is not None and s.last_seen > s.ping_sent:
                s.ping_sent = None
            if s.ping_sent is None:
                if now - s.last_seen > cfg.ping_interval:
                    s.ping_sent = now
                    s.send(Message("PING", (cfg.server_name,)))
            elif now - s.ping_sent > cfg.ping_timeout and not conn.behind():
                s.kill(f"Ping timeout: {int(now - s.last_seen)} seconds")
