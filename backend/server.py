"""The chat server: the listening socket, the accept thread and the keep-alive reaper.

Threads: one accepts connections; each connection has a reader and a writer
(see session.py); one reaper drops connections that never register and PINGs
idle ones. The server keeps every live Session so that it can reach them all,
for timeouts and for telling them goodbye at shutdown.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import socket
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass

from . import commands
from .addresses import is_loopback
from .cluster import Backplane, BackplaneError
from .envelope import Envelope
from .flusher import Flusher
from .history import History
from .hub import Hub
from .protocol import Message
from .replay import replay_on_join
from .session import Session

log = logging.getLogger("lobby.server")


@dataclass
class ServerConfig:
    """Everything the chat server can be told at start-up."""

    host: str = "127.0.0.1"
    port: int = 14900
    server_name: str = "lobby"
    network: str = "Lobby"
    motd: str = "Welcome to Lobby. Type /help in the Lobby clients, or use your IRC client's commands."
    default_room: str = "#lobby"
    password: str | None = None
    # The secret the web bridge proves itself with in WEBIRC; None refuses WEBIRC.
    webirc_password: str | None = None
    sendq_bytes: int = 512 * 1024
    registration_timeout: float = 30.0
    ping_interval: float = 90.0
    ping_timeout: float = 60.0
    max_rooms_per_user: int = 50
    # Where room history is kept: a SQLite file, ":memory:", or None for no history at all.
    db_path: str | None = ":memory:"
    # A Redis URL (redis://HOST:PORT/DB) to share rooms with other nodes; None runs alone.
    redis_url: str | None = None
    history_lines: int = 50
    backlog: int = 1024
    max_clients: int = 4096
    # Flood control: a burst of lines, then a steady rate; further ahead than max_lag: Excess Flood.
    flood: bool = True
    flood_burst: int = 20
    flood_rate: float = 4.0
    flood_max_lag: float = 15.0
    flood_max_backlog: int = 16 * 1024
    # Loopback is exempt: the bridge connects from there and names browsers with WEBIRC.
    max_per_ip: int = 20
    tls_port: int | None = None
    tls_context: ssl.SSLContext | None = None


def _refuse(conn: socket.socket, reason: str) -> None:
    """Tell a connection we won't serve it, without ever blocking on it, and close it."""
    with contextlib.suppress(OSError):
        conn.send(f"ERROR :{reason}\r\n".encode(), socket.MSG_DONTWAIT)
    conn.close()


def format_address(host: str, port: int) -> str:
    """host:port, with brackets around an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ChatServer:
    """A running chat server: start() binds and serves, stop() tells everyone and ends."""

    def __init__(self, config: ServerConfig | None = None, hub: Hub | None = None) -> None:
        self.config = config or ServerConfig()
        self.hub = hub or Hub(persistent_rooms=[self.config.default_room])
        self.started_text = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        self._sessions: set[Session] = set()
        self._sessions_lock = threading.Lock()
        self._stopping = threading.Event()
        self._listeners: list[tuple[socket.socket, ssl.SSLContext | None]] = []
        self._threads: list[threading.Thread] = []
        self._per_host: Counter[str] = Counter()
        self.address: tuple[str, int] = (self.config.host, self.config.port)
        self.tls_address: tuple[str, int] | None = None
        self.history: History | None = None
        self.backplane: Backplane | None = None
        self.flusher = Flusher()

    # -- lifecycle ------------------------------------------------------------

    def start(self) -> tuple[str, int]:
        """Open history, bind, listen, start the accept and reaper threads; return the bound address.

        Raises HistoryError if the database can't be used, OSError if the port can't.
        """
        if self.config.db_path is not None and self.history is None:
            history = History(self.config.db_path)
            history.open()
            self.history = history
            self.hub.remember_topics(history.topics())
        if self.config.redis_url is not None and self.backplane is None:
            backplane = Backplane(self.config.redis_url, self)
            try:
                backplane.start()
            except BackplaneError:
                self.stop()
                raise
            self.backplane = backplane
            self.hub.backplane = backplane
        # Started once nothing before it can fail (stop() ends it); what the backplane
        # delivered meanwhile waits on its list.
        self.flusher.start()
        self._listen(self.config.port, None)
        bound = self._listeners[0][0].getsockname()
        self.address = (bound[0], bound[1])
        if self.config.tls_port is not None and self.config.tls_context is not None:
            self._listen(self.config.tls_port, self.config.tls_context)
            tls_bound = self._listeners[1][0].getsockname()
            self.tls_address = (tls_bound[0], tls_bound[1])
        threading.Thread(target=self._reap_loop, name="reaper", daemon=True).start()
        return self.address

    def _listen(self, port: int, tls: ssl.SSLContext | None) -> None:
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
        listener.settimeout(0.5)
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
        sessions = self.sessions()
        for session in sessions:
            session.kill(reason)
        deadline = time.monotonic() + timeout
        for session in sessions:
            session.join_threads(max(0.05, deadline - time.monotonic()))
        if self.backplane is not None:
            # One "down" event instead of a QUIT per user: the others quit them all at once.
            self.hub.backplane = None
            self.backplane.close()
        self.flusher.stop()
        if self.history is not None:
            self.history.close()  # commits what is queued: a clean stop loses nothing

    def sessions(self) -> list[Session]:
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
            refusal = self._admit(addr[0])
            if refusal:
                _refuse(conn, refusal)
                continue
            conn.setblocking(True)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            session = Session(self, conn, addr, tls)
            with self._sessions_lock:
                self._sessions.add(session)
                self._per_host[session.host] += 1
            try:
                session.start()
            except RuntimeError as err:  # can't start a thread: refuse this one politely
                log.error("cannot serve %s: %s", addr, err)
                self._forget(session)
                _refuse(conn, "Server is busy, try again later")

    def _admit(self, host: str) -> str | None:
        """Why a new connection from host must be refused, or None to accept it."""
        with self._sessions_lock:
            if len(self._sessions) >= self.config.max_clients:
                log.warning("refused %s: server full (%d connections)", host, len(self._sessions))
                return "Server is full, try again later"
            if self._host_full(host):
                log.warning("refused %s: %d connections from that address", host, self._per_host[host])
                return "Too many connections from your address"
        return None

    def rehost(self, session: Session, host: str) -> bool:
        """Count session under a new address (WEBIRC); False if that address is over its limit."""
        with self._sessions_lock:
            if self._host_full(host):
                return False
            self._per_host[session.host] -= 1
            self._per_host[host] += 1
            session.host = host
            return True

    def _host_full(self, host: str) -> bool:
        """Whether host already has its share of connections (lock held; loopback is exempt)."""
        return not is_loopback(host) and self._per_host[host] >= self.config.max_per_ip

    def _forget(self, session: Session) -> None:
        with self._sessions_lock:
            if session in self._sessions:
                self._sessions.discard(session)
                self._per_host[session.host] -= 1
                if self._per_host[session.host] <= 0:
                    del self._per_host[session.host]

    def _reap_loop(self) -> None:
        tick = min(1.0, self.config.registration_timeout / 4, self.config.ping_timeout / 4)
        while not self._stopping.wait(tick):
            self.reap(time.monotonic())

    def reap(self, now: float) -> None:
        """Drop connections that never registered or stopped answering; PING idle ones."""
        cfg = self.config
        for s in self.sessions():
            if not s.registered:
                if now - s.connected_at > cfg.registration_timeout:
                    s.kill("Registration timed out")
                continue
            if s.ping_sent is not None and s.last_seen > s.ping_sent:
                s.ping_sent = None
            if s.ping_sent is None:
                if now - s.last_seen > cfg.ping_interval:
                    s.ping_sent = now
                    s.send(Message("PING", (cfg.server_name,)))
            elif now - s.ping_sent > cfg.ping_timeout:
                s.kill(f"Ping timeout: {int(now - s.last_seen)} seconds")

    # -- hooks called by sessions and commands --------------------------------

    def check_password(self, given: str | None) -> bool:
        """Whether given matches the server password (constant time)."""
        expected = self.config.password or ""
        return hmac.compare_digest((given or "").encode(), expected.encode())

    def on_registered(self, session: Session) -> None:
        """A user finished registration: put them in the default room."""
        if self.hub.backplane is not None:
            self.hub.backplane.registered(session)
        commands.join(session, self.config.default_room)

    def on_join(self, session: Session, room: str) -> None:
        """A user joined a room: send them its recent history."""
        if self.history is None or self.config.history_lines <= 0:
            return
        rows = self.history.latest(room, self.config.history_lines)
        live = session.joining
        if live:  # said while this user joined: they got it live already
            rows = [row for row in rows if row.msgid not in live]
        replay_on_join(session, room, rows)

    def on_room_event(self, room: str, envelope: Envelope) -> None:
        """A message or topic change happened in a room: store it."""
        if self.history is None:
            return
        m = envelope.message
        self.history.add(room, envelope.msgid, envelope.time, m.source or "", m.command, m.params[-1])

    def disconnect(self, session: Session, reason: str) -> None:
        """A connection ended: everyone who shared a room sees it QUIT, at once."""
        self._forget(session)
        if not session.registered:
            return
        backplane = self.hub.backplane
        rooms = self.hub.rooms_of(session) if backplane is not None else []
        peers = self.hub.remove(session)
        if self._stopping.is_set():
            return  # everyone is being told "shutting down": N² QUITs would only slow the stop
        envelope = Envelope(Message("QUIT", (reason,), session.prefix))
        for peer in peers:
            peer.deliver(envelope)
        if backplane is not None:
            backplane.quit(session, rooms, envelope)
