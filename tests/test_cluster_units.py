"""The cluster's parts without Redis or sockets: the inbound mirror and the sender's held queue.

The mirror gets other nodes' events as the subscriber would (wire.payload, decoded)
and applies them to a real Hub whose local members are core Clients over a recording
Link. The sender runs against a fake Redis whose pipeline records what it is given and
can be made to fail like a Redis that went away; its steps are driven by the test.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import pytest
import redis

from backend.cluster.mirror import Mirror, RemoteUser
from backend.cluster.outbound import Outbound
from backend.cluster.scripts import Scripts
from backend.cluster.sender import Held, Sender
from backend.cluster.wire import CHANNEL, payload
from backend.core.chat import Chat
from backend.core.envelope import Envelope
from backend.core.events import Joined, Quit, RoomMessage
from backend.irc import Message, parse_line

HERE, THERE, ELSEWHERE = "node-here", "node-there", "node-else"

# -- the mirror -----------------------------------------------------------------------------


class RecordingLink:
    """A Client's connection that keeps the lines delivered to it."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def send_bytes(self, data: bytes) -> None:
        self.deliver_bytes(data)

    def deliver_bytes(self, data: bytes) -> None:
        self.lines += data.decode().splitlines()

    def kill(self, reason: str, flush: bool = True) -> None:
        self.lines.append(f"killed: {reason}")

    def rehost(self, host: str) -> bool:
        return True

    def local_host(self) -> str | None:
        return None

    def take(self) -> list[str]:
        """The lines got since the last take."""
        lines, self.lines = self.lines, []
        return lines


class StoredLines:
    """A history store that only keeps what is added (what Chat.store needs)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str]] = []

    def add(self, room: str, msgid: str, when: float, source: str, command: str, text: str,
            tags: dict[str, str] | None = None) -> None:
        self.rows.append((room, msgid, text))


class Node:
    """One node's chat with local users, and the mirror under test."""

    def __init__(self) -> None:
        self.history = StoredLines()
        self.chat = Chat(history=self.history)  # type: ignore[arg-type]
        self.syncs = 0
        self.mirror = Mirror(self.chat, HERE, on_sync=self._synced)
        self.links: dict[str, RecordingLink] = {}

    def _synced(self) -> None:
        self.syncs += 1

    def local(self, nick: str, *rooms: str) -> RecordingLink:
        """A registered local user in rooms; returns the link that records what they get."""
        link = RecordingLink()
        client = self.chat.client(link, "127.0.0.1")
        client.nick, client.user, client.registered = nick, nick, True
        self.chat.hub.claim_nick(client, nick)
        for room in rooms:
            self.chat.hub.join(client, room)
        link.take()
        self.links[nick] = link
        return link

    def apply(self, node: str, kind: str, envelope: Envelope | None = None, **extra: Any) -> None:
        """Apply an event as the subscriber would: through its JSON."""
        self.mirror.apply(json.loads(payload(node, kind, envelope, **extra)))

    def remote(self, nick: str, node: str = THERE, *rooms: str) -> None:
        """A user of another node, in rooms."""
        info = {"nick": nick, "user": nick, "host": "there.example", "realname": nick, "away": ""}
        self.apply(node, "hello", user=info)
        for room in rooms:
            self.apply(node, "join", said(f"{nick}!{nick}@there.example", "JOIN", room), user=info, room=room)

    def members(self, room: str) -> list[str]:
        return sorted(m.nick for m in self.chat.hub.members_of(room))


def said(source: str, command: str, *params: str) -> Envelope:
    return Envelope(Message(command, params, source))


def commands(link: RecordingLink) -> list[tuple[str, str, tuple[str, ...]]]:
    """What a local user got since last asked: (source nick, command, params) of each line."""
    out = []
    for line in link.take():
        msg = parse_line(line)
        out.append(((msg.source or "").split("!")[0], msg.command, msg.params))
    return out


@pytest.fixture
def node() -> Node:
    return Node()


def test_a_remote_join_adds_the_user_and_tells_the_rooms_local_members(node: Node) -> None:
    alice = node.local("alice", "#lobby")
    carol = node.local("carol", "#side")
    node.remote("bob", THERE, "#lobby")
    assert isinstance(node.chat.hub.find("bob"), RemoteUser)
    assert node.members("#lobby") == ["alice", "bob"]
    assert commands(alice) == [("bob", "JOIN", ("#lobby",))]
    assert commands(carol) == []


def test_a_remote_part_and_quit_reach_only_those_who_shared_a_room(node: Node) -> None:
    alice = node.local("alice", "#lobby", "#side")
    carol = node.local("carol", "#side")
    node.remote("bob", THERE, "#lobby", "#side")
    alice.take(), carol.take()
    node.apply(THERE, "part", said("bob!bob@there.example", "PART", "#lobby"), nick="bob", room="#lobby")
    assert commands(alice) == [("bob", "PART", ("#lobby",))]
    assert commands(carol) == []
    node.apply(THERE, "quit", said("bob!bob@there.example", "QUIT", "bye"), nick="bob")
    assert commands(alice) == [("bob", "QUIT", ("bye",))]
    assert commands(carol) == [("bob", "QUIT", ("bye",))]
    assert node.chat.hub.find("bob") is None


def test_a_part_or_quit_from_a_node_that_does_not_hold_the_nick_is_ignored(node: Node) -> None:
    alice = node.local("alice", "#lobby")
    node.remote("bob", THERE, "#lobby")
    alice.take()
    node.apply(ELSEWHERE, "quit", said("bob!bob@else", "QUIT", "spoof"), nick="bob")
    node.apply(THERE, "quit", said("alice!alice@there", "QUIT", "spoof"), nick="alice")  # a local user
    assert commands(alice) == []
    assert node.members("#lobby") == ["alice", "bob"]


def test_a_remote_nick_change_renames_the_mirror_unless_the_nick_is_taken_here(node: Node) -> None:
    alice = node.local("alice", "#lobby")
    node.remote("bob", THERE, "#lobby")
    alice.take()
    node.apply(THERE, "nick", said("bob!bob@there.example", "NICK", "robert"), nick="bob", new="robert")
    assert commands(alice) == [("bob", "NICK", ("robert",))]
    assert node.members("#lobby") == ["alice", "robert"]
    node.apply(THERE, "nick", said("robert!bob@there.example", "NICK", "alice"), nick="robert", new="alice")
    assert commands(alice) == []
    assert node.members("#lobby") == ["alice", "robert"]


def test_a_room_message_is_stored_then_delivered_once_even_if_sent_twice(node: Node) -> None:
    alice = node.local("alice", "#lobby")
    carol = node.local("carol", "#side")
    node.remote("bob", THERE, "#lobby")
    alice.take()
    line = said("bob!bob@there.example", "PRIVMSG", "#lobby", "hello")
    node.apply(THERE, "room", line, room="#lobby")
    node.apply(THERE, "room", line, room="#lobby")  # its reply was lost, so it was sent again
    assert commands(alice) == [("bob", "PRIVMSG", ("#lobby", "hello"))]
    assert commands(carol) == []
    assert node.history.rows == [("#lobby", line.msgid, "hello")]


def test_a_remote_topic_sets_the_rooms_topic(node: Node) -> None:
    alice = node.local("alice", "#lobby")
    node.remote("bob", THERE, "#lobby")
    alice.take()
    node.apply(THERE, "room", said("bob!bob@there.example", "TOPIC", "#lobby", "news"), room="#lobby")
    assert commands(alice) == [("bob", "TOPIC", ("#lobby", "news"))]
    view = node.chat.hub.room("#lobby")
    assert view is not None
    assert (view.topic, view.topic_setter) == ("news", "bob!bob@there.example")


def test_away_sets_the_mirrored_users_away_text(node: Node) -> None:
    node.remote("bob", THERE)
    node.apply(THERE, "away", said("bob!bob@there.example", "AWAY", "lunch"), nick="bob", text="lunch")
    bob = node.chat.hub.find("bob")
    assert bob is not None and bob.away == "lunch"
    node.apply(THERE, "away", said("bob!bob@there.example", "AWAY"), nick="bob", text="")
    assert bob.away is None


def test_a_remote_away_and_setname_reach_local_peers_that_asked(node: Node) -> None:
    asked = node.local("asked", "#lobby")
    plain = node.local("plain", "#lobby")
    node.chat.hub.find("asked").set_caps({"away-notify", "setname"})  # type: ignore[union-attr]
    node.remote("bob", THERE, "#lobby")
    asked.take()
    plain.take()
    node.apply(THERE, "away", said("bob!bob@there.example", "AWAY", "lunch"), nick="bob", text="lunch")
    node.apply(THERE, "setname", said("bob!bob@there.example", "SETNAME", "Robert"), nick="bob", realname="Robert")
    assert commands(asked) == [("bob", "AWAY", ("lunch",)), ("bob", "SETNAME", ("Robert",))]
    assert commands(plain) == []
    bob = node.chat.hub.find("bob")
    assert bob is not None and bob.realname == "Robert"


def test_monitor_sees_remote_users_come_go_and_rename(node: Node) -> None:
    watcher = node.local("watcher")
    client = node.chat.hub.find("watcher")
    assert client is not None
    node.chat.monitors.add(client, ["bob", "robert"])  # type: ignore[arg-type]
    watcher.take()
    node.remote("bob", THERE, "#lobby")
    node.apply(THERE, "nick", said("bob!bob@there.example", "NICK", "robert"), nick="bob", new="robert")
    node.apply(THERE, "quit", said("robert!bob@there.example", "QUIT", "bye"), nick="robert")
    assert [(c, p) for _, c, p in commands(watcher)] == [
        ("730", ("watcher", "bob!bob@there.example")),
        ("731", ("watcher", "bob")),
        ("730", ("watcher", "robert!bob@there.example")),
        ("731", ("watcher", "robert")),
    ]


def test_a_private_message_reaches_its_local_target_only_if_meant_for_this_node(node: Node) -> None:
    alice = node.local("alice")
    node.remote("bob", THERE)
    line = said("bob!bob@there.example", "PRIVMSG", "alice", "psst")
    node.apply(THERE, "private", said("bob!bob@there.example", "PRIVMSG", "alice", "x"), target="alice",
               to_node=ELSEWHERE)
    node.apply(THERE, "private", line, target="alice", to_node=HERE)
    node.apply(THERE, "private", line, target="alice", to_node=HERE)
    assert commands(alice) == [("bob", "PRIVMSG", ("alice", "psst"))]


def test_a_node_going_down_quits_its_users_only(node: Node) -> None:
    alice = node.local("alice", "#lobby")
    node.remote("bob", THERE, "#lobby")
    node.remote("dan", THERE)
    node.remote("eve", ELSEWHERE, "#lobby")
    alice.take()
    node.apply(THERE, "down")
    assert commands(alice) == [("bob", "QUIT", ("Server shut down",))]
    assert node.chat.hub.find("dan") is None
    assert node.members("#lobby") == ["alice", "eve"]
    assert node.mirror.nodes() == {ELSEWHERE}


def test_a_roster_drops_the_users_and_memberships_it_no_longer_lists(node: Node) -> None:
    alice = node.local("alice", "#lobby", "#side")
    node.remote("bob", THERE, "#lobby", "#side")
    node.remote("dan", THERE, "#lobby")
    alice.take()
    node.apply(THERE, "roster", roster={"bob": ["#lobby"]})
    assert sorted(commands(alice)) == [("bob", "PART", ("#side",)),
                                       ("dan", "QUIT", ("Left while the cluster was split",))]
    assert node.members("#lobby") == ["alice", "bob"]


def test_a_remote_user_whose_nick_is_taken_here_is_not_mirrored(node: Node) -> None:
    alice = node.local("alice", "#lobby")
    node.remote("alice", THERE, "#lobby")
    assert not isinstance(node.chat.hub.find("alice"), RemoteUser)
    assert commands(alice) == []


def test_sync_asks_this_node_to_announce_its_users(node: Node) -> None:
    node.apply(THERE, "sync")
    assert node.syncs == 1


# -- the sender and its held queue -----------------------------------------------------------


class FakePipeline:
    """Records the commands given to it; execute() fails while its Redis is down."""

    def __init__(self, fake: FakeRedis) -> None:
        self.fake = fake
        self.commands: list[tuple[Any, ...]] = []

    def __len__(self) -> int:
        return len(self.commands)

    def hset(self, *args: Any) -> None:
        self.commands.append(("hset", *args))

    def hdel(self, *args: Any) -> None:
        self.commands.append(("hdel", *args))

    def evalsha(self, sha: str, numkeys: int, *args: Any) -> None:
        self.commands.append(("evalsha", args[0]))

    def publish(self, channel: str, message: str) -> None:
        self.commands.append(("publish", channel, message))

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        if not self.fake.up:
            raise redis.ConnectionError("Redis is away (fake)")
        self.fake.sent += self.commands
        return [self.fake.store_result if c[0] == "evalsha" else 1 for c in self.commands]


class FakeRedis:
    """Just the pipeline the sender uses."""

    def __init__(self) -> None:
        self.up = True
        self.sent: list[tuple[Any, ...]] = []
        self.store_result = 1  # what the STORE script answers (-1: Redis lost the streams)

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        return FakePipeline(self)

    def published(self) -> list[str]:
        return [c[2] for c in self.sent if c[0] == "publish" and c[1] == CHANNEL]


class Rig:
    """A sender on a fake Redis, with a recovery that only counts (and fails while Redis is down)."""

    def __init__(self, held_max: int = 10) -> None:
        self.redis = FakeRedis()
        self.recoveries = 0
        self.stop = threading.Event()
        self.sender = Sender(self._recover, lambda: "sha", self.stop, held_max=held_max)
        self.sender.client = self.redis

    def _recover(self, r: Any) -> None:
        if not self.redis.up:
            raise redis.ConnectionError("Redis is away (fake)")
        self.recoveries += 1

    def submit(self, *payloads: str) -> None:
        for p in payloads:
            self.sender.submit(Held(payload=p))

    def held(self) -> list[str | None]:
        return [item.payload for item in self.sender.held()]


def test_events_held_while_redis_is_down_go_out_in_order_after_one_recovery() -> None:
    rig = Rig()
    rig.redis.up = False
    rig.submit("e1", "e2")
    assert rig.sender.step() == pytest.approx(0.25)  # failed: try again after a pause
    assert rig.sender.down
    rig.submit("e3", "e4")
    rig.sender.step()
    assert rig.held() == ["e1", "e2", "e3", "e4"]
    assert rig.redis.sent == []
    rig.redis.up = True
    assert rig.sender.step() == 0.0
    assert rig.recoveries == 1
    assert rig.redis.published() == ["e1", "e2", "e3", "e4"]
    assert not rig.sender.down
    assert rig.held() == []


def test_past_the_bound_the_oldest_held_events_are_dropped_counted_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="lobby")
    rig = Rig(held_max=3)
    rig.sender.mark_down("test")
    rig.submit(*(f"e{i}" for i in range(1, 7)))  # never waits: Redis is away
    assert rig.held() == ["e4", "e5", "e6"]
    assert rig.sender.dropped == 3
    assert sum("dropping the oldest" in r.getMessage() for r in caplog.records) == 1
    rig.sender.step()
    assert rig.redis.published() == ["e4", "e5", "e6"]
    assert rig.sender.dropped == 0
    assert any("sent the 3 events held meanwhile (3 older ones were dropped)" in r.getMessage()
               for r in caplog.records)


def test_state_announced_after_an_outage_never_pushes_out_what_was_held_before() -> None:
    rig = Rig(held_max=2)
    rig.sender.mark_down("test")
    rig.submit("e1", "e2")
    rig.sender.submit(Held(payload="hello"), bounded=False)
    assert rig.held() == ["e1", "e2", "hello"]


def test_a_full_queue_makes_the_submitter_wait_while_redis_answers() -> None:
    rig = Rig(held_max=2)
    rig.submit("e1", "e2")
    waiter = threading.Thread(target=rig.submit, args=("e3",), daemon=True)
    waiter.start()
    time.sleep(0.2)
    assert waiter.is_alive(), "a full queue dropped or took an event while Redis answers"
    assert rig.held() == ["e1", "e2"]
    rig.sender.step()
    waiter.join(5)
    assert not waiter.is_alive()
    assert rig.redis.published() == ["e1", "e2"]
    assert rig.held() == ["e3"]
    assert rig.sender.dropped == 0


def test_a_stream_entry_redis_lost_is_stored_again_first_after_a_recovery() -> None:
    rig = Rig()
    rig.redis.store_result = -1  # Redis restarted empty: STORE refuses until the streams are back
    rig.sender.submit(Held(room="#lobby", entry=["m1"], payload="said"))
    assert rig.sender.step() == pytest.approx(0.25)
    assert rig.redis.published() == ["said"]  # the others heard it; only the stream waits
    rig.submit("later")
    assert [item.entry for item in rig.sender.held()] == [["m1"], None]
    rig.redis.store_result = 1
    rig.redis.sent.clear()
    rig.sender.step()
    assert rig.recoveries == 1
    assert [c[0] for c in rig.redis.sent] == ["evalsha", "publish"]
    assert rig.redis.published() == ["later"]


def test_nothing_is_queued_before_start_or_after_close_and_wait_sent_never_waits_on_a_redis_away() -> None:
    rig = Rig()
    rig.sender.client = None
    rig.submit("e1")
    assert rig.held() == []
    rig.sender.client = rig.redis
    rig.sender.mark_down("test")
    rig.submit("e2")
    started = time.monotonic()
    rig.sender.wait_sent(5.0)
    assert time.monotonic() - started < 1


def test_this_nodes_events_become_registry_writes_and_payloads_in_order() -> None:
    rig = Rig()
    scripts = Scripts()
    released: list[list[str]] = []
    scripts.release = lambda keys, args, client: released.append(keys)
    outbound = Outbound(HERE, rig.sender.submit, scripts)
    chat = Chat()
    alice = chat.client(RecordingLink(), "127.0.0.1")
    alice.nick, alice.user = "Alice", "alice"
    outbound.publish(Joined(alice, "#Lobby", said(alice.prefix, "JOIN", "#Lobby")))
    outbound.publish(RoomMessage("#Lobby", said(alice.prefix, "PRIVMSG", "#Lobby", "hi")))
    outbound.publish(Quit(alice, ("#Lobby",), said(alice.prefix, "QUIT", "bye")))
    rig.sender.step()
    assert [c[0] for c in rig.redis.sent] == ["hset", "hset", "publish", "evalsha", "publish", "hdel", "hdel",
                                              "publish"]
    assert [json.loads(p)["type"] for p in rig.redis.published()] == ["join", "room", "quit"]
    assert released == [["lobby:nick:alice"]]


def test_a_multiline_message_crosses_nodes_with_its_lines(node: Node) -> None:
    alice = node.local("alice", "#lobby")
    node.chat.hub.find("alice").set_caps({"batch", "message-tags", "draft/multiline"})  # type: ignore[union-attr]
    plain = node.local("plain", "#lobby")
    node.remote("bob", THERE, "#lobby")
    alice.take()
    plain.take()
    envelope = Envelope(Message("PRIVMSG", ("#lobby", "one\ntwo"), "bob!bob@there.example"),
                        lines=(("one", False), ("two", False)))
    node.apply(THERE, "room", envelope, room="#lobby")
    assert [c for _, c, _ in commands(alice)] == ["BATCH", "PRIVMSG", "PRIVMSG", "BATCH"]
    assert [p[-1] for _, _, p in commands(plain)] == ["one", "two"]
    assert [text for _, _, text in node.history.rows] == ["one", "two"]
