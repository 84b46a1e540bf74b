"""Several nodes on one Redis (`lobby serve --redis`): rooms, private messages, nicks, dead nodes."""

from __future__ import annotations

import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from backend.node import ChatServer
from tests.ircclient import IrcClient, connect, wait_until

pytest_plugins = ["tests.webfixtures", "tests.clusterfixtures"]

# Cluster timers for tests of dead nodes, so they need not wait out the defaults (1 s beats lasting 5 s,
# checked every 2 s): still several beats per lifetime, on a loaded machine.
QUICK_CHECK = {"cluster_check": 0.2}
QUICK = {"cluster_heartbeat": 0.2, "cluster_ttl": 1.5, **QUICK_CHECK}


@pytest.fixture
def chat_server(redis_url: str, make_server: Callable[..., ChatServer]) -> ChatServer:
    """Node A, which the web bridge fixtures (tests.webfixtures) put in front of."""
    return make_server(redis_url=redis_url, webirc_password=secrets.token_urlsafe(18))


@pytest.fixture
def nodes(redis_url: str, make_server: Callable[..., ChatServer]) -> tuple[ChatServer, ChatServer]:
    """Two chat servers sharing one Redis."""
    return make_server(redis_url=redis_url), make_server(redis_url=redis_url)


@pytest.fixture
def user(make_server: Callable[..., ChatServer]) -> Callable[..., IrcClient]:
    """A registered client of a given node."""

    def factory(node: ChatServer, nick: str | None = None, caps: str = "") -> IrcClient:
        c = connect(node.address, nick, caps)
        make_server.clients.append(c)  # type: ignore[attr-defined]
        return c

    return factory


def test_room_messages_cross_nodes_with_the_same_msgid_and_time(nodes, user) -> None:
    a, b = nodes
    alice = user(a, "alice", "message-tags server-time")
    bob = user(b, "bob", "message-tags server-time")
    alice.expect(r":bob!\S+ JOIN #lobby")
    alice.send("PRIVMSG #lobby :hello from A")
    sent = bob.expect(r":alice!\S+ PRIVMSG #lobby :hello from A")
    bob.send("PRIVMSG #lobby :hi from B")
    alice.expect(r":bob!\S+ PRIVMSG #lobby :hi from B")
    assert sent.tags["msgid"]
    assert sent.tags["time"]
    # Joins, parts, topics and nick changes reach the other node.
    alice.send("JOIN #side")
    bob.send("JOIN #side")
    alice.expect(r":bob!\S+ JOIN #side")
    alice.send("MODE #side +o bob")  # alice made #side (+t): she lets bob set its topic, across nodes
    bob.expect(r":alice!\S+ MODE #side \+o bob")
    bob.send("TOPIC #side :cross-node topic")
    alice.expect(r":bob!\S+ TOPIC #side :cross-node topic")
    bob.send("NICK robert")
    alice.expect(r":bob!\S+ NICK :?robert")
    alice.send("PART #side :bye")
    bob.expect(r":alice!\S+ PART #side :bye")


def test_msgid_and_time_match_on_both_nodes(nodes, user) -> None:
    a, b = nodes
    alice = user(a, "alice", "message-tags server-time echo-message")
    bob = user(b, "bob", "message-tags server-time")
    alice.expect(r":bob!\S+ JOIN #lobby")
    alice.send("PRIVMSG #lobby :same everywhere")
    echoed = alice.expect(r"PRIVMSG #lobby :same everywhere")
    seen = bob.expect(r"PRIVMSG #lobby :same everywhere")
    assert echoed.tags["msgid"] == seen.tags["msgid"]
    assert echoed.tags["time"] == seen.tags["time"]


def test_room_history_said_on_one_node_is_replayed_on_the_other(nodes, user) -> None:
    a, b = nodes
    alice = user(a, "alice", "message-tags server-time echo-message")
    bob = user(b, "bob")
    alice.expect(r":bob!\S+ JOIN #lobby")
    alice.send("PRIVMSG #lobby :remember me")
    said = alice.expect(r"PRIVMSG #lobby :remember me")
    bob.expect(r"PRIVMSG #lobby :remember me")
    carol = user(b, "carol", "message-tags server-time batch")
    replayed = carol.expect(r"PRIVMSG #lobby :remember me")
    assert replayed.tags["msgid"] == said.tags["msgid"]
    assert replayed.tags["time"] == said.tags["time"]


def test_a_node_started_later_replays_what_was_said_before(redis_url: str, make_server, user) -> None:
    a = make_server(redis_url=redis_url)
    alice = user(a, "alice", "message-tags server-time echo-message")
    alice.send("TOPIC #lobby :before b")
    alice.expect(r"TOPIC #lobby :before b")
    alice.send("PRIVMSG #lobby :said before b started")
    said = alice.expect(r"PRIVMSG #lobby :said before b started")
    b = make_server(redis_url=redis_url)
    carol = user(b, "carol", "message-tags server-time batch")
    replayed = carol.expect(r"PRIVMSG #lobby :said before b started")
    assert replayed.tags["msgid"] == said.tags["msgid"]
    assert replayed.tags["time"] == said.tags["time"]
    carol.send("TOPIC #lobby")
    carol.expect(r" 332 carol #lobby :before b")
    carol.send("CHATHISTORY LATEST #lobby * 10")
    carol.expect(r"PRIVMSG #lobby :said before b started")


def test_private_messages_cross_nodes(nodes, user) -> None:
    a, b = nodes
    alice = user(a, "alice")
    bob = user(b, "bob")
    alice.expect(r":bob!\S+ JOIN #lobby")
    alice.send("PRIVMSG Bob :psst")
    bob.expect(r":alice!\S+ PRIVMSG bob :psst")
    bob.send("NOTICE alice :noted")
    alice.expect(r":bob!\S+ NOTICE alice :noted")
    alice.send("PRIVMSG nobody :hello?")
    alice.expect(r" 401 alice nobody ")
    # AWAY is shared: a private message to an away user on the other node is answered with 301.
    bob.send("AWAY :at lunch")
    bob.expect(r" 306 bob ")
    deadline = time.monotonic() + 20
    while True:
        alice.send("WHOIS bob")
        lines = alice.lines_until(r" 318 alice bob ")
        if any(" 301 alice bob :at lunch" in line for line in lines):
            break
        assert time.monotonic() < deadline, "bob's AWAY never reached node A"
        time.sleep(0.1)
    alice.send("PRIVMSG bob :lunch?")
    alice.expect(r" 301 alice bob :at lunch")
    bob.expect(r":alice!\S+ PRIVMSG bob :lunch\?")


def test_names_and_who_show_members_on_every_node(nodes, user) -> None:
    a, b = nodes
    alice = user(a, "alice")
    user(b, "bob")
    alice.expect(r":bob!\S+ JOIN #lobby")
    alice.send("NAMES #lobby")
    names = alice.expect(r" 353 alice = #lobby ")
    assert set(names.params[-1].split()) == {"alice", "bob"}
    alice.send("WHO #lobby")
    who = alice.lines_until(r" 315 alice #lobby ")
    assert any(" 352 alice #lobby " in line and " bob " in line for line in who)
    # A node started later learns who is already there from Redis.
    late = ChatServer(a.config.__class__(host="127.0.0.1", port=0, redis_url=a.config.redis_url))
    late.start()
    try:
        carol = connect(late.address, "carol")
        try:
            carol.send("NAMES #lobby")
            names = carol.expect(r" 353 carol = #lobby ")
            assert set(names.params[-1].split()) == {"alice", "bob", "carol"}
        finally:
            carol.close()
    finally:
        late.stop()
    # A clean stop tells the others at once: carol quits for alice.
    alice.expect(r":carol!\S+ QUIT ")


def test_nicks_are_unique_across_nodes(nodes, user) -> None:
    a, b = nodes
    alice = user(a, "alice")
    clash = user(b)
    clash.send("NICK ALICE")
    clash.send("USER x 0 * :x")
    clash.expect(r" 433 \* ALICE ")
    clash.send("NICK bob")
    clash.expect(r" 001 bob ")
    clash.expect(r" 366 bob #lobby ")
    bob = clash
    bob.send("NICK Alice")
    bob.expect(r" 433 bob Alice ")
    # Released on rename and on quit.
    alice.send("NICK alicia")
    alice.expect(r"NICK :?alicia")
    bob.expect(r":alice!\S+ NICK :?alicia")
    bob.send("NICK alice")
    bob.expect(r":bob!\S+ NICK :?alice")
    alice.send("QUIT :bye")
    alice.expect_closed()
    bob.expect(r":alicia!\S+ QUIT ")
    again = user(a)
    again.register("alicia")


def test_a_crashed_node_is_noticed_and_its_nicks_freed(redis_url: str, make_server, user) -> None:
    a, b = make_server(redis_url=redis_url, **QUICK), make_server(redis_url=redis_url, **QUICK)
    alice = user(a, "alice")
    bob = user(b, "bob")
    alice.expect(r":bob!\S+ JOIN #lobby")
    assert b.backplane is not None
    b.backplane.crash()  # threads stop, nothing is told to Redis: like kill -9
    alice.expect(r":bob!\S+ QUIT :Server went away", timeout=20)
    alice.send("NAMES #lobby")
    assert alice.expect(r" 353 alice = #lobby ").params[-1].split() == ["alice"]
    user(a, "bob")
    del bob


def test_a_node_killed_with_sigkill(redis_url: str, make_server: Callable[..., ChatServer], user) -> None:
    # `lobby serve` beats with the default timers: its beat outlives it by up to 5 s; only A checks quickly.
    a = make_server(redis_url=redis_url, **QUICK_CHECK)
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--redis", redis_url, "--irc-port", "0", "--web-port", "0",
         "--db", ":memory:"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("chat server on "), line
        port = int(line.rsplit(":", 1)[1])
        remote = connect(("127.0.0.1", port), "victim")
        alice = user(a, "alice")
        remote.expect(r":alice!\S+ JOIN #lobby")
        alice.send("NAMES #lobby")
        assert "victim" in alice.expect(r" 353 alice = #lobby ").params[-1].split()
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        remote.close()
        alice.expect(r":victim!\S+ QUIT ", timeout=20)
        user(a, "victim")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_redis_unavailable_at_start_is_an_error() -> None:
    from tests.clusterfixtures import free_port  # registered by pytest_plugins by now

    port = free_port()
    done = subprocess.run(
        [sys.executable, "-m", "backend.cli", "serve", "--irc-port", "0", "--web-port", "0", "--db", ":memory:"],
        capture_output=True, text=True, timeout=30, cwd=os.path.dirname(os.path.dirname(__file__)),
        env={**os.environ, "LOBBY_REDIS": f"redis://:hunter2@127.0.0.1:{port}/0"},
    )
    assert done.returncode == 1
    assert f"cannot use Redis at redis://:***@127.0.0.1:{port}/0" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout
    assert "chat server on" not in done.stdout


def test_losing_redis_keeps_local_chat_and_recovers_when_it_returns(redis_server, make_server, user) -> None:
    a = make_server(redis_url=redis_server.url)
    b = make_server(redis_url=redis_server.url)
    alice = user(a, "alice")
    carol = user(a, "carol")
    bob = user(b, "bob")
    alice.expect(r":bob!\S+ JOIN #lobby")
    redis_server.kill()
    # The node keeps serving its own users while Redis is away.
    alice.send("PRIVMSG #lobby :while redis is down")
    carol.expect(r":alice!\S+ PRIVMSG #lobby :while redis is down")
    user(a, "dave")
    carol.expect(r":dave!\S+ JOIN #lobby")
    redis_server.start()  # empty: every node announces its users again
    deadline = time.monotonic() + 30
    attempt = 0
    while True:
        attempt += 1
        alice.send(f"PRIVMSG #lobby :back {attempt}")
        try:
            bob.expect(r":alice!\S+ PRIVMSG #lobby :back ", timeout=1)
            break
        except AssertionError:
            assert time.monotonic() < deadline, "cross-node chat did not come back"

    def names_on_b() -> set[str]:
        bob.send("NAMES #lobby")
        return set(bob.expect(r" 353 bob = #lobby ").params[-1].split())

    wait_until(lambda: names_on_b() == {"alice", "bob", "carol", "dave"}, timeout=20)
    # Nick claims are back in Redis too.
    clash = user(b)
    clash.send("NICK dave")
    clash.send("USER x 0 * :x")
    clash.expect(r" 433 \* dave ")


def test_a_browser_on_one_node_and_a_terminal_client_on_the_other(
    make_server, redis_url: str, chat_server: ChatServer, ws_client, user
) -> None:
    """The page's WebSocket bridge in front of node A; `lobby connect` (piped, as in scripts) on node B."""
    b = make_server(redis_url=redis_url)
    web_user = ws_client("webby")
    terminal = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "connect", "--port", str(b.address[1]), "--name", "term"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    lines: queue.Queue[str] = queue.Queue()
    assert terminal.stdout is not None and terminal.stdin is not None
    output = terminal.stdout

    def read() -> None:
        for line in output:
            lines.put(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def terminal_shows(text: str) -> None:
        deadline = time.monotonic() + 20
        while True:
            try:
                line = lines.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"the terminal client never showed {text!r}") from None
            if text in line:
                return

    try:
        web_user.expect(r":term!\S+ JOIN #lobby", timeout=20)
        web_user.send("NAMES #lobby")
        assert {"webby", "term"} <= set(web_user.expect(r" 353 webby = #lobby ").params[-1].split())
        web_user.send("PRIVMSG #lobby :hello from the page on node A")
        terminal_shows("hello from the page on node A")
        terminal.stdin.write("hello from the terminal on node B\n")
        terminal.stdin.flush()
        web_user.expect(r":term!\S+ PRIVMSG #lobby :hello from the terminal on node B", timeout=20)
        terminal.stdin.close()
        web_user.expect(r":term!\S+ QUIT", timeout=20)
        assert terminal.wait(20) == 0
    finally:
        if terminal.poll() is None:
            terminal.kill()
            terminal.wait(10)
        reader.join(10)
        terminal.stdout.close()


def test_a_nick_taken_on_both_nodes_while_redis_was_away_keeps_one_holder(redis_server, make_server, user) -> None:
    a = make_server(redis_url=redis_server.url)
    b = make_server(redis_url=redis_server.url)
    alice = user(a, "alice")
    bob = user(b, "bob")
    alice.expect(r":bob!\S+ JOIN #lobby")
    redis_server.kill()
    dup_a = user(a, "dup")
    dup_b = user(b, "dup")
    redis_server.start()
    closed: list[IrcClient] = []

    def one_closed() -> bool:
        for c in (dup_a, dup_b):
            if c not in closed:
                try:
                    c.expect(r"ERROR :Closing link: .*Nick collision", timeout=0.2)
                    closed.append(c)
                except AssertionError:
                    pass
        return bool(closed)

    wait_until(one_closed, timeout=30)
    assert len(closed) == 1
    survivor = dup_b if closed[0] is dup_a else dup_a
    other_side = alice if survivor is dup_b else bob
    # The survivor is seen, and reachable, from the node that lost its own dup.
    deadline = time.monotonic() + 30
    while True:
        other_side.send(f"PRIVMSG dup :are you there {other_side.nick}?")
        try:
            survivor.expect(r"PRIVMSG dup :are you there ", timeout=1)
            break
        except AssertionError:
            assert time.monotonic() < deadline, "the surviving dup is not reachable from the other node"


def test_operators_bans_quiets_and_kicks_hold_on_both_nodes(nodes, user) -> None:
    a, b = nodes
    alice = user(a, "alice")
    bob, carol = user(b, "bob"), user(b, "carol")
    alice.send("JOIN #class")
    alice.expect(r" 366 alice #class ")
    # Node B knows #class (alice made it) before anyone there joins: a room made on two nodes at
    # the same moment could have an operator on each (see the README's cluster section).
    wait_until(lambda: "alice" in b.hub.room("#class").nicks if b.hub.room("#class") else False)
    for who in (bob, carol):
        who.send("JOIN #class")
        who.expect(rf" 366 {who.nick} #class ")
        alice.expect(rf":{who.nick}!\S+ JOIN #class")
    bob.send("NAMES #class")
    assert "@alice" in bob.expect(r" 353 bob ").params[-1].split()  # alice made it, on node A
    bob.send("MODE #class +m")
    bob.expect(r" 482 bob #class ")
    alice.send("MODE #class +qv carol!*@* bob")
    bob.expect(r":alice!\S+ MODE #class \+qv carol!\*@\* bob")
    carol.expect(r":alice!\S+ MODE #class \+qv")
    carol.send("PRIVMSG #class :hello?")
    carol.expect(r" 404 carol #class :.*muted")  # node B enforces node A's quiet
    bob.send("PRIVMSG #class :voiced me")
    alice.expect(r":bob!\S+ PRIVMSG #class :voiced me")
    alice.send("MODE #class +b carol")
    carol.expect(r"MODE #class \+b carol!\*@\*")
    alice.send("KICK #class carol :bye")
    carol.expect(r":alice!\S+ KICK #class carol :bye")
    bob.expect(r":alice!\S+ KICK #class carol :bye")
    carol.send("JOIN #class")
    carol.expect(r" 474 carol #class ")  # and node B refuses the banned user
