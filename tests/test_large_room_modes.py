"""Room modes for huge rooms: +D (delayed join) and +u (auditorium), over real sockets and in the core alone.

Under +D a member who joins is shown to nobody else until they speak or get a status; under +u
members without a status show only to operators and voiced members. A check that something did
not happen syncs with PING/PONG first (IrcClient.never), so it could fail.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from backend.cli import serve_flags
from backend.configfile import load
from backend.core.chat import Chat
from backend.core.config import ChatConfig
from backend.core.dispatch import dispatch
from backend.core.identity import disconnect
from backend.core.room import FLAG_MODES
from backend.irc import Message, parse_line
from backend.irc.describe import describe
from backend.node import ChatServer
from tests.ircclient import IrcClient, connect, wait_until
from tests.pagehelpers import IrcFactory, PageFactory, expect, joined, say
from tests.test_core_handlers import RecordingLink
from tests.test_multiclient import core_conn

pytest_plugins = ["tests.clusterfixtures", "tests.webfixtures"]

ClientFactory = Callable[..., IrcClient]


def nick_of(line: str | Message) -> str:
    """Whose line it is: the nick of its source."""
    message = parse_line(line) if isinstance(line, str) else line
    return (message.source or "").split("!")[0]


def names(user: IrcClient, room: str) -> list[str]:
    user.send(f"NAMES {room}")
    words: list[str] = []
    for line in user.lines_until(rf" 366 {user.nick} {room} "):
        message = parse_line(line)
        if message.command == "353":
            words += message.params[-1].split()
    return sorted(words)


def who(user: IrcClient, room: str) -> list[str]:
    user.send(f"WHO {room}")
    return sorted(parse_line(x).params[5] for x in user.lines_until(rf" 315 {user.nick} ") if " 352 " in x)


def enter(user: IrcClient, room: str) -> list[str]:
    """JOIN room; the lines of the joining, up to the end of NAMES."""
    user.send(f"JOIN {room}")
    return user.lines_until(rf" 366 {user.nick} {room} ")


def person(client: ClientFactory, nick: str, caps: str = "") -> IrcClient:
    """A registered user out of #lobby (where everyone would see everyone's QUIT and NICK)."""
    user = client(nick, caps)
    user.send("PART #lobby")
    user.expect(rf":{nick}!\S+ PART #lobby")
    return user


def lecture(client: ClientFactory, modes: str, *nicks: str, caps: str = "") -> list[IrcClient]:
    """alice makes #big (its operator) and sets modes; then the others join it, in order."""
    alice = person(client, "alice", caps)
    enter(alice, "#big")
    alice.send(f"MODE #big {modes}")
    alice.expect(rf":alice!\S+ MODE #big {modes.replace('+', '[+]')}")
    users = [alice]
    for nick in nicks:
        user = person(client, nick, caps)
        enter(user, "#big")
        users.append(user)
    for user in users:
        user.sync()
    return users


# -- over TCP ------------------------------------------------------------------------------------------


def test_isupport_lists_delayed_join_and_auditorium(client: ClientFactory) -> None:
    c = client()
    c.send("NICK eve")
    c.send("USER eve 0 * :Eve")
    tokens = [t for x in c.lines_until(r" 376 | 422 ") if " 005 " in x for t in parse_line(x).params[1:-1]]
    assert "CHANMODES=bq,k,l,Dimnstu" in tokens


def test_a_delayed_join_is_shown_when_the_joiner_first_speaks(client: ClientFactory) -> None:
    alice, bob = lecture(client, "+D", "bob")
    # bob sees himself come in, as ever: his JOIN, and NAMES with himself.
    assert names(bob, "#big") == ["@alice", "bob"]
    # Nobody else does: no JOIN, not in NAMES nor WHO.
    alice.never(r"JOIN #big")
    assert names(alice, "#big") == ["@alice"]
    assert who(alice, "#big") == ["alice"]
    alice.send("WHO #big %tnf,7")
    assert [parse_line(x).params[2] for x in alice.lines_until(r" 315 alice ") if " 354 " in x] == ["alice"]
    alice.send("WHOIS bob")
    whois = alice.lines_until(r" 318 alice bob ")
    assert not any("#big" in line for line in whois if " 319 " in line)
    # His first words show him: his JOIN just before them.
    bob.send("PRIVMSG #big :a question")
    said = alice.lines_until(r"PRIVMSG #big :a question")
    assert [parse_line(x).command for x in said[-2:]] == ["JOIN", "PRIVMSG"]
    assert nick_of(said[-2]) == "bob"
    assert names(alice, "#big") == ["@alice", "bob"]
    bob.send("PRIVMSG #big :again")
    alice.expect(r"PRIVMSG #big :again")
    alice.never(r"JOIN")  # shown once
    bob.never(r"JOIN")  # nor is his own JOIN sent to him again


def test_a_hidden_member_who_leaves_or_changes_is_never_seen(client: ClientFactory) -> None:
    alice, bob, carol, dave = lecture(client, "+D", "bob", "carol", "dave", caps="away-notify extended-join")
    bob.send("PART #big :bye")
    bob.expect(r":bob!\S+ PART #big :bye")
    carol.send("AWAY :out")
    carol.expect(r" 306 carol ")
    carol.send("NICK carla")
    carol.expect(r":carol!\S+ NICK :?carla")
    carol.send("QUIT :gone")
    for other in (alice, dave):
        other.never(r"bob|carol|carla")
    # An operator who removes a hidden member: they and the operator see it, nobody else.
    erin = person(client, "erin")
    enter(erin, "#big")
    alice.send("KICK #big erin :out")
    alice.expect(r":alice!\S+ KICK #big erin :out")
    erin.expect(r":alice!\S+ KICK #big erin :out")
    dave.never(r"erin")


def test_voice_or_operator_status_shows_a_hidden_member_before_the_mode(client: ClientFactory) -> None:
    alice, _, carol = lecture(client, "+D", "bob", "carol")
    alice.send("MODE #big +v bob")
    said = carol.lines_until(r"MODE #big \+v bob")
    assert [parse_line(x).command for x in said[-2:]] == ["JOIN", "MODE"]
    assert nick_of(said[-2]) == "bob"
    alice.expect(r":bob!\S+ JOIN #big")
    assert names(carol, "#big") == ["+bob", "@alice", "carol"]
    carol.never(r"JOIN")


def test_a_topic_or_a_tagmsg_shows_a_hidden_member_too(client: ClientFactory) -> None:
    alice, bob, carol = lecture(client, "+D-t", "bob", "carol", caps="message-tags")
    bob.send("TOPIC #big :today: trees")
    said = alice.lines_until(r"TOPIC #big :today: trees")
    assert [parse_line(x).command for x in said[-2:]] == ["JOIN", "TOPIC"]
    carol.send("@+typing=active TAGMSG #big")
    said = alice.lines_until(r"TAGMSG #big")
    assert [parse_line(x).command for x in said[-2:]] == ["JOIN", "TAGMSG"]
    assert nick_of(said[-2]) == "carol"


def test_showing_more_hidden_members_at_once_than_a_sendq_holds_drops_nobody(make_server) -> None:
    """-D with many hidden: each member gets every JOIN in one batch, more than --sendq; none is dropped."""
    server = make_server(sendq_bytes=1024)

    def client(nick: str | None = None, caps: str = "") -> IrcClient:
        c = connect(server.address, nick, caps)
        make_server.clients.append(c)
        return c

    crowd = [f"listener{i:02d}" for i in range(40)]  # 40 JOINs of about 40 bytes: past 1,024
    alice, bob, *_ = lecture(client, "+D", "bob", *crowd)
    alice.send("MODE #big -D")
    for user in (alice, bob):
        said = user.lines_until(r"MODE #big -D")
        assert sum(" JOIN #big" in line for line in said) == len(crowd) + (1 if user is alice else 0)
        user.sync()
    assert names(bob, "#big") == sorted(["@alice", "bob", *crowd])


def test_a_refused_message_does_not_show_a_hidden_member(client: ClientFactory) -> None:
    alice, bob = lecture(client, "+Dm", "bob")
    bob.send("PRIVMSG #big :let me in")
    bob.expect(r" 404 bob #big ")
    alice.never(r"bob")


def test_unsetting_delayed_join_shows_everyone_still_hidden(client: ClientFactory) -> None:
    alice, bob, carol, dave = lecture(client, "+D", "bob", "carol", "dave", caps="extended-join")
    dave.send("PRIVMSG #big :hi")  # shown already: not shown twice
    for other in (alice, bob, carol):
        other.expect(r":dave!\S+ JOIN #big \* :dave Test")  # extended-join's account and real name
        other.expect(r":dave!\S+ PRIVMSG #big :hi")
    alice.send("MODE #big -D")
    said = bob.lines_until(r"MODE #big -D")
    assert [(parse_line(x).command, nick_of(x)) for x in said] == [
        ("JOIN", "carol"), ("MODE", "alice")]
    said = alice.lines_until(r"MODE #big -D")
    assert sorted(nick_of(x) for x in said if " JOIN " in x) == ["bob", "carol"]
    said = carol.lines_until(r"MODE #big -D")
    assert [nick_of(x) for x in said] == ["bob", "alice"]
    dave.lines_until(r"MODE #big -D")
    assert names(dave, "#big") == ["@alice", "bob", "carol", "dave"]
    for user in (alice, bob, carol, dave):
        user.never(r"JOIN")
    # From now on a join shows at once.
    erin = person(client, "erin")
    enter(erin, "#big")
    alice.expect(r":erin!\S+ JOIN #big")


def test_auditorium_shows_plain_members_to_operators_and_voiced_only(client: ClientFactory) -> None:
    alice, bob, carol = lecture(client, "+u", "bob", "carol", caps="away-notify")
    # alice, the operator, saw both come in; bob did not see carol.
    bob.never(r"carol")
    assert names(alice, "#big") == ["@alice", "bob", "carol"]
    assert names(bob, "#big") == ["@alice", "bob"]
    assert names(carol, "#big") == ["@alice", "carol"]
    assert who(carol, "#big") == ["alice", "carol"]
    # Voiced, bob comes into carol's sight (his JOIN before the MODE) and sees the room.
    alice.send("MODE #big +v bob")
    said = carol.lines_until(r"MODE #big \+v bob")
    assert [parse_line(x).command for x in said[-2:]] == ["JOIN", "MODE"]
    said = bob.lines_until(r"MODE #big \+v bob")
    assert any(nick_of(x) == "carol" for x in said if " JOIN " in x)
    assert names(bob, "#big") == ["+bob", "@alice", "carol"]
    assert names(carol, "#big") == ["+bob", "@alice", "carol"]
    carol.send("AWAY :brb")
    bob.expect(r":carol!\S+ AWAY :brb")  # voiced bob sees her now
    # Voice taken back: he goes out of carol's sight (a PART after the MODE), and she out of his.
    alice.send("MODE #big -v bob")
    said = carol.lines_until(r":bob!\S+ PART #big")
    assert [parse_line(x).command for x in said[-2:]] == ["MODE", "PART"]
    bob.expect(r":carol!\S+ PART #big")
    assert names(carol, "#big") == ["@alice", "carol"]
    # What a plain member does is told to operators only.
    carol.send("NICK carla")
    alice.expect(r":carol!\S+ NICK :?carla")
    carol.send("PART #big")
    alice.expect(r":carla!\S+ PART #big")
    bob.never(r"carol|carla")
    # Messages are not filtered: the lecture room pairs +u with +m when the audience should listen only.
    bob.send("PRIVMSG #big :heard by all")
    alice.expect(r"PRIVMSG #big :heard by all")


def test_operators_and_voiced_show_to_everyone_in_an_auditorium(client: ClientFactory) -> None:
    alice, bob = lecture(client, "+u", "bob")
    carol = person(client, "carol")
    carol.send("JOIN #big")
    joined = carol.lines_until(r" 366 carol #big ")
    assert any(" 353 " in x and "@alice" in x for x in joined)
    alice.expect(r":carol!\S+ JOIN #big")
    alice.send("PART #big")
    bob.expect(r":alice!\S+ PART #big")
    carol.expect(r":alice!\S+ PART #big")


def test_delayed_join_and_auditorium_together(client: ClientFactory) -> None:
    alice, bob, carol = lecture(client, "+Du", "bob", "carol")
    alice.never(r"JOIN")
    carol.send("PRIVMSG #big :hello")
    said = alice.lines_until(r"PRIVMSG #big :hello")
    assert [parse_line(x).command for x in said[-2:]] == ["JOIN", "PRIVMSG"]
    bob.expect(r"PRIVMSG #big :hello")  # her words reach everyone; her JOIN the operator only
    assert not any(x.startswith(":carol!") and " JOIN " in x for x in bob.seen)
    alice.send("MODE #big -D")
    alice.expect(r":bob!\S+ JOIN #big")
    carol.never(r"bob")


def test_modes_persist_across_a_restart(make_server: Callable[..., ChatServer], tmp_path: Path) -> None:
    db = str(tmp_path / "lobby.db")
    server = make_server(db_path=db)
    alice = connect(server.address, "alice")
    make_server.clients.append(alice)  # type: ignore[attr-defined]
    enter(alice, "#big")
    alice.send("MODE #big +Du")
    alice.expect(r"MODE #big \+Du")
    alice.send("PART #big")
    alice.expect(r"PART #big")
    server.stop()
    again = make_server(db_path=db)
    bob = connect(again.address, "bob")
    make_server.clients.append(bob)  # type: ignore[attr-defined]
    enter(bob, "#big")
    bob.send("MODE #big")
    assert bob.expect(r" 324 bob #big ").params[2] == "+Dntu"


def test_a_configured_lecture_room_starts_with_its_modes(make_server: Callable[..., ChatServer]) -> None:
    server = make_server(room_defaults={"#talk": {"modes": "+ntDu"}})
    teacher, kid = (connect(server.address, nick) for nick in ("teacher", "kid"))
    make_server.clients.extend([teacher, kid])  # type: ignore[attr-defined]
    enter(teacher, "#talk")
    enter(kid, "#talk")
    teacher.never(r"kid")
    teacher.send("MODE #talk")
    assert teacher.expect(r" 324 teacher #talk ").params[2] == "+Dntu"


def test_the_config_file_takes_the_new_letters(tmp_path: Path) -> None:
    path = tmp_path / "lobby.toml"
    path.write_text('[rooms."#talk"]\nmodes = "+ntDu"\n')
    assert load(str(path), serve_flags()).rooms["#talk"]["modes"] == "+ntDu"
    assert set("Du") <= set(FLAG_MODES)


def test_delayed_join_holds_across_cluster_nodes(redis_url: str, make_server: Callable[..., ChatServer]) -> None:
    a, b = make_server(redis_url=redis_url), make_server(redis_url=redis_url)

    def user(node: ChatServer, nick: str) -> IrcClient:
        c = connect(node.address, nick)
        make_server.clients.append(c)  # type: ignore[attr-defined]
        c.send("PART #lobby")
        c.expect(rf":{nick}!\S+ PART #lobby")
        return c

    alice, carol, bob = user(a, "alice"), user(a, "carol"), user(b, "bob")
    enter(alice, "#big")
    alice.send("MODE #big +D")
    alice.expect(r"MODE #big \+D")
    wait_until(lambda: (view := b.hub.room("#big")) is not None and "D" in view.modes[0])
    enter(bob, "#big")  # on node B: hidden on both nodes
    enter(carol, "#big")  # on node A
    wait_until(lambda: len(b.hub.members_of("#big")) == 3)
    alice.never(r"JOIN")
    bob.never(r"JOIN")
    assert names(bob, "#big") == ["@alice", "bob"]
    bob.send("PRIVMSG #big :from node B")
    said = alice.lines_until(r"PRIVMSG #big :from node B")
    assert [parse_line(x).command for x in said[-2:]] == ["JOIN", "PRIVMSG"]
    carol.expect(r":bob!\S+ JOIN #big")
    alice.send("MODE #big -D")  # carol, still hidden, is shown on node B too
    said = bob.lines_until(r"MODE #big -D")
    assert [(parse_line(x).command, nick_of(x)) for x in said] == [
        ("JOIN", "carol"), ("MODE", "alice")]


# -- in the core alone: multiclient, and JOINs told in batches (core/joinburst.py) ---------------------


def sent(link: RecordingLink, command: str, source: str | None = None) -> list[Message]:
    return [m for m in link.sent if m.command == command and (source is None or (m.source or "").startswith(source))]


def test_a_hidden_users_other_connections_see_their_own_join() -> None:
    chat = Chat(ChatConfig(auto_join=()))
    alice, alice_link = core_conn(chat, "alice")
    dispatch(chat, alice, parse_line("JOIN #big"))
    dispatch(chat, alice, parse_line("MODE #big +D"))
    laptop, laptop_link = core_conn(chat, "bob", account="bob")
    phone, phone_link = core_conn(chat, "bob", "extended-join", account="bob")
    assert laptop.member is phone.member
    dispatch(chat, laptop, parse_line("JOIN #big"))
    assert [m.params for m in sent(phone_link, "JOIN", "bob!")] == [("#big", "bob", "bob")]
    assert sent(alice_link, "JOIN", "bob!") == []
    dispatch(chat, phone, parse_line("PRIVMSG #big :hi"))
    assert [m.command for m in alice_link.sent[-2:]] == ["JOIN", "PRIVMSG"]
    assert len(sent(laptop_link, "JOIN", "bob!")) == 1 and len(sent(phone_link, "JOIN", "bob!")) == 1


def test_a_burst_of_hidden_joins_costs_no_delivery_and_a_reveal_reaches_everyone_but_its_own() -> None:
    chat = Chat(ChatConfig(auto_join=()))
    alice, alice_link = core_conn(chat, "alice")
    dispatch(chat, alice, parse_line("JOIN #big"))
    dispatch(chat, alice, parse_line("MODE #big +D"))
    woken: list[int] = []
    chat.joins.wake = lambda: woken.append(1)  # a drainer that drains when asked
    people = [core_conn(chat, f"p{i}") for i in range(4)]
    for client, _ in people:
        dispatch(chat, client, parse_line("JOIN #big"))
    assert woken == [] and not chat.joins.busy  # nothing queued for hidden joiners
    dispatch(chat, people[1][0], parse_line("MODE #big"))  # nothing said: still hidden
    dispatch(chat, alice, parse_line("MODE #big +v p2"))
    chat.joins.drain()
    # p2 shown to all but itself, p0 p1 p3 included: hidden themselves, they saw everyone.
    for i, (_, link) in enumerate(people):
        assert [nick_of(m) for m in sent(link, "JOIN")] == (
            [f"p{i}"] + (["p2"] if i != 2 else []))
    assert [nick_of(m) for m in sent(alice_link, "JOIN")] == ["alice", "p2"]
    assert [m.command for m in alice_link.sent[-2:]] == ["JOIN", "MODE"]


def test_an_auditorium_join_burst_tells_plain_joins_to_operators_only() -> None:
    chat = Chat(ChatConfig(auto_join=()))
    alice, alice_link = core_conn(chat, "alice")
    dispatch(chat, alice, parse_line("JOIN #big"))
    dispatch(chat, alice, parse_line("MODE #big +u"))
    chat.joins.wake = lambda: None
    people = [core_conn(chat, f"p{i}") for i in range(3)]
    for client, _ in people:
        dispatch(chat, client, parse_line("JOIN #big"))
    chat.joins.drain()
    # (p0's JOIN, when alice alone was there to see it, went to everyone: told in its own turn)
    assert sorted(nick_of(m) for m in sent(alice_link, "JOIN")) == [
        "alice", "p0", "p1", "p2"]
    for i, (_, link) in enumerate(people):
        assert [nick_of(m) for m in sent(link, "JOIN")] == [f"p{i}"]
        assert sorted(sent(link, "353")[0].params[-1].split()) == ["@alice", f"p{i}"]


@pytest.mark.parametrize("modes", ["+D", "+u"])
def test_a_hidden_members_quit_and_away_reach_only_those_who_see_them(modes: str) -> None:
    chat = Chat(ChatConfig(auto_join=()))
    alice, alice_link = core_conn(chat, "alice", "away-notify")
    dispatch(chat, alice, parse_line("JOIN #big"))
    dispatch(chat, alice, parse_line(f"MODE #big {modes}"))
    bob, bob_link = core_conn(chat, "bob", "away-notify")
    carol, _ = core_conn(chat, "carol", "away-notify")
    for c in (bob, carol):
        dispatch(chat, c, parse_line("JOIN #big"))
    dispatch(chat, carol, parse_line("AWAY :out"))
    dispatch(chat, carol, parse_line("SETNAME :Carol C"))
    disconnect(chat, carol, "gone")
    seen = 0 if modes == "+D" else 1  # the operator sees plain members (+u), nobody sees hidden ones (+D)
    assert sent(bob_link, "AWAY") == sent(bob_link, "QUIT") == []
    assert len(sent(alice_link, "AWAY")) == len(sent(alice_link, "QUIT")) == seen
    assert [p.nick for p in chat.hub.peers(bob)] == (["alice"] if modes == "+u" else [])


def test_the_terminal_client_says_what_the_new_modes_do() -> None:
    said = describe(parse_line(":alice!a@h MODE #dev +Du"), 0.0)
    assert said is not None and "#dev show only when people first speak (+D)" in said.text
    assert "made #dev an auditorium" in said.text


@pytest.mark.browser
def test_the_pages_people_list_leaves_hidden_members_out_until_they_speak(
    new_page: PageFactory, irc_user: IrcFactory,
) -> None:
    page = new_page()
    joined(page, "alice")
    say(page, "/join #big")
    expect(page.locator("#messages")).to_contain_text("You created #big")
    say(page, "/mode +D")
    expect(page.locator("#messages")).to_contain_text("made joins show only when people first speak")
    bob = irc_user("bob")
    enter(bob, "#big")
    bob.sync()  # his join is done: anything about it was sent to the page before what follows
    say(page, "/mode -t")
    expect(page.locator("#messages")).to_contain_text("unlocked the topic")
    expect(page.locator("#users")).not_to_contain_text("bob")
    bob.send("PRIVMSG #big :here I am")
    expect(page.locator("#messages")).to_contain_text("here I am")
    expect(page.locator("#users")).to_contain_text("bob")
