"""Plain-text users over real sockets: a person with `nc` or `telnet` on the chat port.

Each test connects a raw socket and talks to it like a person (bare lines, no IRC),
alongside ordinary IRC users, and checks what both sides read.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.ircclient import IrcClient

STAMP = r"^\d\d:\d\d "
PROMPT = r"^Enter your name:$"
# These tests wait for the name prompt, which comes after text_silence: their servers use a
# short one. Servers elsewhere keep the default (1 s), so that an IRC client that is slow to
# send its first line on a loaded machine is never taken for a person.
SILENCE = 0.2


@pytest.fixture
def server(make_server):
    """The chat server of the client fixture, with the short silence."""
    return make_server(text_silence=SILENCE)


def expect_text(person: IrcClient, pattern: str) -> str:
    """The next line the person reads that matches pattern (a regex)."""
    person.expect(pattern)
    return person.seen[-1]


def person(client, name: str | None = None, typed_ahead: bool = False) -> IrcClient:
    """A text user: connects, (optionally types the name before any prompt) and signs in."""
    c: IrcClient = client()
    if name is not None and typed_ahead:
        c.send_raw(f"{name}\n".encode())
        expect_text(c, PROMPT)
    elif name is not None:
        expect_text(c, PROMPT)
        c.send_raw(f"{name}\n".encode())
    if name is not None:
        expect_text(c, rf"Welcome, {re.escape(name)}!")
        expect_text(c, rf"{STAMP}→ {re.escape(name)} joined #lobby$")
        c.nick = name
    return c


def assert_no_irc(c: IrcClient) -> None:
    """Nothing the person read looks like raw IRC."""
    for line in c.seen:
        assert not line.startswith((":", "@")), line
        assert not re.search(r" (PRIVMSG|JOIN|NOTICE|PING|\d\d\d) ", line), line


def test_a_silent_socket_is_asked_its_name_and_joins_the_lobby(client) -> None:
    bob = client("bob")
    alice: IrcClient = client()
    # Nothing sent: after the silence (a second by default) the server decides this is a person.
    expect_text(alice, PROMPT)
    alice.send_raw(b"alice\r\n")
    expect_text(alice, r"Welcome, alice! Type /help")
    expect_text(alice, rf"{STAMP}→ alice joined #lobby$")
    expect_text(alice, r"In #lobby: .*\balice\b")
    bob.expect(r"^:alice!\S+ JOIN #lobby$")
    assert_no_irc(alice)


def test_a_name_typed_ahead_of_the_prompt_is_taken(client) -> None:
    bob = client("bob")
    carol: IrcClient = client()
    # Name and a first message arrive together, before the server has said anything.
    carol.send_raw(b"carol\nhello everyone\n")
    expect_text(carol, PROMPT)
    expect_text(carol, r"Welcome, carol!")
    bob.expect(r"^:carol!\S+ JOIN #lobby$")
    assert bob.expect(r"PRIVMSG #lobby").params == ("#lobby", "hello everyone")


def test_a_cyrillic_name_chats_both_ways_with_an_irc_user(client) -> None:
    bob = client("bob")
    vasya = person(client, "Вася")
    bob.expect(r"^:Вася!\S+ JOIN #lobby$")
    vasya.send_raw("привет, bob\n".encode())
    msg = bob.expect(r"PRIVMSG #lobby")
    assert msg.source and msg.source.startswith("Вася!")
    assert msg.params == ("#lobby", "привет, bob")
    bob.send("PRIVMSG #lobby :здравствуй, Вася")
    assert expect_text(vasya, r"bob:").endswith(" bob: здравствуй, Вася")
    assert re.match(STAMP, vasya.seen[-1])
    # To IRC users a text user is an ordinary member.
    bob.send("NAMES #lobby")
    assert "Вася" in bob.expect(r" 353 ").params[-1].split()
    bob.send("WHO #lobby")
    assert bob.expect(r" 352 \S+ #lobby .* Вася ").params[5] == "Вася"
    assert_no_irc(vasya)


def test_chatting_both_ways_and_room_events_read_as_lines(client) -> None:
    alice = person(client, "alice")
    bob = client("bob")
    expect_text(alice, rf"{STAMP}→ bob joined #lobby$")
    alice.send_raw(b"hello bob\n")
    assert bob.expect(r"PRIVMSG #lobby").params == ("#lobby", "hello bob")
    bob.send("PRIVMSG #lobby :hi alice")
    expect_text(alice, rf"{STAMP}bob: hi alice$")
    bob.send("PRIVMSG #lobby :\x01ACTION waves\x01")
    expect_text(alice, rf"{STAMP}\* bob waves$")
    bob.send("TOPIC #lobby :Friday drinks")
    expect_text(alice, rf"{STAMP}• bob set the topic of #lobby: Friday drinks$")
    bob.send("NICK bobby")
    expect_text(alice, rf"{STAMP}• bob is now known as bobby$")
    bob.send("PRIVMSG alice :just us")
    expect_text(alice, rf"{STAMP}bobby → alice \(private\): just us$")
    bob.send("QUIT :off home")
    expect_text(alice, rf"{STAMP}← bobby quit \(off home\)$")
    assert_no_irc(alice)


def test_slash_commands(client) -> None:
    bob = client("bob")
    alice = person(client, "alice")
    bob.expect(r":alice!\S+ JOIN #lobby")

    alice.send_raw(b"/who\n")
    names = expect_text(alice, r"In #lobby: ")
    assert set(names.split(": ", 1)[1].split(", ")) == {"alice", "bob"}

    alice.send_raw(b"/me waves\n")
    assert bob.expect(r"PRIVMSG #lobby").params == ("#lobby", "\x01ACTION waves\x01")

    alice.send_raw(b"/msg bob psst\n")
    assert bob.expect(r"PRIVMSG bob").params == ("bob", "psst")
    expect_text(alice, rf"{STAMP}alice → bob \(private\): psst$")
    alice.send_raw(b"/msg nobody hi\n")
    expect_text(alice, r"nobody called nobody")

    alice.send_raw(b"/topic\n")
    expect_text(alice, r"#lobby has no topic")
    alice.send_raw(b"/topic cake at four\n")
    assert bob.expect(r" TOPIC #lobby").params == ("#lobby", "cake at four")

    alice.send_raw(b"/frobnicate\n")
    expect_text(alice, r"^Unknown command /frobnicate\. Type /help")
    alice.send_raw(b"/help\n")
    expect_text(alice, r"/quit")

    alice.send_raw(b"/nick alicia\n")
    assert bob.expect(r" NICK ").source.startswith("alice!")  # type: ignore[union-attr]
    expect_text(alice, r"alice is now known as alicia$")
    bob.send("PRIVMSG #lobby :hi alicia")
    expect_text(alice, r"bob: hi alicia$")

    alice.send_raw(b"/nick bob\n")
    expect_text(alice, r"The name bob is taken")

    alice.send_raw(b"/quit see you\n")
    bob.expect(r"^:alicia!\S+ QUIT :Quit: see you$")
    alice.expect_closed()
    assert_no_irc(alice)


def test_telnet_negotiation_bytes_are_ignored(client) -> None:
    bob = client("bob")
    dave: IrcClient = client()
    # What a telnet client may send: WILL NAWS, a window-size subnegotiation, IAC NOP.
    dave.send_raw(b"\xff\xfb\x1f\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0")
    expect_text(dave, PROMPT)
    dave.send_raw(b"da\xff\xf1ve\r\n")
    expect_text(dave, r"Welcome, dave!")
    dave.send_raw(b"hi \xff\xfd\x01there\r\n")
    assert bob.expect(r"PRIVMSG #lobby").params == ("#lobby", "hi there")


def test_a_taken_or_invalid_name_is_explained_and_asked_again(client) -> None:
    client("bob")
    eve: IrcClient = client()
    expect_text(eve, PROMPT)
    eve.send_raw(b"BOB\n")
    expect_text(eve, r"the name BOB is taken")
    expect_text(eve, PROMPT)
    eve.send_raw(b"1eve\n")
    expect_text(eve, r"can't be a name")
    expect_text(eve, PROMPT)
    eve.send_raw(b"two words\n")
    expect_text(eve, r"can't be a name")
    expect_text(eve, PROMPT)
    eve.send_raw(b"eve\n")
    expect_text(eve, r"Welcome, eve!")


def test_irc_clients_see_no_prompt(make_server) -> None:
    # The default silence, as in production: this checks that IRC clients are never taken for people.
    from tests.ircclient import connect

    server = make_server()
    assert server.config.text_silence == 1.0
    quick = connect(server.address, "quick")  # NICK/USER at once, as every IRC client does
    early = connect(server.address)
    make_server.clients.extend([quick, early])
    early.send("JOIN #lobby")  # a command before registration is still IRC: 451
    early.expect(r" 451 ")
    time.sleep(1.5)  # well past the silence that makes a text user
    early.send("NICK early")
    early.send("USER early 0 * :Early")
    early.expect(r" 001 early ")
    for c in (quick, early):
        assert not any("Enter your name" in line for line in c.seen)


def test_a_slow_irc_client_answering_the_prompt_with_irc_is_served_irc(client) -> None:
    bob = client("bob")
    slow: IrcClient = client()
    slow.expect(PROMPT)  # it waited too long and was taken for a person...
    slow.send("CAP LS 302")  # ...but it speaks IRC
    slow.expect(r" CAP \* LS ")
    slow.send("NICK slow")
    slow.send("USER slow 0 * :Slow")
    slow.send("CAP END")
    slow.expect(r" 001 slow ")
    slow.expect(r" 366 slow #lobby ")
    bob.send("PRIVMSG #lobby :hi slow")
    assert slow.expect(r"PRIVMSG #lobby").params == ("#lobby", "hi slow")


def test_the_registration_timeout_still_applies(make_server) -> None:
    server = make_server(text_silence=SILENCE, registration_timeout=1.0)
    from tests.ircclient import connect

    idle = connect(server.address)
    make_server.clients.append(idle)
    expect_text(idle, PROMPT)
    lines = idle.expect_closed(timeout=15)
    assert any("Registration timed out" in line for line in lines), lines
    assert_no_irc(idle)


@pytest.mark.parametrize("ending", [b"\n", b"\r\n"])
def test_both_line_endings(client, ending: bytes) -> None:
    bob = client("bob")
    frank: IrcClient = client()
    expect_text(frank, PROMPT)
    frank.send_raw(b"frank" + ending + b"one" + ending + b"two" + ending)
    assert bob.expect(r"PRIVMSG #lobby").params == ("#lobby", "one")
    assert bob.expect(r"PRIVMSG #lobby").params == ("#lobby", "two")


def test_two_text_users_read_the_same_broadcast(client) -> None:
    ann = person(client, "ann")
    ben = person(client, "ben")
    expect_text(ann, r"→ ben joined #lobby$")
    bob = client("bob")
    bob.send("PRIVMSG #lobby :to everyone")
    # Formatted once for every text user (one render key), so the very same line.
    assert expect_text(ann, r"bob: to everyone$") == expect_text(ben, r"bob: to everyone$")


# -- a server with a password ---------------------------------------------------------------

SECRET = "open sesame"


def test_a_password_is_asked_after_the_name_and_lets_the_person_in(make_server) -> None:
    from tests.ircclient import connect

    server = make_server(text_silence=SILENCE, password=SECRET)
    bob = connect(server.address)
    make_server.clients.append(bob)
    bob.send(f"PASS :{SECRET}")
    bob.register("bob")
    alice = connect(server.address)
    make_server.clients.append(alice)
    expect_text(alice, PROMPT)
    alice.send_raw(b"alice\n")
    expect_text(alice, r"^Password:$")
    alice.send_raw(SECRET.encode() + b"\r\n")
    expect_text(alice, r"Welcome, alice!")
    expect_text(alice, rf"{STAMP}→ alice joined #lobby$")
    bob.expect(r"^:alice!\S+ JOIN #lobby$")
    alice.send_raw(b"hello\n")
    assert bob.expect(r"PRIVMSG #lobby").params == ("#lobby", "hello")
    # The password was never shown back, and never said in the room.
    assert not any(SECRET in line for line in alice.seen + bob.seen)
    assert_no_irc(alice)


def test_name_password_and_first_line_typed_ahead(make_server) -> None:
    from tests.ircclient import connect

    server = make_server(text_silence=SILENCE, password=SECRET)
    bob = connect(server.address)
    make_server.clients.append(bob)
    bob.send(f"PASS :{SECRET}")
    bob.register("bob")
    carol = connect(server.address)
    make_server.clients.append(carol)
    carol.send_raw(f"carol\n{SECRET}\nhi all\n".encode())
    expect_text(carol, r"Welcome, carol!")
    assert bob.expect(r"PRIVMSG #lobby").params == ("#lobby", "hi all")
    assert not any(SECRET in line for line in carol.seen + bob.seen)


def test_a_wrong_password_is_explained_then_disconnected(make_server, caplog) -> None:
    from tests.ircclient import connect

    server = make_server(text_silence=SILENCE, password=SECRET)
    bob = connect(server.address)
    make_server.clients.append(bob)
    bob.send(f"PASS :{SECRET}")
    bob.register("bob")
    mallory = connect(server.address)
    make_server.clients.append(mallory)
    expect_text(mallory, PROMPT)
    mallory.send_raw(b"mallory\n")
    expect_text(mallory, r"^Password:$")
    mallory.send_raw(b"let me in\n")
    lines = mallory.expect_closed()
    assert lines[:2] == ["Wrong password.", "Disconnected: Bad password."], lines
    assert_no_irc(mallory)
    # Never in the room, and the attempt is nowhere in what was said or logged.
    bob.send("NAMES #lobby")
    assert bob.expect(r" 353 ").params[-1].split() == ["bob"]
    assert not any("let me in" in line for line in bob.seen)
    assert "let me in" not in caplog.text


def test_a_missing_password_keeps_the_person_out(make_server) -> None:
    from tests.ircclient import connect

    server = make_server(text_silence=SILENCE, password=SECRET, registration_timeout=1.2)
    dave = connect(server.address)
    make_server.clients.append(dave)
    expect_text(dave, PROMPT)
    dave.send_raw(b"dave\n")
    expect_text(dave, r"^Password:$")
    dave.send_raw(b"\n")  # a stray Enter is not an attempt: asked again
    expect_text(dave, r"^Password:$")
    lines = dave.expect_closed(timeout=15)
    assert any("Registration timed out" in line for line in lines), lines
    assert not any("Welcome" in line for line in dave.seen)
    assert_no_irc(dave)


def test_no_password_prompt_without_a_server_password(client) -> None:
    erin = person(client, "erin")
    assert not any("Password" in line for line in erin.seen)


# -- history on join -------------------------------------------------------------------------


def test_a_text_user_sees_recent_messages_with_their_times_set_apart(make_server, tmp_path) -> None:
    from tests.ircclient import connect

    server = make_server(text_silence=SILENCE, db_path=str(tmp_path / "history.db"))
    bob = connect(server.address, "bob", caps="server-time")
    make_server.clients.append(bob)
    # One line from two days ago (shown with its date), then three from today.
    day = time.localtime(time.time() - 2 * 86400)
    when = time.mktime((day.tm_year, day.tm_mon, day.tm_mday, 9, 15, 0, 0, 0, -1))
    server.history.add("#lobby", "old-1", when, "carol!c@example", "PRIVMSG", "anyone around?")
    bob.send("PRIVMSG #lobby :first old line")
    bob.send("PRIVMSG #lobby :second old line")
    bob.send("PRIVMSG #lobby :\x01ACTION waves\x01")
    bob.send("PING :stored")  # answered only after the lines before it were handled
    bob.expect(r"PONG .*stored")
    # Their original times, as the history keeps them.
    rows = server.history.latest("#lobby", 10)
    assert [r.text for r in rows] == ["anyone around?", "first old line", "second old line", "\x01ACTION waves\x01"]
    stamps = [time.strftime("%H:%M", time.localtime(r.ts_ms / 1000)) for r in rows[1:]]

    frank = person(lambda: _raw(make_server, server), "frank")
    expect_text(frank, r"^── End of recent messages ──$")
    lines = frank.seen
    start = lines.index("── Recent messages in #lobby ──")
    end = lines.index("── End of recent messages ──")
    assert lines[start + 1 : end] == [
        time.strftime("%Y-%m-%d 09:15 carol: anyone around?", day),
        f"{stamps[0]} bob: first old line",
        f"{stamps[1]} bob: second old line",
        f"{stamps[2]} * bob waves",
    ]
    bob.send("PRIVMSG #lobby :now live")
    live = expect_text(frank, r"bob: now live$")
    assert frank.seen.index(live) > end
    assert_no_irc(frank)


def _raw(make_server, server) -> IrcClient:
    from tests.ircclient import connect

    c = connect(server.address)
    make_server.clients.append(c)
    return c


# -- running a room ---------------------------------------------------------------------------


def synced_text(person: IrcClient, marker: str = "/who") -> list[str]:
    """Everything the person reads up to the answer to a /who (typed lines are handled in order)."""
    start = len(person.seen)
    person.send_raw(f"{marker}\n".encode())
    expect_text(person, r"• In #")
    return person.seen[start:]


def test_a_text_user_runs_the_room_they_create_and_others_read_it(client) -> None:
    alice = person(client, "alice")
    alice.send_raw(b"/join #dev\n")
    expect_text(alice, rf"{STAMP}→ alice joined #dev$")
    expect_text(alice, r"^Now talking in #dev\.$")
    carol = person(client, "carol")
    carol.send_raw(b"/join dev\n")
    expect_text(carol, rf"{STAMP}→ carol joined #dev$")
    bob, dave = client("bob"), client("dave")
    for user in (bob, dave):
        user.send("JOIN #dev")
        user.expect(rf" 366 {user.nick} #dev ")
    expect_text(carol, r"→ dave joined #dev$")

    # /help: the room's commands only for its operator (the creator).
    assert not any("/kick" in line or "Running the room" in line for line in synced_text(carol))
    carol.send_raw(b"/help\n")
    helped = synced_text(carol)
    assert any("/oper NAME PASSWORD" in line for line in helped)
    assert not any(re.search(r"/(op|kick|ban|quiet|mode|moderate) ", line) for line in helped), helped
    alice.send_raw(b"/help\n")
    helped = synced_text(alice)
    for command in ("/op NAME", "/deop", "/voice", "/devoice", "/kick NAME [REASON]", "/ban", "/unban",
                    "/quiet", "/unquiet", "/moderate", "/mode"):
        assert any(command in line for line in helped), (command, helped)

    # A member who is not an operator is told why nothing happened.
    carol.send_raw(b"/kick bob\n")
    expect_text(carol, r"^\d\d:\d\d ! You need to be an operator of #dev to do that$")
    carol.send_raw(b"/kick\n")
    expect_text(carol, r"^Usage: /kick NAME \[REASON\]$")

    alice.send_raw(b"/op bob\n")
    bob.expect(r":alice!\S+ MODE #dev \+o bob$")
    expect_text(carol, rf"{STAMP}• alice made bob an operator$")
    alice.send_raw(b"/voice carol\n")
    expect_text(carol, rf"{STAMP}• alice gave carol voice$")
    alice.send_raw(b"/kick dave spamming again\n")
    dave.expect(r":alice!\S+ KICK #dev dave :spamming again$")
    expect_text(carol, rf"{STAMP}← dave was removed from #dev by alice \(spamming again\)$")
    alice.send_raw(b"/ban dave\n")
    expect_text(carol, rf"{STAMP}• alice banned dave!\*@\* from #dev$")
    dave.send("JOIN #dev")
    dave.expect(r" 474 dave #dev ")
    alice.send_raw(b"/invite\n")
    expect_text(alice, r"^Usage: /invite NAME \[#room\]$")
    alice.send_raw(b"/invite dave\n")  # an invitation lets its guest past the ban, once
    dave.expect(r":alice!\S+ INVITE dave #dev$")
    expect_text(alice, rf"{STAMP}• You invited dave to #dev$")

    # Muted: reads, can't speak, and is told why.
    alice.send_raw(b"/devoice carol\n")
    expect_text(carol, rf"{STAMP}• alice took voice from carol$")
    alice.send_raw(b"/mute carol\n")
    expect_text(carol, rf"{STAMP}• alice muted carol!\*@\* in #dev$")
    carol.send_raw(b"hello?\n")
    expect_text(carol, r"! You can't speak in #dev: you are muted$")
    alice.send_raw(b"/moderate\n")
    expect_text(carol, rf"{STAMP}• alice set #dev to moderated \(\+m\)$")
    alice.send_raw(b"/unmute carol\n")
    expect_text(carol, rf"{STAMP}• alice unmuted carol!\*@\* in #dev$")
    carol.send_raw(b"and now?\n")
    expect_text(carol, r"! You can't speak in #dev: it is moderated$")

    # Kicked and banned: a clear line each time, never silence.
    alice.send_raw(b"/kick carol enough\n")
    expect_text(carol, rf"{STAMP}← carol was removed from #dev by alice \(enough\)$")
    alice.send_raw(b"/ban carol\n")
    bob.expect(r"MODE #dev \+b carol!\*@\*")
    carol.send_raw(b"/join #dev\n")
    expect_text(carol, r"! You are banned from #dev$")
    alice.send_raw(b"/mode\n")
    expect_text(alice, r"• Modes of #dev: \+mnt$")
    never = [line for line in bob.seen if "hello?" in line or "and now?" in line]
    assert not never, never
    for user in (alice, carol):
        assert_no_irc(user)


def test_a_text_user_becomes_a_server_operator_without_the_password_showing(make_server, caplog) -> None:
    from backend.core.passwords import hash_password
    from tests.ircclient import connect

    server = make_server(text_silence=SILENCE, operators={"teacher": hash_password("correct horse")})
    boss = person(lambda: _raw(make_server, server), "boss")
    boss.send_raw(b"/kick boss\n")
    expect_text(boss, r"! You need to be an operator of #lobby to do that$")  # nobody created #lobby
    boss.send_raw(b"/oper teacher wrong guess\n")
    expect_text(boss, r"! Wrong operator name or password$")
    boss.send_raw(b"/oper teacher correct horse\n")
    expect_text(boss, r"• You are now a server operator")
    boss.send_raw(b"/help\n")
    helped = synced_text(boss)
    assert any("/kick" in line for line in helped) and not any("/oper" in line for line in helped)
    bob = connect(server.address, "bob")
    make_server.clients.append(bob)
    expect_text(boss, r"→ bob joined #lobby$")
    boss.send_raw(b"/voice bob\n")
    bob.expect(r":boss!\S+ MODE #lobby \+v bob$")
    seen = "\n".join(boss.seen + bob.seen) + caplog.text
    assert "correct horse" not in seen and "wrong guess" not in seen
    assert_no_irc(boss)
