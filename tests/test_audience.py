"""Room messages in one step per render key (core/audience.py, Chat.publish_room), without sockets.

The network layer gives each plain connection a fan_out list and a ready() hook; here a link
keeps the list and the test plays the flusher: what was appended, parsed, is what it was sent.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from backend.core.audience import Audience, route_epoch
from backend.core.chat import Chat
from backend.core.client import Client
from backend.core.config import ChatConfig
from backend.core.dispatch import dispatch
from backend.irc import Message, parse_line
from tests.test_core_handlers import MemoryHistory, RecordingCluster, RecordingLink


class FanOutLink(RecordingLink):
    """A RecordingLink that also takes fan-out the way net.Connection does: a list to append to."""

    def __init__(self) -> None:
        super().__init__()
        self.fan_out: list[bytes] = []

    def flushed(self) -> list[Message]:
        """What the flusher would send: the fan-out, parsed, in order (and then none of it again)."""
        lines = [parse_line(x) for data in self.fan_out for x in data.decode().split("\r\n") if x]
        self.fan_out.clear()
        return lines


@pytest.fixture
def chat() -> Chat:
    chat = Chat(ChatConfig(motd=""), history=MemoryHistory(), cluster=RecordingCluster())
    handed: list[object] = []

    def ready(links: Iterable[object]) -> None:
        handed.extend(links)

    chat.fan_out_ready = ready
    chat.handed = handed  # type: ignore[attr-defined]
    return chat


def person(chat: Chat, nick: str, caps: str = "") -> tuple[Client, FanOutLink]:
    link = FanOutLink()
    client = chat.client(link, "192.0.2.1")
    lines = ["CAP LS 302", f"CAP REQ :{caps}", "CAP END"] if caps else []
    for line in [*lines, f"NICK {nick}", f"USER {nick} 0 * :{nick}"]:
        dispatch(chat, client, parse_line(line))
    assert client.registered
    link.sent.clear()
    link.fan_out.clear()
    return client, link


def say(chat: Chat, client: Client, line: str) -> None:
    dispatch(chat, client, parse_line(line))


def test_a_room_message_reaches_every_member_but_the_sender_each_as_it_reads_lines(chat: Chat) -> None:
    alice, alice_link = person(chat, "alice")
    _, bob_link = person(chat, "bob", caps="server-time message-tags")
    _, carol_link = person(chat, "carol")
    for link in (alice_link, bob_link, carol_link):
        link.flushed()
    chat.handed.clear()  # type: ignore[attr-defined]
    say(chat, alice, "PRIVMSG #lobby :hello")
    assert alice_link.flushed() == []  # no echo asked for
    plain = carol_link.flushed()
    tagged = bob_link.flushed()
    assert [(m.command, m.params) for m in plain] == [("PRIVMSG", ("#lobby", "hello"))] and not plain[0].tags
    assert [(m.command, m.params) for m in tagged] == [("PRIVMSG", ("#lobby", "hello"))] and "time" in tagged[0].tags
    # The flusher is handed the links it must send for, not the sender's.
    handed = {id(x) for x in chat.handed}  # type: ignore[attr-defined]
    assert handed == {id(bob_link), id(carol_link)}


def test_a_room_sorts_its_members_once_until_it_or_a_route_changes(chat: Chat) -> None:
    alice, _ = person(chat, "alice")
    person(chat, "bob")
    first = chat.hub.audience("#lobby")
    assert first is not None and chat.hub.audience("#lobby") is first  # kept between messages
    assert sorted(len(g.members) for g in first.groups) == [2]
    person(chat, "carol")  # a join
    second = chat.hub.audience("#lobby")
    assert second is not first and second is not None and sum(len(g.members) for g in second.groups) == 3
    say(chat, alice, "NICK alicia")  # a nick
    third = chat.hub.audience("#lobby")
    assert third is not second
    epoch = route_epoch()
    alice.present(None)  # any Route set again, anywhere
    assert route_epoch() > epoch and chat.hub.audience("#lobby") is not third


def test_someone_joining_is_reached_through_deliver_and_told_once(chat: Chat) -> None:
    alice, _ = person(chat, "alice")
    bob, bob_link = person(chat, "bob")
    bob.joining = set()  # as rooms.enter_room does while the join's replay is read
    audience = chat.hub.audience("#lobby")
    assert audience is not None and bob.member in audience.others
    say(chat, alice, "PRIVMSG #lobby :while you join")
    assert bob_link.fan_out == []
    assert [m.params[1] for m in bob_link.sent if m.command == "PRIVMSG"] == ["while you join"]
    assert len(bob.joining) == 1  # its msgid: left out of the replay
    bob.joining = None
    say(chat, alice, "PRIVMSG #lobby :after")
    assert [m.params[1] for m in bob_link.flushed()] == ["after"]


def test_the_sender_is_left_out_of_its_group_and_nobody_else(chat: Chat) -> None:
    members = [person(chat, nick) for nick in ("a1", "a2", "a3")]
    audience = chat.hub.audience("#lobby")
    assert isinstance(audience, Audience)
    (group,) = audience.groups
    sender = members[1][0]
    without = group.but(sender)
    fan_outs, links = without
    assert len(fan_outs) == 2 and all(f is not members[1][1].fan_out for f in fan_outs)
    assert len(links) == 2 and members[1][1] not in links
    assert group.but(sender) is without  # kept: the same few speak again
    stranger, _ = person(chat, "stranger")
    say(chat, stranger, "PART #lobby")
    assert group.but(stranger) == (group.fan_outs, group.links)
