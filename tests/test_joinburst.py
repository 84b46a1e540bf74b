"""JOINs reach a room's members in batches (core/joinburst.py), socket-free.

With a drainer (the flusher, in the server), each member gets every JOIN queued since the
last drain in one delivery, exactly those after its own join, and nothing overtakes them.
"""

from __future__ import annotations

import pytest

from backend.core.chat import Chat
from backend.core.client import Client
from backend.core.config import ChatConfig
from tests.test_core_handlers import RecordingLink, register, say


class CountingLink(RecordingLink):
    """A recording link that also counts fan-out deliveries."""

    def __init__(self) -> None:
        super().__init__()
        self.deliveries = 0

    def deliver_bytes(self, data: bytes) -> None:
        self.deliveries += 1
        super().deliver_bytes(data)


@pytest.fixture
def chat() -> Chat:
    return Chat(ChatConfig(motd="", auto_join=()))


def member(chat: Chat, nick: str, caps: frozenset[str] = frozenset()) -> tuple[Client, CountingLink]:
    client, _ = register(chat, nick)
    client.set_caps(set(caps))
    link = CountingLink()
    client.link = link
    client._deliver_bytes = link.deliver_bytes
    return client, link


def inside(chat: Chat, nick: str, caps: frozenset[str] = frozenset()) -> tuple[Client, CountingLink]:
    """A member already in #big, with what its joining sent it forgotten."""
    client, link = member(chat, nick, caps)
    say(chat, client, "JOIN #big")
    link.sent.clear()
    link.deliveries = 0
    return client, link


def joins(link: RecordingLink) -> list[tuple[str, ...]]:
    return [(m.source.split("!")[0], *m.params) for m in link.sent if m.command == "JOIN"]


def test_a_burst_of_joins_reaches_each_member_once_per_drain_with_only_the_joins_after_its_own(chat: Chat) -> None:
    _, old_link = inside(chat, "old")
    woken: list[int] = []
    chat.joins.wake = lambda: woken.append(1)
    people = [member(chat, f"p{i}") for i in range(4)]
    for client, _ in people:
        say(chat, client, "JOIN #big")
    assert woken == [1]  # the drainer is asked once for the whole burst
    assert joins(old_link) == []  # nothing yet: it waits for the drain
    old_link.deliveries = 0
    for _, link in people:
        link.deliveries = 0
    chat.joins.drain()
    assert joins(old_link) == [(f"p{i}", "#big") for i in range(4)]
    assert old_link.deliveries == 1
    for i, (_, link) in enumerate(people):
        # Its own JOIN came back at once; from the batch, only those who came after it.
        assert joins(link) == [(f"p{i}", "#big")] + [(f"p{j}", "#big") for j in range(i + 1, 4)]
        assert link.deliveries == (1 if i < 3 else 0)
    first = people[0][1]
    assert [m.command for m in first.sent] == ["JOIN", "353", "366", "JOIN", "JOIN", "JOIN"]  # its own first
    chat.joins.drain()  # nothing left: nobody is told twice
    assert len(joins(old_link)) == 4


def test_extended_join_members_get_account_and_real_name_in_the_batch(chat: Chat) -> None:
    _, ext_link = inside(chat, "ext", frozenset({"extended-join"}))
    chat.joins.wake = lambda: None
    newcomer, _ = member(chat, "newcomer")
    say(chat, newcomer, "JOIN #big")
    chat.joins.drain()
    assert joins(ext_link) == [("newcomer", "#big", "*", "Newcomer")]


def test_nothing_said_in_the_room_overtakes_a_join_still_waiting(chat: Chat) -> None:
    _, old_link = inside(chat, "old")
    chat.joins.wake = lambda: None  # a drainer that never comes: publishing must drain first
    talker, _ = member(chat, "talker")
    say(chat, talker, "JOIN #big", "PRIVMSG #big :hello")
    assert [m.command for m in old_link.sent if m.command in ("JOIN", "PRIVMSG")] == ["JOIN", "PRIVMSG"]
    assert joins(old_link) == [("talker", "#big")]


def test_a_member_who_leaves_before_the_drain_is_not_told_of_joins_there(chat: Chat) -> None:
    leaver, leaver_link = inside(chat, "leaver")
    chat.joins.wake = lambda: None
    newcomer, newcomer_link = member(chat, "newcomer")
    say(chat, newcomer, "JOIN #big")
    say(chat, leaver, "PART #big")
    # Out of the room when the batch goes: to it, the newcomer simply came after it left.
    assert [(m.command, m.source.split("!")[0]) for m in leaver_link.sent] == [("PART", "leaver")]
    assert joins(newcomer_link) == [("newcomer", "#big")]
    assert [m.command for m in newcomer_link.sent if m.command == "PART"] == ["PART"]
