"""Interop: a real IRC client library from PyPI (jaraco's `irc`) talks to a raw-socket user."""

from __future__ import annotations

import time

import irc.client

from tests.ircclient import IrcClient


class LibraryUser:
    """A bot written the way bot authors use the `irc` package: a reactor and event handlers."""

    def __init__(self, address: tuple[str, int], nick: str) -> None:
        self.reactor = irc.client.Reactor()
        self.events: list[tuple[str, str, str, list[str]]] = []
        for kind in ("welcome", "join", "pubmsg", "privmsg", "namreply", "nicknameinuse"):
            self.reactor.add_global_handler(kind, self._record)
        self.conn = self.reactor.server().connect(address[0], address[1], nick)

    def _record(self, connection: irc.client.ServerConnection, event: irc.client.Event) -> None:
        self.events.append((event.type, str(event.source), str(event.target), list(event.arguments)))

    def wait_for(self, kind: str, predicate=lambda e: True, timeout: float = 10.0) -> tuple:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if event[0] == kind and predicate(event):
                    return event
            self.reactor.process_once(0.1)
        raise AssertionError(f"no {kind} event; saw {self.events[-10:]}")

    def close(self) -> None:
        self.conn.disconnect("done")
        self.conn.close()


def test_irc_library_registers_joins_and_chats_with_a_raw_user(server, client) -> None:
    bot = LibraryUser(server.address, "libbot")
    try:
        bot.wait_for("welcome")
        # Auto-joined to the default room: the library sees its own JOIN.
        bot.wait_for("join", lambda e: e[2] == "#lobby" and e[1].startswith("libbot!"))
        raw: IrcClient = client("rawuser")
        bot.wait_for("join", lambda e: e[1].startswith("rawuser!"))

        raw.send("PRIVMSG #lobby :hello library")
        event = bot.wait_for("pubmsg", lambda e: e[3] == ["hello library"])
        assert event[2] == "#lobby"
        raw.send("PRIVMSG libbot :just for you")
        assert bot.wait_for("privmsg", lambda e: e[3] == ["just for you"])[1].startswith("rawuser!")

        bot.conn.privmsg("#lobby", "hello raw")
        raw.expect(r":libbot!\S+ PRIVMSG #lobby :hello raw")
        bot.conn.privmsg("rawuser", "psst")
        raw.expect(r":libbot!\S+ PRIVMSG rawuser :psst")
        bot.conn.join("#second")
        bot.wait_for("join", lambda e: e[2] == "#second")
        bot.events.clear()
        bot.conn.names(["#lobby"])
        names = bot.wait_for("namreply", lambda e: "#lobby" in e[3])
        assert set(names[3][-1].split()) == {"libbot", "rawuser"}
    finally:
        bot.close()
