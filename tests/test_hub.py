"""Unit tests of the Hub and of Envelope rendering: state and formatting, no sockets."""

from __future__ import annotations

import pytest

from backend.core.chat import Chat
from backend.core.envelope import TAGS_ALL, TAGS_NONE, TAGS_TIME, Envelope, render_key_for
from backend.core.events import RoomMessage
from backend.core.hub import Hub
from backend.irc import IrcError, Message, parse_line
from backend.irc import numerics as n


class Recorder:
    """A member that keeps what it is sent."""

    def __init__(self, nick: str, key: str = TAGS_NONE) -> None:
        self.nick = nick
        self.user = nick
        self.host = "h"
        self.realname = nick
        self.away: str | None = None
        self.key = key
        self.got: list[bytes] = []

    @property
    def prefix(self) -> str:
        return f"{self.nick}!{self.user}@{self.host}"

    def deliver(self, envelope: Envelope) -> None:
        self.got.append(envelope.render(self.key))


def registered(hub: Hub, *nicks: str) -> list[Recorder]:
    members = [Recorder(nick) for nick in nicks]
    for m in members:
        hub.claim_nick(m, m.nick)
    return members


def test_nicks_are_unique_case_insensitively() -> None:
    hub = Hub()
    (alice,) = registered(hub, "Alice")
    with pytest.raises(IrcError) as err:
        hub.claim_nick(Recorder("ALICE"), "ALICE")
    assert err.value.numeric == n.ERR_NICKNAMEINUSE
    assert hub.find("aLIce") is alice


def test_join_returns_a_view_and_everyone_to_tell_once() -> None:
    hub = Hub()
    alice, bob = registered(hub, "alice", "bob")
    view, told = hub.join(alice, "#Dev")
    assert view.name == "#Dev" and view.nicks == ("alice",) and told == [alice]
    view, told = hub.join(bob, "#dev")
    assert view.name == "#Dev" and set(view.nicks) == {"alice", "bob"} and set(told) == {alice, bob}
    assert hub.join(bob, "#DEV") is None


def test_rename_moves_the_member_in_every_room_and_frees_the_old_nick() -> None:
    hub = Hub()
    alice, bob, carol = registered(hub, "alice", "bob", "carol")
    hub.join(alice, "#a")
    hub.join(bob, "#a")
    hub.join(carol, "#c")
    told = hub.rename(alice, "alicia")
    assert set(told) == {alice, bob}
    assert hub.find("alice") is None and hub.find("ALICIA") is alice
    assert set(hub.room("#a").nicks) == {"alicia", "bob"}
    with pytest.raises(IrcError):
        hub.rename(bob, "Carol")


def test_remove_returns_peers_and_empty_rooms_vanish_except_persistent_ones() -> None:
    hub = Hub(persistent_rooms=["#lobby"])
    alice, bob = registered(hub, "alice", "bob")
    hub.join(alice, "#lobby")
    hub.join(alice, "#tmp")
    hub.join(bob, "#lobby")
    assert hub.remove(alice) == [bob]
    assert hub.room("#tmp") is None
    assert hub.remove(bob) == []
    assert hub.room("#lobby") is not None and hub.room("#lobby").nicks == ()
    assert hub.user_count() == 0


def test_part_and_topic_need_membership() -> None:
    hub = Hub()
    alice, bob = registered(hub, "alice", "bob")
    hub.join(alice, "#a")
    with pytest.raises(IrcError) as err:
        hub.part(bob, "#a")
    assert err.value.numeric == n.ERR_NOTONCHANNEL
    with pytest.raises(IrcError) as err:
        hub.set_topic(bob, "#nowhere", "x")
    assert err.value.numeric == n.ERR_NOSUCHCHANNEL
    name, told = hub.set_topic(alice, "#A", "hello")
    assert name == "#a" and told == [alice] and hub.room("#a").topic == "hello"


def test_publish_reaches_every_member_but_the_excluded_one() -> None:
    chat = Chat()
    hub = chat.hub
    alice, bob, carol = registered(hub, "alice", "bob", "carol")
    for m in (alice, bob, carol):
        hub.join(m, "#a")
    envelope = Envelope(Message("PRIVMSG", ("#a", "hi"), "alice!a@h"))
    chat.publish(RoomMessage("#a", envelope), hub.members_of("#a"), exclude=alice)  # type: ignore[arg-type]
    assert alice.got == [] and len(bob.got) == 1 and bob.got == carol.got


def test_an_envelope_is_formatted_once_per_render_key_and_shared() -> None:
    env = Envelope(Message("PRIVMSG", ("#a", "hi there"), "alice!a@h"))
    first = env.render(TAGS_ALL)
    assert env.render(TAGS_ALL) is first  # the very same bytes object: no second formatting
    tagged = parse_line(first.decode())
    assert set(tagged.tags) == {"time", "msgid"} and tagged.tags["msgid"] == env.msgid
    assert set(parse_line(env.render(TAGS_TIME).decode()).tags) == {"time"}
    assert env.render(TAGS_NONE) == b":alice!a@h PRIVMSG #a :hi there\r\n"


def test_render_key_follows_capabilities() -> None:
    assert render_key_for({"message-tags", "server-time"}) == TAGS_ALL
    assert render_key_for({"server-time"}) == TAGS_TIME
    assert render_key_for({"echo-message"}) == TAGS_NONE


def test_msgids_are_unique() -> None:
    ids = {Envelope(Message("PING", ("x",))).msgid for _ in range(10000)}
    assert len(ids) == 10000
