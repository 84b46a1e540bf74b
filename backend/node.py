"""One running Lobby node: the chat (core), its history (store), the cluster and the TCP server (net).

With cli.py this is the wiring layer, the only code that knows every layer: it
chooses the history store (SQLite, or none) and the cluster (Redis, or the null
cluster) and plugs them into the core's ports before the first connection is
accepted. Tests start nodes through ChatServer exactly as `lobby serve` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .cluster.accounts import RedisAccounts, RedisAccountsError
from .cluster.backplane import Backplane, BackplaneError, Timers
from .core.chat import Chat
from .core.client import Client
from .core.ports import NullCluster
from .net.config import NetConfig
from .net.server import TcpServer, format_address
from .store.accounts import Accounts, AccountsError
from .store.rooms import RoomSettings, RoomSettingsError
from .store.sqlite import History, HistoryError
from .store.tokens import Tokens, TokensError

__all__ = ["BackplaneError", "ChatServer", "HistoryError", "ServerConfig", "format_address"]


@dataclass
class ServerConfig(NetConfig):
    """Everything a node can be told at start-up: the chat's and the network's settings, storage and cluster."""

    # Where room history is kept: a SQLite file, ":memory:", or None for no history at all.
    db_path: str | None = ":memory:"
    # A Redis URL (redis://HOST:PORT/DB) to share rooms with other nodes; None runs alone.
    redis_url: str | None = None
    # Rooms' topic and modes until an operator changes them (the --config file's [rooms]).
    room_defaults: dict[str, dict[str, str]] = field(default_factory=dict)
    # The cluster's timers, in seconds: how often this node says it is alive, how long that lasts
    # (a node silent this long is taken for dead), how often it looks for dead nodes.
    cluster_heartbeat: float = 1.0
    cluster_ttl: float = 5.0
    cluster_check: float = 2.0
    # Run SQLite's integrity check over the history file before serving (`lobby serve --check-db`).
    check_db: bool = False
    # Uploads from the page (bridge/uploads.py): where files go (None: a files/ directory next to a
    # database file; none with ":memory:"), whether they are taken at all, the largest file and
    # the directory's total, and what one address may send in a day.
    files_dir: str | None = None
    uploads: bool = True
    max_upload_bytes: int = 10 * 1024 * 1024
    upload_quota_bytes: int = 1024 * 1024 * 1024
    upload_daily_bytes: int = 200 * 1024 * 1024

    def uploads_dir(self) -> str | None:
        """The files directory in effect, or None when uploads are off."""
        if not self.uploads:
            return None
        if self.files_dir:
            return self.files_dir
        if self.db_path is None or self.db_path == ":memory:" or self.db_path.startswith("file:"):
            return None
        return str(Path(self.db_path).resolve().parent / "files")


class ChatServer:
    """A running node: start() opens history, joins the cluster and listens; stop() ends it all cleanly."""

    def __init__(self, config: ServerConfig | None = None) -> None:
        self.config = config or ServerConfig()
        self.chat = Chat(self.config)
        self.hub = self.chat.hub
        self.history: History | None = None
        self.rooms: RoomSettings | None = None
        # Accounts: in the SQLite file beside the history, or in Redis when the node is in a cluster.
        self.accounts: Accounts | RedisAccounts | None = None
        # Sign-in tokens that keep a browser signed in (the bridge's, bridge/session.py).
        self.tokens: Tokens | None = None
        self.backplane: Backplane | None = None
        self.tcp = TcpServer(self.chat, self.config)
        self._stopped = False

    @property
    def address(self) -> tuple[str, int]:
        """Where the chat port listens (the real port once started with port 0)."""
        return self.tcp.address

    @property
    def tls_address(self) -> tuple[str, int] | None:
        """Where the TLS chat port listens, if there is one."""
        return self.tcp.tls_address

    def start(self) -> tuple[str, int]:
        """Open history, join the cluster, then listen; return the chat port's address.

        Raises HistoryError if the database can't be used, BackplaneError if Redis can't,
        OSError if the port can't; whatever was started before is stopped again.
        """
        if self.config.room_defaults:
            # First the configuration's, then what operators set since (stored) wins.
            self.hub.remember_rooms([
                {"name": name, **({"topic": d["topic"]} if "topic" in d else {}),
                 **({"modes": d["modes"].lstrip("+")} if "modes" in d else {})}
                for name, d in self.config.room_defaults.items()
            ])
        if self.config.db_path is not None and self.history is None:
            history = History(self.config.db_path, recent_lines=self.config.history_lines)
            history.open(index=False)
            self.history = history
            self.chat.history = history
            try:
                if self.config.check_db:
                    history.check()
                self.hub.remember_topics(history.topics())
                history.index()  # after the reads that name damage best; before the first SEARCH
            except HistoryError:
                self.stop()
                raise
            rooms = RoomSettings(self.config.db_path)
            try:
                rooms.open()
            except RoomSettingsError as err:
                self.stop()
                raise HistoryError(str(err)) from err
            self.rooms = rooms
            self.hub.remember_rooms(rooms.load())
            self.chat.rooms_store = rooms
        if self.config.db_path is not None and self.config.redis_url is None and self.accounts is None:
            accounts = Accounts(self.config.db_path)
            try:
                accounts.open()
            except AccountsError as err:
                self.stop()
                raise HistoryError(str(err)) from err
            self.accounts = accounts
            self.chat.accounts = accounts
            tokens = Tokens(self.config.db_path)
            try:
                tokens.open()
            except TokensError as err:
                self.stop()
                raise HistoryError(str(err)) from err
            self.tokens = tokens
        if self.config.redis_url is not None and self.backplane is None:
            timers = Timers(self.config.cluster_heartbeat, self.config.cluster_ttl, self.config.cluster_check)
            backplane = Backplane(self.config.redis_url, self.chat, self.history, timers)
            try:
                backplane.start()
            except BackplaneError:
                self.stop()
                raise
            self.backplane = backplane
            self.chat.cluster = backplane
        if self.config.redis_url is not None and self.accounts is None:
            # Shared by every node: an account made on one signs in on all, and its nick is protected on all.
            shared = RedisAccounts(self.config.redis_url)
            try:
                shared.open()
            except RedisAccountsError as err:
                self.stop()
                raise BackplaneError(str(err)) from err
            self.accounts = shared
            self.chat.accounts = shared
        try:
            return self.tcp.start()
        except OSError:
            self.stop()
            raise

    def stop(self, reason: str = "Server shutting down", timeout: float = 1.5) -> None:
        """Tell every client, end every connection, leave the cluster and commit the history."""
        if self._stopped:
            return
        self._stopped = True
        self.chat.stopping = True
        self.tcp.stop(reason, timeout)
        if self.backplane is not None:
            # One "down" event instead of a QUIT per user: the others quit them all at once.
            self.chat.cluster = NullCluster()
            self.backplane.close()
        if self.history is not None:
            self.history.close()  # commits what is queued: a clean stop loses nothing
        if self.rooms is not None:
            self.rooms.close()
        if self.accounts is not None:
            self.accounts.close()
        if self.tokens is not None:
            self.tokens.close()

    def sessions(self) -> list[Client]:
        """Every connected client, registered or not."""
        return [conn.client for conn in self.tcp.connections()]

    def reap(self, now: float) -> None:
        """Drop connections that never registered or stopped answering; PING idle ones."""
        self.tcp.reap(now)
