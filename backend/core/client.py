"""A user as the core sees them: who they are, what they negotiated, and how to reach them.

A Client holds the user's state (nick, caps, away, ...) and talks to its connection
through a Link, which the network layer implements (net/connection.py) and tests fake
with a recorder. How messages are turned into bytes is the Presenter's job: IRC lines
by default, sentences for a person at nc/telnet (net/textuser.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from ..irc import Message, parse_line
from .batches import OpenBatch
from .envelope import TAGS_NONE, Envelope, RenderKey, render_key_for


class Link(Protocol):
    """The connection under a Client: bytes out, the end of it, and where it comes from."""

    def send_bytes(self, data: bytes) -> None:
        """Send now, or queue: a reply meant for this client only."""
        ...

    def deliver_bytes(self, data: bytes) -> None:
        """Queue shared fan-out bytes; never blocks and never sends from the caller's thread."""
        ...

    def kill(self, reason: str, flush: bool = True) -> None:
        """End the connection from any thread, telling the client why."""
        ...

    def rehost(self, host: str) -> bool:
        """Count the connection under another address (WEBIRC); False if that one is full."""
        ...

    def local_host(self) -> str | None:
        """The address this connection reached us on (the server's side), if known."""
        ...


class Presenter(Protocol):
    """Another way to show messages than IRC lines (plain-text users)."""

    render_key: RenderKey

    def render_envelope(self, envelope: Envelope) -> bytes:
        """A shared event as this kind of client reads it (cached per render key)."""
        ...

    def render(self, message: Message) -> bytes:
        """A message meant for this client alone; b"" for nothing."""
        ...


class Client:
    """A connected user, registered or not; also the hub's Member."""

    def __init__(self, link: Link, host: str, server_name: str) -> None:
        self.link = link
        self.host = host
        # The source of the server's own replies to this client.
        self.server_name = server_name
        self.gateway: str | None = None
        self.nick = "*"
        self.user = ""
        self.realname = ""
        self.password: str | None = None
        self.caps: set[str] = set()
        self.render_key: RenderKey = TAGS_NONE
        # Set for a person at nc/telnet rather than an IRC client.
        self.presenter: Presenter | None = None
        self._renderer: Callable[[Envelope], bytes] | None = None
        self._deliver_bytes = link.deliver_bytes
        self.registered = False
        self.cap_negotiating = False
        self.away: str | None = None
        # User modes: "i" (invisible to WHO from outside shared rooms), "B" (a bot).
        self.modes: set[str] = set()
        # Whether the connection is TLS (WHOIS says so).
        self.secure = False
        self.connected_at = time.time()
        # While a join is under way: the msgids delivered to this client live, so that the
        # join's replay leaves out what it already got (rooms.enter_room).
        self.joining: set[str] | None = None
        self.quit_reason: str | None = None
        self.last_seen = time.monotonic()
        self.last_spoke = time.monotonic()
        self.ping_sent: float | None = None
        # The account signed in to (SASL or REGISTER), and a SASL exchange under way.
        self.account: str | None = None
        self.sasl: str | None = None
        # draft/multiline messages being received, by batch reference (core/multiline.py).
        self.batches: dict[str, OpenBatch] = {}
        # labeled-response: while a labelled command runs, its replies are gathered here.
        self.label: str | None = None
        self.gathered: list[Message] | None = None

    def __repr__(self) -> str:
        return f"<Client {self.nick} {self.host}>"

    @property
    def prefix(self) -> str:
        """The nick!user@host source of this user's messages."""
        return f"{self.nick}!{self.user or self.nick}@{self.host}"

    def set_caps(self, caps: set[str]) -> None:
        """Record negotiated capabilities and the tags they call for."""
        self.caps = caps
        if self.presenter is None:
            self.render_key = render_key_for(caps)

    def present(self, presenter: Presenter | None) -> None:
        """Show this client messages through presenter (None: as IRC lines again)."""
        self.presenter = presenter
        self._renderer = presenter.render_envelope if presenter is not None else None
        self.render_key = presenter.render_key if presenter is not None else render_key_for(self.caps)

    # -- sending ----------------------------------------------------------------

    def deliver(self, envelope: Envelope) -> None:
        """Queue a shared envelope, rendered for this client, for the flusher thread.

        Once per recipient of every message: kept to a few attribute reads and one call down.
        """
        seen = self.joining
        if seen is not None:
            seen.add(envelope.msgid)
        data = envelope.render(self.render_key, self._renderer)
        if data:
            self._deliver_bytes(data)

    def send(self, message: Message) -> None:
        """Send a message meant for this client only."""
        if self.gathered is not None:
            self.gathered.append(message)
            return
        data = self.encode(message)
        if data:
            self.link.send_bytes(data)

    def encode(self, message: Message) -> bytes:
        """A message as this client reads it: an IRC line, or a sentence for a text user."""
        return self.presenter.render(message) if self.presenter is not None else message.to_bytes()

    def send_numeric(self, numeric: str, *params: str) -> None:
        """Send a numeric reply from the server, addressed to this client."""
        self.send(Message(numeric, (self.nick, *params), self.server_name))

    def send_from_server(self, command: str, *params: str) -> None:
        """Send a message whose source is the server (CAP, PONG, BATCH, FAIL, ...)."""
        self.send(Message(command, params, self.server_name))

    def echo(self, envelope: Envelope) -> None:
        """echo-message: this client's own message, back to it (in its labelled reply, if any)."""
        if self.gathered is None:
            self.deliver(envelope)
            return
        data = envelope.render(self.render_key)
        if data:
            self.gathered.append(parse_line(data.decode("utf-8").rstrip("\r\n")))

    def has(self, cap: str) -> bool:
        """Whether this client negotiated cap."""
        return cap in self.caps

    def kill(self, reason: str, flush: bool = True) -> None:
        """End this client's connection, telling them why (and everyone else, as a QUIT)."""
        if self.quit_reason is None:
            self.quit_reason = reason
        self.link.kill(reason, flush)
