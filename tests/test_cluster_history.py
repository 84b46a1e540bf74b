"""Shared history with `--redis`: replay and CHATHISTORY read the rooms' Redis streams on
every node, and what a node accepts while it can't reach Redis gets there afterwards."""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
import redis

from backend.cluster import backplane as cluster
from backend.cluster import sender as cluster_sender
from backend.cluster.sender import Held, Sender
from backend.core.envelope import format_time
from backend.irc import parse_line
from backend.node import ChatServer
from tests.ircclient import IrcClient, connect, wait_until

if TYPE_CHECKING:  # imported for real by pytest_plugins (importing it here first would stop its rewriting)
    from tests.clusterfixtures import RedisProcess

pytest_plugins = ["tests.clusterfixtures"]

CAPS = "batch message-tags server-time echo-message"
# A real outage takes a node a few seconds to notice and recover from on a loaded 2-core machine.
SLOW = 60.0


class CuttableProxy:
    """A TCP relay to Redis that a test can cut and restore, so one node loses Redis and the others don't."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port: int = s.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self._flowing = threading.Event()
        self._flowing.set()
        self.restore()

    def freeze(self) -> None:
        """Keep connections open but relay nothing: Redis seems to hang."""
        self._flowing.clear()

    def thaw(self) -> None:
        """Relay again (what was sent meanwhile goes through now)."""
        self._flowing.set()

    def restore(self) -> None:
        """Accept connections again (on the same port)."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        self._spawn(self._accept, listener)

    def cut(self) -> None:
        """Close the listener and every relayed connection: connecting is refused until restore()."""
        self._flowing.set()
        with self._lock:
            listener, self._listener = self._listener, None
            socks, self._socks = self._socks, []
        if listener is not None:
            listener.close()
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        with self._lock:
            threads, self._threads = self._threads, []
        for t in threads:
            t.join(10)
            assert not t.is_alive(), "proxy thread did not stop"

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                down, _ = listener.accept()
            except OSError:
                return  # closed by cut()
            try:
                up = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                down.close()
                continue
            up.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    down.close()
                    up.close()
                    return
                self._socks += [down, up]
                for pair in ((down, up), (up, down)):
                    thread = threading.Thread(target=self._pump, args=pair, daemon=True)
                    self._threads.append(thread)
                    thread.start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                while not self._flowing.wait(0.1):
                    if src.fileno() < 0:
                        return  # cut meanwhile
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def user(make_server: Callable[..., ChatServer]) -> Callable[..., IrcClient]:
    """A registered client of a given node, closed at teardown."""

    def factory(node: ChatServer, nick: str, caps: str = CAPS) -> IrcClient:
        c = connect(node.address, nick, caps)
        make_server.clients.append(c)  # type: ignore[attr-defined]
        return c

    return factory


@pytest.fixture
def proxy(make_server: Callable[..., ChatServer], redis_server: RedisProcess) -> Iterator[CuttableProxy]:
    """A cuttable way to Redis (torn down before the nodes, whose threads make_server checks)."""
    relay = CuttableProxy(redis_server.port)
    yield relay
    relay.cut()


def batch_rows(client: IrcClient) -> list[tuple[str, str, str]]:
    """(msgid, time, text) of each message in the next chathistory batch the client reads."""
    client.expect(r"BATCH :?\+\S+ chathistory ")
    rows = []
    for line in client.lines_until(r"BATCH :?-"):
        msg = parse_line(line)
        if msg.command in ("PRIVMSG", "NOTICE", "TOPIC"):
            rows.append((msg.tags["msgid"], msg.tags["time"], msg.params[-1]))
    return rows


def ask(client: IrcClient, request: str) -> list[str]:
    """The texts CHATHISTORY answers (an empty batch is an empty list)."""
    client.send("CHATHISTORY " + request)
    return [text for _, _, text in batch_rows(client)]


def join_and_replay(client: IrcClient, room: str) -> list[tuple[str, str, str]]:
    """JOIN room; the (msgid, time, text) of its replay."""
    client.send(f"JOIN {room}")
    client.expect(rf" 366 {client.nick} {room} ")
    return batch_rows(client)


def stream_texts(url: str, room: str) -> list[str]:
    """The texts in a room's Redis stream, in stream order."""
    r = redis.Redis.from_url(url, decode_responses=True)
    try:
        return [fields["text"] for _, fields in r.xrange(f"{cluster.PREFIX}history:{room.casefold()}")]
    finally:
        r.close()


def test_replay_and_every_chathistory_query_answer_the_same_on_both_nodes(make_server, redis_url: str, user) -> None:
    a = make_server(redis_url=redis_url)
    b = make_server(redis_url=redis_url)
    alice = user(a, "alice")
    bob = user(b, "bob")
    for c in (alice, bob):
        c.send("JOIN #hist")
        c.expect(r" 366 \S+ #hist ")
    alice.expect(r":bob!\S+ JOIN #hist")
    said: list[tuple[str, str, str]] = []  # (msgid, time, text) as their senders saw them
    for i in range(12):
        speaker = bob if i % 4 == 3 else alice  # mostly through A, some through B
        speaker.send(f"PRIVMSG #hist :m{i}")
        echo = speaker.expect(rf"PRIVMSG #hist :m{i}$")
        said.append((echo.tags["msgid"], echo.tags["time"], f"m{i}"))
        (alice if speaker is bob else bob).expect(rf"PRIVMSG #hist :m{i}$")
    texts = [text for _, _, text in said]
    assert stream_texts(redis_url, "#hist") == texts

    # Replay on join: the same lines, msgids and times on B as on A.
    replays = [join_and_replay(user(node, nick), "#hist") for node, nick in ((b, "carol"), (a, "dave"))]
    assert replays[0] == replays[1] == said

    msgid = {text: m for m, _, text in said}
    when = {text: t for _, t, text in said}
    queries = {
        "LATEST #hist * 5": texts[-5:],
        f"LATEST #hist msgid={msgid['m8']} 10": texts[9:],
        f"BEFORE #hist msgid={msgid['m6']} 3": texts[3:6],
        f"AFTER #hist msgid={msgid['m6']} 3": texts[7:10],
        f"AROUND #hist msgid={msgid['m6']} 4": texts[4:8],
        f"BETWEEN #hist msgid={msgid['m2']} msgid={msgid['m9']} 10": texts[3:9],
        f"BETWEEN #hist msgid={msgid['m9']} msgid={msgid['m2']} 3": texts[6:9],
        f"BEFORE #hist msgid={msgid['m0']} 5": [],
        "BEFORE #hist msgid=no-such-msgid 5": [],
    }
    times = [t for _, t, _ in said]
    t6 = when["m6"]
    # A timestamp sits before the messages of its millisecond (several may share one).
    queries.update({
        f"BEFORE #hist timestamp={t6} 3": [x for x, t in zip(texts, times, strict=True) if t < t6][-3:],
        f"AFTER #hist timestamp={t6} 3": [x for x, t in zip(texts, times, strict=True) if t >= t6][:3],
        f"BETWEEN #hist timestamp={when['m1']} timestamp={t6} 20":
            [x for x, t in zip(texts, times, strict=True) if when["m1"] <= t < t6],
        f"LATEST #hist timestamp={when['m10']} 20": [x for x, t in zip(texts, times, strict=True) if t >= when["m10"]],
        f"AROUND #hist timestamp={t6} 2": [x for x, t in zip(texts, times, strict=True) if t < t6][-1:]
        + [x for x, t in zip(texts, times, strict=True) if t >= t6][:1],
        f"BEFORE #hist timestamp={format_time(0.001)} 5": [],
    })
    for request, expected in queries.items():
        assert ask(alice, request) == expected, request
        assert ask(bob, request) == expected, request


def test_a_message_accepted_while_a_node_is_cut_off_from_redis_reaches_the_stream(
    make_server, redis_url: str, proxy: CuttableProxy, user, caplog
) -> None:
    """Node B reaches Redis through a proxy the test cuts: B keeps what it accepted meanwhile and
    adds it once Redis answers again; B then serves what A said meanwhile from the stream."""
    caplog.set_level(logging.WARNING, logger="lobby")
    a = make_server(redis_url=redis_url)
    b = make_server(redis_url=proxy.url)
    alice = user(a, "alice")
    bob = user(b, "bob")
    alice.expect(r":bob!\S+ JOIN #lobby")
    alice.send("PRIVMSG #lobby :before the cut")
    bob.expect(r"PRIVMSG #lobby :before the cut")

    proxy.cut()
    bob.send("PRIVMSG #lobby :said on B while cut off")
    bob.expect(r"PRIVMSG #lobby :said on B while cut off")  # accepted: echoed by B
    alice.send("PRIVMSG #lobby :said on A meanwhile")
    alice.expect(r"PRIVMSG #lobby :said on A meanwhile")
    wait_until(lambda: any("holding this node's events" in r.getMessage() for r in caplog.records), timeout=SLOW)
    proxy.restore()

    # In the stream once, after what was there before (it arrived late, so it comes last).
    wait_until(lambda: "said on B while cut off" in stream_texts(redis_url, "#lobby"), timeout=SLOW)
    texts = stream_texts(redis_url, "#lobby")
    assert texts == ["before the cut", "said on A meanwhile", "said on B while cut off"]
    # Alice gets B's line late, once (B's node sent it when Redis came back).
    alice.expect(r":bob!\S+ PRIVMSG #lobby :said on B while cut off", timeout=SLOW)
    alice.assert_silent(r"said on B while cut off", wait=1.0)

    # A client joining on A later sees it in the replay (of #lobby, joined on registering).
    replay = [text for _, _, text in batch_rows(user(a, "carol"))]
    assert replay == texts
    # B never got A's line over pub/sub, but serves it from the stream, with the same msgid.
    wait_until(lambda: not b.backplane or not b.backplane._down, timeout=SLOW)
    dave = user(b, "dave")
    replay_b = batch_rows(dave)
    assert [text for _, _, text in replay_b] == texts
    dave.send("CHATHISTORY LATEST #lobby * 10")
    assert batch_rows(dave) == replay_b
    assert any("Redis answers again: sent the" in r.getMessage() for r in caplog.records)


def test_a_redis_that_hangs_costs_a_history_read_seconds_not_minutes(
    make_server, redis_url: str, proxy: CuttableProxy, user, caplog
) -> None:
    """Redis stops answering (its connections stay open): CHATHISTORY gives up after READ_TIMEOUT
    and answers from the node's copy; from then on the node holds its events instead of waiting."""
    caplog.set_level(logging.WARNING, logger="lobby")
    b = make_server(redis_url=proxy.url)
    bob = user(b, "bob")
    bob.send("PRIVMSG #lobby :before the hang")
    bob.expect(r"PRIVMSG #lobby :before the hang")
    wait_until(lambda: stream_texts(redis_url, "#lobby") == ["before the hang"])
    proxy.freeze()
    started = time.monotonic()
    bob.send("CHATHISTORY LATEST #lobby * 10")
    assert [text for _, _, text in batch_rows(bob)] == ["before the hang"]
    assert time.monotonic() - started < 4 * cluster.READ_TIMEOUT + 5  # one retry, on a loaded machine
    carol = user(b, "carol")  # her nick claim no longer waits on Redis either
    assert [text for _, _, text in batch_rows(carol)] == ["before the hang"]
    carol.send("PRIVMSG #lobby :said while Redis hung")
    bob.expect(r"PRIVMSG #lobby :said while Redis hung")
    proxy.thaw()
    wait_until(lambda: stream_texts(redis_url, "#lobby") == ["before the hang", "said while Redis hung"],
               timeout=SLOW)


def test_a_user_joining_right_after_a_line_was_said_on_their_node_gets_it_in_the_replay(
    make_server, redis_url: str, user, monkeypatch
) -> None:
    """Lines reach the streams from a sender thread; a replay waits for this node's queued ones."""
    a = make_server(redis_url=redis_url)
    alice = user(a, "alice")
    alice.send("PRIVMSG #lobby :first")
    wait_until(lambda: stream_texts(redis_url, "#lobby") == ["first"])
    execute = Sender.execute

    def slow_execute(self: Sender, r: object, items: list[Held]) -> list[Held]:
        time.sleep(0.5)  # a Redis far away: the line is said here well before the stream has it
        return execute(self, r, items)

    monkeypatch.setattr(Sender, "execute", slow_execute)
    alice.send("PRIVMSG #lobby :second")
    alice.expect(r"PRIVMSG #lobby :second")  # echo-message: accepted and delivered on this node
    carol = user(a, "carol")
    assert [text for _, _, text in batch_rows(carol)] == ["first", "second"]


def test_a_redis_that_hangs_does_not_hold_up_a_nodes_own_users(
    make_server, redis_url: str, proxy: CuttableProxy, user
) -> None:
    """The backplane's round trip is off the speaker's thread: local users see a line at once
    even while Redis hangs (sent inline, it waited out the client's 5 s socket timeout first)."""
    b = make_server(redis_url=proxy.url)
    bob, carol = user(b, "bob"), user(b, "carol")
    for c in (bob, carol):  # a PONG comes once the join, replay read included, is done
        c.send("PING :joined")
        c.expect(r"PONG .*joined")
    proxy.freeze()
    started = time.monotonic()
    bob.send("PRIVMSG #lobby :said while Redis hangs")
    carol.expect(r"PRIVMSG #lobby :said while Redis hangs", timeout=SLOW)
    assert time.monotonic() - started < 3, "the line waited on Redis (its socket timeout is 5 s)"
    proxy.thaw()
    wait_until(lambda: stream_texts(redis_url, "#lobby") == ["said while Redis hangs"], timeout=SLOW)


def test_past_its_bound_a_cut_off_node_drops_the_oldest_held_events_and_says_how_many(
    make_server, redis_url: str, proxy: CuttableProxy, user, caplog, monkeypatch
) -> None:
    monkeypatch.setattr(cluster, "HELD_MAX", 5)
    caplog.set_level(logging.WARNING, logger="lobby")
    b = make_server(redis_url=proxy.url)
    bob = user(b, "bob")
    # The node sends its events from a sender thread: let bob's join reach Redis before the cut,
    # so that only the eight lines below are held.
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        wait_until(lambda: r.hexists(cluster.PREFIX + "room:#lobby", "bob"))
    finally:
        r.close()
    proxy.cut()
    for i in range(8):
        bob.send(f"PRIVMSG #lobby :held {i}")
        bob.expect(rf"PRIVMSG #lobby :held {i}$")
    wait_until(lambda: any("dropping the oldest" in r.getMessage() for r in caplog.records), timeout=SLOW)
    proxy.restore()
    wait_until(lambda: "held 7" in stream_texts(redis_url, "#lobby"), timeout=SLOW)
    texts = stream_texts(redis_url, "#lobby")
    # The newest five were held. The first lines may have been on their way to Redis when the
    # cut came (in the batch the sender had taken; on a slow machine more than one): Redis may
    # have stored them though their answer was cut off, and the sender, which never heard it,
    # counts them among the dropped or sends them on.
    assert texts[-5:] == [f"held {i}" for i in range(3, 8)]
    early = texts[:-5]
    assert early == [f"held {i}" for i in range(len(early))], texts
    told = re.compile(r"\((\d+) older ones were dropped\)")
    wait_until(lambda: any(told.search(r.getMessage()) for r in caplog.records), timeout=SLOW)
    dropped = next(int(m[1]) for r in caplog.records if (m := told.search(r.getMessage())))
    assert 3 - len(early) <= dropped <= 3, (dropped, texts)
    assert sum("dropping the oldest" in r.getMessage() for r in caplog.records) == 1


def test_redis_restarted_empty_gets_the_history_back_and_what_was_said_meanwhile(
    make_server, redis_server: RedisProcess, user
) -> None:
    a = make_server(redis_url=redis_server.url)
    b = make_server(redis_url=redis_server.url)
    alice = user(a, "alice")
    bob = user(b, "bob")
    alice.expect(r":bob!\S+ JOIN #lobby")
    for i in range(3):
        alice.send(f"PRIVMSG #lobby :old {i}")
        bob.expect(rf"PRIVMSG #lobby :old {i}$")
    redis_server.kill()
    bob.send("PRIVMSG #lobby :said on B while Redis was down")
    bob.expect(r"PRIVMSG #lobby :said on B while Redis was down")
    redis_server.start()  # empty, as Redis without persistence restarts

    expected = ["old 0", "old 1", "old 2", "said on B while Redis was down"]
    wait_until(lambda: stream_texts(redis_server.url, "#lobby") == expected, timeout=SLOW)
    wait_until(lambda: not a.backplane or not a.backplane._down, timeout=SLOW)
    replay = [text for _, _, text in batch_rows(user(a, "carol"))]
    assert replay == expected


def test_paging_back_goes_past_the_capped_stream_into_each_nodes_own_copy(
    make_server, redis_url: str, user, monkeypatch
) -> None:
    # The sender passes the stream's bounds to the STORE script.
    monkeypatch.setattr(cluster_sender, "STREAM_MAX", 20)
    monkeypatch.setattr(cluster_sender, "STREAM_SLACK", 5)
    a = make_server(redis_url=redis_url, flood=False)
    b = make_server(redis_url=redis_url, flood=False)
    alice = user(a, "alice")
    bob = user(b, "bob")
    alice.expect(r":bob!\S+ JOIN #lobby")
    # Bob's node answers a PING only once his join, replay included, is done: no line
    # below may land in that replay as well as arrive live.
    bob.send("PING :joined")
    bob.expect(r"PONG .*joined")
    for i in range(60):
        alice.send(f"PRIVMSG #lobby :n{i}")
    bob.expect(r"PRIVMSG #lobby :n59$", timeout=SLOW)
    stream = stream_texts(redis_url, "#lobby")
    assert 20 <= len(stream) <= 25 and stream == [f"n{i}" for i in range(60 - len(stream), 60)]
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert r.hlen(cluster.HISTORY.index("#lobby")) == len(stream)  # the index is trimmed with the stream
    finally:
        r.close()
    for client in (alice, bob):
        client.send("CHATHISTORY LATEST #lobby * 15")
        page = batch_rows(client)
        seen = [text for _, _, text in page]
        while page:
            client.send(f"CHATHISTORY BEFORE #lobby msgid={page[0][0]} 15")
            page = batch_rows(client)
            seen = [text for _, _, text in page] + seen
        assert seen == [f"n{i}" for i in range(60)]


def test_when_redis_cannot_answer_replay_reads_the_nodes_copy_and_says_so_once(
    make_server, redis_server: RedisProcess, user, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="lobby.history")
    a = make_server(redis_url=redis_server.url)
    alice = user(a, "alice")
    alice.send("PRIVMSG #lobby :kept here too")
    alice.expect(r"PRIVMSG #lobby :kept here too")
    redis_server.kill()
    for nick in ("carol", "dave", "erin"):
        replay = batch_rows(user(a, nick))
        assert [text for _, _, text in replay] == ["kept here too"]
    said = [r.getMessage() for r in caplog.records if "shared history unavailable" in r.getMessage()]
    assert len(said) == 1, said


def test_the_store_script_adds_a_msgid_once_and_a_late_line_after_the_others(redis_url: str) -> None:
    from backend.cluster.streams import SEED, STORE, Keys, StreamHistory, entry_args
    from backend.core.history import Ref
    from backend.store.sqlite import History

    keys = Keys("t:")
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    local = History(":memory:")
    local.open()
    try:
        store, seed = r.register_script(STORE), r.register_script(SEED)

        def add(msgid: str, when: float) -> int:
            args = [100, 10, *entry_args(msgid, when, "a!u@h", "PRIVMSG", "#R", msgid)]
            result: int = store(keys=[keys.stream("#r"), keys.index("#r"), keys.ready], args=args)
            return result

        assert add("x1", 1000.0) == -1  # no ready marker: Redis lost the streams, put them back first
        r.set(keys.ready, "1")
        assert [add("x1", 1000.0), add("x2", 1000.0), add("x1", 1000.0)] == [1, 1, 0]
        assert add("late", 999.5) == 1  # older than the stream's last entry: it goes after it
        ids = [entry_id for entry_id, _ in r.xrange(keys.stream("#r"))]
        assert ids[:2] == ["1000000-0", "1000000-1"]  # ids from the lines' times, in milliseconds
        assert int(ids[2].split("-")[0]) > 1000000  # the late line: an id from when it arrived
        assert r.hgetall(keys.index("#r")) == {"x1": ids[0], "x2": ids[1], "late": ids[2]}
        shared = StreamHistory(lambda: r, keys, local.local)
        late = shared.latest("#r", 10)[-1]
        assert (late.msgid, late.ts_ms, late.target) == ("late", 999_500, "#R")
        assert [row.msgid for row in shared.after("#r", Ref(msgid="x1"), 10)] == ["x2", "late"]
        assert [row.msgid for row in shared.before("#r", Ref(ts_ms=1_000_000), 10)] == []
        # SEED fills only a stream that is gone.
        one = entry_args("s", 5.0, "a!u@h", "PRIVMSG", "#r", "s")
        assert seed(keys=[keys.stream("#r"), keys.index("#r")], args=one) == 0
        r.delete(keys.stream("#r"))
        assert seed(keys=[keys.stream("#r"), keys.index("#r")], args=one) == 1
        assert r.hgetall(keys.index("#r")) == {"s": "5000-0"}
    finally:
        local.close()
        r.close()
