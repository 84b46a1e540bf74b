"""Rich messages over real sockets: reactions kept and replayed, typing relayed only, replies kept,
REDACT of private messages, hostile tags; and the pieces that need no socket."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import redis

from backend.core.history import kept, kept_tags
from backend.core.reactions import bad_reaction
from backend.irc import Message, parse_line
from backend.irc.describe import Line, safe
from backend.node import ChatServer
from backend.store.sqlite import History
from client.chat import ChatClient, Outcome
from client.commands import run_input
from client.connection import Connection as ClientConnection
from tests.ircclient import IrcClient, connect, wait_until
from tests.test_accounts import FAST, opened, register_account

pytest_plugins = ["tests.clusterfixtures"]

Factory = Callable[..., ChatServer]
TAGS = "message-tags batch server-time echo-message draft/chathistory draft/message-redaction"
THUMBS = "\N{THUMBS UP SIGN}"


def joined(make_server: Factory, server: ChatServer, nick: str, caps: str = TAGS, room: str = "#dev") -> IrcClient:
    c = connect(server.address, nick, caps)
    make_server.clients.append(c)  # type: ignore[attr-defined]
    c.send(f"JOIN {room}")
    c.expect(rf" 366 {nick} {room} ")
    return c


def history(c: IrcClient, target: str) -> list[Message]:
    """The messages of CHATHISTORY LATEST target * 50 (one chathistory batch)."""
    c.send(f"CHATHISTORY LATEST {target} * 50")
    c.expect(r"BATCH :?\+\S+ chathistory ")
    return [parse_line(x) for x in c.lines_until(r"BATCH :?-")[:-1]]


def say(c: IrcClient, target: str, text: str) -> str:
    """Say text (c has echo-message); its msgid."""
    c.send(f"PRIVMSG {target} :{text}")
    return c.expect(rf"PRIVMSG {target} :{text}$").tags["msgid"]


def react(c: IrcClient, target: str, msgid: str, value: str, tag: str = "+draft/react") -> None:
    c.send(f"@+draft/reply={msgid};{tag}={value} TAGMSG {target}")


def test_a_reaction_is_kept_replayed_to_message_tags_clients_only_and_taken_back(make_server: Factory) -> None:
    server = make_server()
    alice, bob = joined(make_server, server, "alice"), joined(make_server, server, "bob")
    plain = joined(make_server, server, "plain", caps="")
    hello = say(alice, "#dev", "hello")
    react(bob, "#dev", hello, THUMBS)
    got = alice.expect(r" TAGMSG #dev")
    assert got.source is not None and got.source.startswith("bob!")
    assert got.tags["+draft/react"] == THUMBS and got.tags["+draft/reply"] == hello and got.tags["msgid"]
    reaction = got.tags["msgid"]
    assert bob.expect(r" TAGMSG #dev").tags["msgid"] == reaction  # echo-message
    plain.never(r"TAGMSG")

    kept_rows = [m for m in history(alice, "#dev") if m.command == "TAGMSG"]
    assert [(m.tags["msgid"], m.tags["+draft/react"], m.tags["+draft/reply"], m.params) for m in kept_rows] == [
        (reaction, THUMBS, hello, ("#dev",))]
    assert kept_rows[0].tags["time"]
    # The join replay: in the batch for a message-tags client, never for a plain one.
    late = joined(make_server, server, "late", caps="message-tags batch server-time")
    replay = late.lines_until(r"BATCH :?-")
    assert any(" TAGMSG #dev" in x and "+draft/react=" in x for x in replay)
    old = joined(make_server, server, "old", caps="")
    replay = old.lines_until(r"End of recent messages")
    assert any("hello" in x for x in replay) and not any("TAGMSG" in x for x in replay)
    # SEARCH never finds a reaction.
    say(bob, "#dev", "bob speaks")
    alice.send("SEARCH :from:bob")
    found = alice.lines_until(r"BATCH :?-\S+$|FAIL SEARCH")
    assert any("bob speaks" in x for x in found) and not any("TAGMSG" in x for x in found)

    # Unreact: relayed, and the kept reaction is gone.
    react(bob, "#dev", hello, THUMBS, tag="+draft/unreact")
    assert alice.expect(r" TAGMSG #dev").tags["+draft/unreact"] == THUMBS
    plain.never(r"TAGMSG")
    assert not [m for m in history(alice, "#dev") if m.command == "TAGMSG"]


def test_redacting_a_message_takes_its_reactions_with_it(make_server: Factory) -> None:
    server = make_server()
    alice, bob = joined(make_server, server, "alice"), joined(make_server, server, "bob")
    hello = say(alice, "#dev", "hello")
    other = say(alice, "#dev", "another")
    for target, value in ((hello, THUMBS), (hello, "lol"), (other, "ok")):
        react(bob, "#dev", target, value)
        alice.expect(rf"\+draft/react={value}\S* \S+ TAGMSG #dev")
    alice.send(f"REDACT #dev {hello}")
    bob.expect(rf"REDACT #dev {hello}")
    rows = history(bob, "#dev")
    assert [m.params[-1] for m in rows if m.command == "PRIVMSG"] == ["another"]
    assert [m.tags["+draft/react"] for m in rows if m.command == "TAGMSG"] == ["ok"]


def test_typing_is_relayed_to_message_tags_clients_and_never_kept(make_server: Factory) -> None:
    server = make_server()
    alice, bob = joined(make_server, server, "alice"), joined(make_server, server, "bob")
    plain = joined(make_server, server, "plain", caps="")
    for state in ("active", "paused", "active", "done") * 5:  # a typist's notices, faster than real
        bob.send(f"@+typing={state} TAGMSG #dev")
    for state in ("active", "paused", "active", "done") * 5:
        assert alice.expect(r" TAGMSG #dev").tags["+typing"] == state
    bob.sync()  # still connected: a typist is no flooder
    plain.never(r"TAGMSG|typing")
    assert not [m for m in history(alice, "#dev") if m.command == "TAGMSG"]
    late = joined(make_server, server, "late", caps="message-tags batch server-time")
    assert not any("typing" in x for x in late.seen + late.sync())


def test_a_reply_is_kept_with_its_tag_and_plain_clients_see_the_plain_line(make_server: Factory) -> None:
    server = make_server()
    alice, bob = joined(make_server, server, "alice"), joined(make_server, server, "bob")
    plain = joined(make_server, server, "plain", caps="")
    hello = say(alice, "#dev", "hello")
    bob.send(f"@+draft/reply={hello} PRIVMSG #dev :hi back")
    assert alice.expect(r"PRIVMSG #dev :hi back").tags["+draft/reply"] == hello
    line = plain.expect(r"PRIVMSG #dev :hi back")
    assert not line.tags
    assert [m.tags.get("+draft/reply") for m in history(alice, "#dev") if m.command == "PRIVMSG"] == [None, hello]
    # A reply naming a message of another room: sent, without the tag, and the sender is warned.
    elsewhere = joined(make_server, server, "carol", room="#other")
    secret = say(elsewhere, "#other", "secret")
    bob.send(f"@+draft/reply={secret} PRIVMSG #dev :which one?")
    bob.expect(rf"WARN PRIVMSG UNKNOWN_MSGID #dev {secret} ")
    assert "+draft/reply" not in alice.expect(r"PRIVMSG #dev :which one\?").tags
    assert [m.tags.get("+draft/reply") for m in history(alice, "#dev") if m.command == "PRIVMSG"][-1] is None


def test_hostile_reactions_are_refused_and_nothing_is_kept(make_server: Factory) -> None:
    server = make_server()
    alice, bob = joined(make_server, server, "alice"), joined(make_server, server, "bob")
    hello = say(alice, "#dev", "hello")
    elsewhere = joined(make_server, server, "carol", room="#other")
    secret = say(elsewhere, "#other", "secret")
    refused = {
        f"@+draft/reply={hello};+draft/react= TAGMSG #dev": "INVALID_REACTION",
        f"@+draft/reply={hello};+draft/react TAGMSG #dev": "INVALID_REACTION",
        f"@+draft/reply={hello};+draft/react={'x' * 65} TAGMSG #dev": "INVALID_REACTION",
        f"@+draft/reply={hello};+draft/react=a\x07b TAGMSG #dev": "INVALID_REACTION",
        f"@+draft/reply={hello};+draft/react=a\\nb TAGMSG #dev": "INVALID_REACTION",  # escaped newline
        f"@+draft/reply={hello};+draft/react=\u202eevil TAGMSG #dev": "INVALID_REACTION",  # bidi override
        f"@+draft/reply={hello};+draft/react=\\ TAGMSG #dev": "INVALID_REACTION",  # a lone escape: empty
        f"@+draft/reply={hello};+draft/react=a;+draft/unreact=a TAGMSG #dev": "INVALID_REACTION",
        "@+draft/react=lol TAGMSG #dev": "INVALID_REACTION",
        "@+draft/reply=nosuchmsgid;+draft/react=lol TAGMSG #dev": "UNKNOWN_MSGID",
        f"@+draft/reply={secret};+draft/react=lol TAGMSG #dev": "UNKNOWN_MSGID",
    }
    for line, code in refused.items():
        bob.send(line)
        bob.expect(rf"FAIL TAGMSG {code} #dev ")
    bob.send(f"@+draft/reply={hello};+draft/react=lol TAGMSG #other")  # not a member
    bob.expect(r" 404 bob #other ")
    bob.send("@+draft/react=" + "x" * 5000 + " TAGMSG #dev")  # tags over 4094 bytes
    bob.expect(r" 417 bob ")
    bob.send("@+draft/reply=\\\\\\;;;;=;+draft/react=\\s TAGMSG #dev")  # malformed escapes, a space as value
    bob.sync()
    alice.never(r"TAGMSG")
    assert not [m for m in history(alice, "#dev") if m.command == "TAGMSG"]
    # A reaction to a reaction is no reaction: it must name a line.
    react(bob, "#dev", hello, "ok")
    first = alice.expect(r" TAGMSG #dev").tags["msgid"]
    react(bob, "#dev", first, "lol")
    bob.expect(rf"FAIL TAGMSG UNKNOWN_MSGID #dev {first} ")
    # An emoji of several code points (joiner, variation selector, skin tone) is one reaction.
    react(bob, "#dev", hello, "\U0001F469\u200d\U0001F4BB")
    react(bob, "#dev", hello, "\u2764\ufe0f")
    for _ in range(2):
        alice.expect(r" TAGMSG #dev")
    assert [m.tags["+draft/react"] for m in history(alice, "#dev") if m.command == "TAGMSG"] == [
        "ok", "\U0001F469\u200d\U0001F4BB", "\u2764\ufe0f"]


def test_a_tagmsg_flood_ends_with_excess_flood_and_the_room_goes_on(make_server: Factory) -> None:
    # Past its burst a client is slowed down (fake lag); past a small backlog of unread lines it is cut off.
    server = make_server(flood_max_backlog=4096)
    alice, bob = joined(make_server, server, "alice"), joined(make_server, server, "bob")
    hello = say(alice, "#dev", "hello")
    burst = "".join(f"@+draft/reply={hello};+draft/react=r{i} TAGMSG #dev\r\n" for i in range(200))
    bob.send_raw(burst.encode())
    lines = bob.expect_closed()
    assert any("Excess Flood" in line for line in lines), lines
    alice.sync()
    kept_rows = [m for m in history(alice, "#dev") if m.command == "TAGMSG"]
    assert 0 < len(kept_rows) < 100  # what was let through before the cut is kept, nothing more
    assert say(alice, "#dev", "still here")


def test_reactions_and_redact_in_private_messages_between_accounts(make_server: Factory, tmp_path: Path) -> None:
    server = make_server(db_path=str(tmp_path / "dm.db"), **FAST)
    new = opened(make_server, server)
    alice, bob, carol = new(), new(), new()
    for c, nick in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
        register_account(c, nick)
        c.send(f"CAP REQ :{TAGS}")
        c.expect(r" CAP \S+ ACK ")
    hello = say(alice, "bob", "just between us")
    assert bob.expect(r"PRIVMSG bob :just between us").tags["msgid"] == hello
    react(bob, "alice", hello, THUMBS)
    assert alice.expect(r" TAGMSG alice").tags["+draft/reply"] == hello
    carol_said = say(carol, "bob", "from carol")
    react(alice, "bob", carol_said, "lol")  # a message of another conversation
    alice.expect(rf"FAIL TAGMSG UNKNOWN_MSGID bob {carol_said} ")
    rows = history(alice, "bob")
    assert [(m.command, m.params[0]) for m in rows] == [("PRIVMSG", "bob"), ("TAGMSG", "alice")]
    assert rows[1].tags["+draft/react"] == THUMBS

    bob.send(f"REDACT alice {hello}")  # not his to take back
    bob.expect(rf"FAIL REDACT REDACT_FORBIDDEN alice {hello} ")
    alice.send(f"REDACT bob {hello} :oops")
    bob.expect(rf":alice!\S+ REDACT bob {hello} :?oops")
    alice.expect(rf":alice!\S+ REDACT bob {hello}")
    carol.never(r"REDACT")
    for c, other in ((alice, "bob"), (bob, "alice")):
        assert history(c, other) == []  # the message and the reaction to it
    alice.send(f"REDACT bob {hello}")
    alice.expect(rf"FAIL REDACT UNKNOWN_MSGID bob {hello} ")
    guest = connect(server.address, "guest", TAGS)
    make_server.clients.append(guest)  # type: ignore[attr-defined]
    guest.send(f"REDACT bob {carol_said}")
    guest.expect(r"FAIL REDACT INVALID_TARGET bob ")
    # A guest's private reactions are relayed (nothing to check them against) and never kept.
    react(guest, "bob", "whatever", "lol")
    assert bob.expect(r" TAGMSG bob").tags["+draft/react"] == "lol"


def test_reactions_unreact_and_redact_reach_the_other_node_and_every_history(make_server: Factory,
                                                                              redis_url: str) -> None:
    a, b = make_server(redis_url=redis_url), make_server(redis_url=redis_url)
    alice = joined(make_server, a, "alice")
    bob = joined(make_server, b, "bob")
    alice.expect(r":bob!\S+ JOIN #dev")
    hello = say(alice, "#dev", "hello")
    bob.expect(r"PRIVMSG #dev :hello")
    second = say(alice, "#dev", "second")
    bob.expect(r"PRIVMSG #dev :second")
    for msgid, value in ((hello, THUMBS), (second, "ok"), (second, "lol")):
        react(bob, "#dev", msgid, value)
        got = alice.expect(r" TAGMSG #dev")
        assert (got.tags["+draft/reply"], got.tags["+draft/react"]) == (msgid, value)
    react(bob, "#dev", second, "lol", tag="+draft/unreact")
    assert alice.expect(r" TAGMSG #dev").tags["+draft/unreact"] == "lol"
    alice.send(f"REDACT #dev {hello}")
    bob.expect(rf":alice!\S+ REDACT #dev {hello}")

    want = [("PRIVMSG", "second", None), ("TAGMSG", "#dev", "ok")]
    for c in (alice, bob):  # the shared stream, read from either node
        assert [(m.command, m.params[-1], m.tags.get("+draft/react")) for m in history(c, "#dev")] == want
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        entries = [fields for _, fields in r.xrange("lobby:history:#dev")]
    finally:
        r.close()
    assert [(f["command"], f["text"]) for f in entries] == [("PRIVMSG", "second"), ("TAGMSG", "")]
    for node in (a, b):  # and each node's own copy
        assert node.history is not None
        local = node.history.local
        wait_until(lambda local=local: [(x.command, x.tags.get("+draft/react")) for x in local.latest("#dev", 10)]
                   == [("PRIVMSG", None), ("TAGMSG", "ok")])


class Screen:
    """A View that keeps the plain lines lobby connect would print."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def show(self, line: Line, room: str | None, me: str) -> None:
        with self._lock:
            self.lines.append(safe(line).plain(room or ""))

    def expect(self, pattern: str) -> str:
        """The first line shown matching pattern (waiting for it)."""
        regex = re.compile(pattern)
        found: list[str] = []

        def seen() -> bool:
            with self._lock:
                found[:] = [x for x in self.lines if regex.search(x)]
            return bool(found)

        try:
            wait_until(seen)
        except AssertionError:
            raise AssertionError(f"no line matching {pattern!r}; shown: {self.lines[-10:]}") from None
        return found[0]


def test_lobby_connect_shows_replies_and_reactions_hides_typing_and_sends_react_and_reply(
        make_server: Factory) -> None:
    server = make_server()
    bob = connect(server.address, "bob", "message-tags echo-message server-time")
    make_server.clients.append(bob)  # type: ignore[attr-defined]
    screen = Screen()
    ci = ChatClient(ClientConnection("127.0.0.1", server.address[1]), screen)
    try:
        ci.start()
        assert ci.sign_in("ci", timeout=10).outcome is Outcome.WELCOME and ci.wait_ready(10)
        bob.expect(r":ci!\S+ JOIN #lobby")
        run_input(ci, "/react " + THUMBS)
        screen.expect(r"nothing said here yet to answer")
        bob.send("@+typing=active TAGMSG #lobby")
        hello = say(bob, "#lobby", "hello there, a line long enough to be cut when it is quoted")
        screen.expect(r"bob: hello there")
        run_input(ci, "/react " + THUMBS)
        got = bob.expect(r" TAGMSG #lobby")
        assert (got.tags["+draft/reply"], got.tags["+draft/react"]) == (hello, THUMBS)
        screen.expect(rf'• ci reacted {THUMBS} to "hello there, a line long enough to be c…"$')
        run_input(ci, "my own line")
        mine = bob.expect(r"PRIVMSG #lobby :my own line").tags["msgid"]
        react(bob, "#lobby", mine, "tada")
        screen.expect(r'• bob reacted tada to "my own line"$')
        bob.send(f"@+draft/reply={mine} PRIVMSG #lobby :an answer")
        answer = bob.expect(r"PRIVMSG #lobby :an answer").tags["msgid"]
        assert screen.expect(r"replying to ci").endswith("• ↪ replying to ci: my own line")
        run_input(ci, "/reply sure")
        assert bob.expect(r"PRIVMSG #lobby :sure").tags["+draft/reply"] == answer
        react(bob, "#lobby", mine, "tada", tag="+draft/unreact")
        screen.expect(r'• bob took back tada from "my own line"$')
        lines = screen.lines
        assert lines.index(next(x for x in lines if "replying to ci" in x)) + 1 == lines.index(
            next(x for x in lines if x.endswith("bob: an answer")))
        assert not any("typing" in line or "TAGMSG" in line for line in lines)
    finally:
        ci.quit()


# -- without sockets -------------------------------------------------------------------------------


def test_what_history_keeps_of_tags() -> None:
    react = Message("TAGMSG", ("#dev",), "b!b@h", {"+draft/react": "x", "+draft/reply": "m1"})
    assert kept(react) and kept_tags(react) == {"+draft/react": "x", "+draft/reply": "m1"}
    assert not kept(Message("TAGMSG", ("#dev",), "b!b@h", {"+typing": "active"}))
    assert not kept(Message("TAGMSG", ("#dev",), "b!b@h", {"+draft/unreact": "x", "+draft/reply": "m1"}))
    assert kept_tags(Message("PRIVMSG", ("#dev", "x"), None, {"+typing": "active", "+draft/reply": "m"})) == {
        "+draft/reply": "m"}
    assert not bad_reaction(THUMBS) and not bad_reaction("lol") and not bad_reaction("x" * 64)
    assert not bad_reaction("\U0001F3F4\U000E0067\U000E0062\U000E0073\U000E0063\U000E0074\U000E007F")  # a flag
    for bad in ("", "x" * 65, "\u00e9" * 33, "a\x00", "a\x1b[31m", "\x7f", "\u202e", "a\u200bb"):
        assert bad_reaction(bad), repr(bad)


def test_a_history_file_from_before_tags_gets_the_column_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE messages (id INTEGER PRIMARY KEY, room TEXT NOT NULL, msgid TEXT NOT NULL UNIQUE,
            ts_ms INTEGER NOT NULL, source TEXT NOT NULL, command TEXT NOT NULL, target TEXT NOT NULL,
            text TEXT NOT NULL);
        INSERT INTO messages VALUES (1, '#dev', 'old1', 1000, 'a!a@h', 'PRIVMSG', '#dev', 'before tags');
    """)
    db.commit()
    db.close()
    store = History(str(path))
    store.open()
    try:
        store.add("#dev", "new1", 2.0, "b!b@h", "TAGMSG", "", {"+draft/react": "x", "+draft/reply": "old1"})
        rows = store.latest("#dev", 10)
        assert [(r.msgid, r.tags) for r in rows] == [
            ("old1", {}), ("new1", {"+draft/react": "x", "+draft/reply": "old1"})]
        assert store.reactions("#dev", "old1") == ["new1"]
        assert store.reactions("#dev", "old1", nick="B", value="x") == ["new1"]
        assert store.reactions("#dev", "old1", nick="a") == []
        store.forget("#dev", ["new1"])
        assert [r.msgid for r in store.latest("#dev", 10)] == ["old1"]
    finally:
        store.close()
