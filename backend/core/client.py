"""A user as the core sees them: who they are, what they negotiated, and how to reach them.

A Client holds the user's state (nick, caps, away, ...) and talks to its connection
through a Link, which the network layer implements (net/connection.py) and tests fake
with a recorder. How messages are turned into bytes is the Presenter's job: IRC lines
by default, sentences for a person at nc/telnet (net/textuser.py).

Who the user is (UserState) is apart from how one connection talks, so that several
connections of one account can be one user (multiclient, core/multiclient.py): the hub
then holds a SharedUser, which delivers to each of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol

from ..irc import Message, parse_line
from .audience import routes_changed
from .batches import OpenBatch
from .envelope import TAGS_NONE, Envelope, RenderKey, Route, render_key_for


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


class UserState:
    """Who a user is, as opposed to how one connection talks: shared by all of a user's connections."""

    __slots__ = ("account", "away", "last_spoke", "modes", "nick", "realname", "user")

    def __init__(self) -> None:
        self.nick = "*"
        self.user = ""
        self.realname = ""
        self.account: str | None = None
        self.away: str | None = None
        self.modes: set[str] = set()
        self.last_spoke = time.monotonic()


class Client:
    """One connection of a user, registered or not; the hub's Member too, unless it shares its user
    with other connections (multiclient), whose member is then a SharedUser.

    Per connection: the link, capabilities, labels, batches, SASL, ping state. Per user (UserState):
    nick, ident, real name, account, away, modes.
    """

    def __init__(self, link: Link, host: str, server_name: str) -> None:
        self.link = link
        self.host = host
        # The source of the server's own replies to this client.
        self.server_name = server_name
        self.gateway: str | None = None
        # Who the user is (nick, ident, account, ...): shared by all their connections (multiclient).
        self.state = UserState()
        # Set once this connection is one of several of its user's (multiclient): the hub's member for all.
        self.shared: SharedUser | None = None
        self.password: str | None = None
        self.caps: set[str] = set()
        self.render_key: RenderKey = TAGS_NONE
        # Set for a person at nc/telnet rather than an IRC client.
        self.presenter: Presenter | None = None
        self._renderer: Callable[[Envelope], bytes] | None = None
        self._deliver_bytes = link.deliver_bytes
        self.registered = False
        self.cap_negotiating = False
        # Whether the connection is TLS (WHOIS says so).
        self.secure = False
        self.connected_at = time.time()
        # While a join is under way: the msgids delivered to this client live, so that the
        # join's replay leaves out what it already got (rooms.enter_room).
        self._joining: set[str] | None = None
        # None: reached through deliver() (a user of several connections, a person at nc, one joining).
        self.route: Route | None = None
        self._reroute()
        self.quit_reason: str | None = None
        self.last_seen = time.monotonic()
        self.ping_sent: float | None = None
        # A SASL exchange under way.
        self.sasl: str | None = None
        # draft/multiline messages being received, by batch reference (core/multiline.py).
        self.batches: dict[str, OpenBatch] = {}
        # labeled-response: while a labelled command runs, its replies are gathered here.
        self.label: str | None = None
        self.gathered: list[Message] | None = None

    # -- the user's state, shared by their connections ------------------------------

    @property
    def nick(self) -> str:
        """The user's nick ("*" before one is chosen)."""
        return self.state.nick

    @nick.setter
    def nick(self, value: str) -> None:
        self.state.nick = value

    @property
    def user(self) -> str:
        """The ident (USER's first parameter, cleaned)."""
        return self.state.user

    @user.setter
    def user(self, value: str) -> None:
        self.state.user = value

    @property
    def realname(self) -> str:
        """The real name (USER, SETNAME)."""
        return self.state.realname

    @realname.setter
    def realname(self, value: str) -> None:
        self.state.realname = value

    @property
    def account(self) -> str | None:
        """The account signed in to (SASL or REGISTER), if any."""
        return self.state.account

    @account.setter
    def account(self, value: str | None) -> None:
        self.state.account = value

    @property
    def away(self) -> str | None:
        """The away message, if away."""
        return self.state.away

    @away.setter
    def away(self, value: str | None) -> None:
        self.state.away = value

    @property
    def modes(self) -> set[str]:
        """User modes: "i" (invisible to WHO from outside shared rooms), "B" (a bot), "o", "w"."""
        return self.state.modes

    @property
    def last_spoke(self) -> float:
        """When the user last said something (WHOIS idle time), monotonic."""
        return self.state.last_spoke

    @last_spoke.setter
    def last_spoke(self, value: float) -> None:
        self.state.last_spoke = value

    @property
    def member(self) -> Client:
        """The hub's member for this connection's user: itself, or the SharedUser of all its connections."""
        return self.shared or self

    def connections(self) -> tuple[Client, ...]:
        """The connections this member reaches: itself alone (a SharedUser has several)."""
        return (self,)

    def others(self) -> tuple[Client, ...]:
        """The other connections of this connection's user (multiclient); none for most users."""
        shared = self.shared
        return () if shared is None else tuple(c for c in shared.connections() if c is not self)

    def __repr__(self) -> str:
        return f"<Client {self.nick} {self.host}>"

    @property
    def prefix(self) -> str:
        """The nick!user@host source of this user's messages (one host for all a user's connections)."""
        state = self.state
        return f"{state.nick}!{state.user or state.nick}@{self.member.host}"

    def set_caps(self, caps: set[str]) -> None:
        """Record negotiated capabilities and the tags they call for."""
        self.caps = caps
        if self.presenter is None:
            self.render_key = render_key_for(caps)
        self._reroute()

    def present(self, presenter: Presenter | None) -> None:
        """Show this client messages through presenter (None: as IRC lines again)."""
        self.presenter = presenter
        self._renderer = presenter.render_envelope if presenter is not None else None
        self.render_key = presenter.render_key if presenter is not None else render_key_for(self.caps)
        self._reroute()

    @property
    def joining(self) -> set[str] | None:
        """While a join is under way, the msgids delivered to this client live (rooms.enter_room)."""
        return self._joining

    @joining.setter
    def joining(self, seen: set[str] | None) -> None:
        self._joining = seen
        self._reroute()

    def _reroute(self) -> None:
        """Whether Chat.publish may queue for this client in one step, and how (see Route).

        Only a link with a `fan_out` list (net.Connection, not on TLS) takes that step: bytes
        appended there (list.append needs no lock) wait for the flusher, to which Chat.publish
        hands the link itself (Chat.fan_out_ready).
        """
        fan_out: list[bytes] | None = getattr(self.link, "fan_out", None)
        if fan_out is None or self.presenter is not None or self._joining is not None:
            self.route = None
        else:
            self.route = (self.render_key, fan_out, self.link)
        routes_changed()  # after the change: an Audience made meanwhile is out of date

    # -- sending ----------------------------------------------------------------

    def deliver(self, envelope: Envelope, skip: Client | None = None) -> None:
        """Queue a shared envelope, rendered for this client, for the flusher thread (skip: for SharedUser).

        Once per recipient of every message: kept to a few attribute reads and one call down.
        """
        seen = self._joining
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

    def echo_others(self, envelope: Envelope) -> None:
        """Multiclient: what this connection said, to its user's other connections (so each shows it)."""
        if self.shared is not None:
            for other in self.others():
                other.deliver(envelope)

    def has(self, cap: str) -> bool:
        """Whether this client negotiated cap."""
        return cap in self.caps

    def kill(self, reason: str, flush: bool = True) -> None:
        """End this client's connection, telling them why (and everyone else, as a QUIT)."""
        if self.quit_reason is None:
            self.quit_reason = reason
        self.link.kill(reason, flush)


class _NoLink:
    """The link of a SharedUser: it has no connection of its own; its connections have theirs."""

    def send_bytes(self, data: bytes) -> None:
        """Nothing to send on."""

    def deliver_bytes(self, data: bytes) -> None:
        """Nothing to deliver on."""

    def kill(self, reason: str, flush: bool = True) -> None:
        """Nothing to end."""

    def rehost(self, host: str) -> bool:
        """Never rehosted."""
        return False

    def local_host(self) -> str | None:
        """No address."""
        return None


class SharedUser(Client):
    """A user signed in to one account from several connections at once (multiclient, as Ergo's).

    The hub's member for all of them from the second one on: what is delivered to the user
    reaches every connection, each rendered for its own capabilities; a KILL ends them all.
    It shares their UserState, and shows the first connection's host for all of them.
    """

    def __init__(self, first: Client) -> None:
        super().__init__(_NoLink(), first.host, first.server_name)
        self.state = first.state
        self.registered = True
        self.secure = first.secure
        self.connected_at = first.connected_at
        self._connections: tuple[Client, ...] = (first,)

    def __repr__(self) -> str:
        return f"<SharedUser {self.nick} x{len(self._connections)}>"

    def connections(self) -> tuple[Client, ...]:
        """Every connection of this user."""
        return self._connections

    def add(self, conn: Client) -> None:
        """Another connection joins this user (under the hub's lock)."""
        self._connections = (*self._connections, conn)

    def drop(self, conn: Client) -> int:
        """A connection left (under the hub's lock); how many remain."""
        self._connections = tuple(c for c in self._connections if c is not conn)
        return len(self._connections)

    def deliver(self, envelope: Envelope, skip: Client | None = None) -> None:
        """To every connection but skip (the one that said it, which has its own echo)."""
        for conn in self._connections:
            if conn is not skip:
                conn.deliver(envelope)

    def send(self, message: Message) -> None:
        """A message for the user: to every connection."""
        for conn in self._connections:
            conn.send(message)

    def has(self, cap: str) -> bool:
        """Whether any connection negotiated cap (code that can, asks each connection instead)."""
        return any(cap in conn.caps for conn in self._connections)

    def kill(self, reason: str, flush: bool = True) -> None:
        """End every connection of the user."""
        for conn in self._connections:
            conn.kill(reason, flush)


def connections_with(members: Iterable[object], cap: str) -> list[Client]:
    """The connections of these hub members that negotiated cap (each user's, one by one)."""
    return [conn for m in members if isinstance(m, Client) for conn in m.connections() if cap in conn.caps]
