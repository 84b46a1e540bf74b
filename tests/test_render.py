"""Unit tests of the pure layers of terminal users: backend/irc/describe.py, the client's command
table and styling, and the telnet filter and sniffing rules of backend/net/textuser.py. No sockets."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from prompt_toolkit.output import ColorDepth

from backend.irc import Message
from backend.irc.describe import PALETTE, Kind, Line, describe, message_time, nick_colour, split_mentions
from backend.net.telnet import IacFilter
from backend.net.textuser import looks_like_irc, text_bytes
from client.commands import run_input
from client.terminal import fragments, to_ansi

NOW = datetime(2026, 1, 2, 12, 4, 30).timestamp()  # local 12:04


def line(raw: str, me: str = "") -> Line | None:
    from backend.irc import parse_line

    return describe(parse_line(raw), NOW, me)


def plain(raw: str, me: str = "", room: str | None = None) -> str | None:
    result = line(raw, me)
    return result.plain(room) if result else None


# -- nick colours: the web page uses the same function, so fixed values pin it down ----------


def test_nick_colour_is_the_31_hash_of_the_casefolded_nick_into_the_palette() -> None:
    # "alice": ((((97*31+108)*31+105)*31+99)*31+101) = 92903040, and 92903040 % 8 == 0.
    assert nick_colour("alice") == PALETTE[0] == "#e6194b"
    assert nick_colour("a") == PALETTE[97 % 8]
    assert nick_colour("ALICE") == nick_colour("alice")
    assert nick_colour("Вася") == nick_colour("вася")


def test_nick_colour_reduces_modulo_2_to_the_32() -> None:
    nick = "x" * 40  # long enough to overflow 32 bits many times
    h = 0
    for ch in nick:
        h = (h * 31 + ord(ch)) & 0xFFFFFFFF
    assert nick_colour(nick) == PALETTE[h % 8]


# -- lines ------------------------------------------------------------------------------------


def test_chat_lines_read_like_a_chat() -> None:
    assert plain(":alice!a@h PRIVMSG #lobby :hello") == "12:04 alice: hello"
    assert plain(":bob!b@h PRIVMSG #lobby :\x01ACTION waves\x01") == "12:04 * bob waves"
    assert plain(":carol!c@h JOIN #lobby") == "12:04 → carol joined #lobby"
    assert plain(":carol!c@h JOIN #lobby * :Carol") == "12:04 → carol joined #lobby"
    assert plain(":carol!c@h PART #lobby :bye") == "12:04 ← carol left #lobby (bye)"
    assert plain(":carol!c@h PART #lobby") == "12:04 ← carol left #lobby"
    assert plain(":carol!c@h QUIT :Quit: gone home") == "12:04 ← carol quit (gone home)"
    assert plain(":carol!c@h QUIT :Quit") == "12:04 ← carol quit"
    assert plain(":carol!c@h QUIT :Ping timeout") == "12:04 ← carol quit (Ping timeout)"
    assert plain(":carol!c@h NICK caro") == "12:04 • carol is now known as caro"
    assert plain(":dan!d@h TOPIC #lobby :Friday drinks") == "12:04 • dan set the topic of #lobby: Friday drinks"
    assert plain(":dan!d@h TOPIC #lobby :") == "12:04 • dan cleared the topic of #lobby"
    assert plain(":op!o@h KICK #lobby eve :spam") == "12:04 ← eve was removed from #lobby by op (spam)"


def test_private_messages_and_notices() -> None:
    assert plain(":bob!b@h PRIVMSG alice :psst") == "12:04 bob → alice (private): psst"
    assert plain(":bob!b@h PRIVMSG alice :\x01ACTION winks\x01") == "12:04 bob → alice (private): * winks"
    assert plain(":bob!b@h NOTICE #lobby :heads up") == "12:04 -bob- heads up"
    assert plain(":irc.example NOTICE * :*** Looking up your hostname") == (
        "12:04 -irc.example- *** Looking up your hostname"
    )


def test_protocol_machinery_is_not_shown() -> None:
    for raw in (
        "PING :x",
        ":s PONG s :x",
        ":s CAP * LS :server-time",
        ":bob!b@h PRIVMSG alice :\x01VERSION\x01",
        ":s MODE #lobby +n",
        ":s 002 alice :Your host is s",
        ":s 005 alice CHANTYPES=# :are supported",
        ":s 366 alice #lobby :End of /NAMES list",
        ":s 376 alice :End of /MOTD command",
        ":s 422 alice :MOTD File is missing",
        ":s BATCH +x chathistory #lobby",
    ):
        assert line(raw) is None, raw


def test_numerics_become_sentences() -> None:
    assert plain(":s 001 alice :Welcome to the network alice!a@h") == "12:04 • Welcome, alice! Type /help for commands."
    assert plain(":s 332 alice #lobby :Friday drinks") == "12:04 • Topic of #lobby: Friday drinks"
    assert plain(":s 331 alice #lobby :No topic is set") == "12:04 • #lobby has no topic"
    assert plain(":s 353 alice = #lobby :alice bob Вася") == "12:04 • In #lobby: alice, bob, Вася"
    assert plain(":s 372 alice :- Be nice") == "12:04 • Be nice"
    assert plain(":s 433 * bob :Nickname is already in use") == "12:04 ! The name bob is taken, please choose another"
    assert plain(":s 401 alice zed :No such nick") == "12:04 ! There is nobody called zed here"
    # An error we have no sentence for still reads as its text, with what it is about.
    assert plain(":s 461 alice KICK :Not enough parameters") == "12:04 ! Not enough parameters (KICK)"
    assert plain(":s 421 alice FOO :Unknown command") == "12:04 ! Unknown command (FOO)"


# -- room moderation: what the server sends (tests/test_moderation.py) as sentences -----------------


def test_mode_changes_read_as_sentences() -> None:
    assert plain(":alice!a@h MODE #dev +o bob") == "12:04 • alice made bob an operator"
    assert plain(":alice!a@h MODE #dev -o bob") == "12:04 • alice took operator from bob"
    assert plain(":alice!a@h MODE #dev +v bob") == "12:04 • alice gave bob voice"
    assert plain(":alice!a@h MODE #dev -v bob") == "12:04 • alice took voice from bob"
    assert plain(":alice!a@h MODE #dev +b *!*@10.*") == "12:04 • alice banned *!*@10.* from #dev"
    assert plain(":alice!a@h MODE #dev -b bob!*@*") == "12:04 • alice lifted the ban on bob!*@* in #dev"
    assert plain(":alice!a@h MODE #dev +q bob!*@*") == "12:04 • alice muted bob!*@* in #dev"
    assert plain(":alice!a@h MODE #dev -q bob!*@*") == "12:04 • alice unmuted bob!*@* in #dev"
    assert plain(":alice!a@h MODE #dev +m") == "12:04 • alice set #dev to moderated (+m)"
    assert plain(":alice!a@h MODE #dev -m") == "12:04 • alice set #dev to unmoderated (-m)"
    assert plain(":alice!a@h MODE #dev +i") == "12:04 • alice made #dev invite-only (+i)"
    assert plain(":alice!a@h MODE #dev -t") == "12:04 • alice unlocked the topic of #dev (-t)"
    assert plain(":alice!a@h MODE #dev +s") == "12:04 • alice made #dev secret (+s)"
    assert plain(":alice!a@h MODE #dev -k *") == "12:04 • alice removed the key of #dev (-k)"
    # Several changes in one MODE line: one line listing them, arguments matched to their letters.
    assert plain(":alice!a@h MODE #dev -i+kl s3cret 4") == (
        "12:04 • alice opened #dev to everyone (-i); set the key of #dev to s3cret (+k); limited #dev to 4 people (+l)"
    )
    assert plain(":alice!a@h MODE #dev +ov bob carol") == "12:04 • alice made bob an operator; gave carol voice"
    # Said to the reader as "you"; the room named when it is not the one being shown.
    assert plain(":alice!a@h MODE #dev +o bob", me="bob") == "12:04 • alice made you an operator"
    assert plain(":alice!a@h MODE #dev +v bob", room="#lobby") == "12:04 [#dev] • alice gave bob voice"
    # A mode letter we have no words for still reads.
    assert plain(":alice!a@h MODE #dev +e *!*@trusted") == "12:04 • alice set +e *!*@trusted on #dev"
    # User modes are machinery, except dropping server operator status.
    assert plain(":alice!a@h MODE alice +w") is None
    assert plain(":boss!b@h MODE boss -o") == "12:04 • boss is no longer a server operator"


def test_kick_and_invite_read_as_sentences() -> None:
    assert plain(":carol!c@h KICK #dev dave :spamming") == "12:04 ← dave was removed from #dev by carol (spamming)"
    assert plain(":carol!c@h KICK #dev dave :spamming", me="dave") == (
        "12:04 ← You were removed from #dev by carol (spamming)"
    )
    assert plain(":alice!a@h INVITE bob #dev") == "12:04 • alice invites you to #dev: /join #dev"
    assert plain(":alice!a@h INVITE bob #dev", me="bob") == "12:04 • alice invites you to #dev: /join #dev"
    assert plain(":alice!a@h INVITE bob #dev", me="carol") == "12:04 • alice invited bob to #dev"
    assert plain(":s 341 alice carol #dev") == "12:04 • You invited carol to #dev"
    assert plain(":boss!b@h WALLOPS :maintenance at noon") == "12:04 -boss- [to all] maintenance at noon"


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (":s 482 bob #dev :You're not a channel operator", "! You need to be an operator of #dev to do that"),
        (":s 482 bob #dev :You're not a channel operator (the topic is locked)",
         "! You need to be an operator of #dev to do that (the topic is locked)"),
        (":s 404 bob #dev :Cannot send to channel (the room is moderated)",
         "! You can't speak in #dev: it is moderated"),
        (":s 404 bob #dev :Cannot send to channel (you are banned)", "! You can't speak in #dev: you are banned"),
        (":s 404 bob #dev :Cannot send to channel (you are muted)", "! You can't speak in #dev: you are muted"),
        (":s 404 bob #dev :Cannot send to channel (join it first)", "! You can't speak in #dev: join it first"),
        (":s 404 bob #dev :Cannot send to channel", "! You can't speak in #dev: Cannot send to channel"),
        (":s 473 bob #dev :Cannot join channel (invite only)", "! #dev is invite-only: ask an operator for an INVITE"),
        (":s 474 bob #dev :Cannot join channel (you are banned)", "! You are banned from #dev"),
        (":s 475 bob #dev :Cannot join channel (wrong or missing key)", "! #dev needs a key: /join #dev KEY"),
        (":s 471 bob #dev :Cannot join channel (the room is full)", "! #dev is full"),
        (":s 442 bob #dev :You're not on that channel", "! You are not in #dev"),
        (":s 443 alice carol #dev :is already on channel", "! carol is already in #dev"),
        (":s 441 alice ghost #dev :They aren't on that channel", "! ghost is not in #dev"),
        (":s 401 alice ghost :No such nick", "! There is nobody called ghost here"),
        (":s 403 alice #nowhere :No such channel", "! There is no room called #nowhere"),
        (":s 472 alice Z :is an unknown mode character to me", "! The server knows no mode Z"),
        (":s 478 alice #dev b :The list is full (100 entries)", "! The ban list of #dev is full"),
        (":s 481 bob :Permission Denied- You're not an IRC operator", "! You need to be a server operator to do that"),
        (":s 464 bob :Password incorrect", "! Wrong operator name or password"),
        (":s 381 boss :You are now an IRC operator", "• You are now a server operator: /help lists what you may do"),
        (":s 324 bob #dev +ntkl * 4", "• Modes of #dev: +ntkl * 4"),
        (":s 367 bob #dev BOB!*@* alice!a@h 1700000000", "• Banned from #dev: BOB!*@* (by alice)"),
        (":s 728 bob #dev q bob!*@* alice!a@h 1700000000", "• Muted in #dev: bob!*@* (by alice)"),
    ],
)
def test_moderation_replies_become_sentences(raw: str, text: str) -> None:
    assert plain(raw) == f"12:04 {text}"


def test_server_time_is_shown_when_present() -> None:
    msg = Message("PRIVMSG", ("#lobby", "old news"), "bob!b@h", {"time": "2026-01-02T09:30:00.000Z"})
    when = message_time(msg, NOW)
    assert when == datetime.fromisoformat("2026-01-02T09:30:00+00:00").timestamp()
    result = describe(msg, NOW)
    assert result is not None and result.stamp == time.strftime("%H:%M", time.localtime(when))
    broken = Message("PRIVMSG", ("#lobby", "x"), "bob!b@h", {"time": "yesterday"})
    assert message_time(broken, NOW) == NOW


def test_own_lines_and_mentions_are_marked() -> None:
    own = line(":alice!a@h PRIVMSG #lobby :hi all", me="Alice")
    assert own is not None and own.own and not own.mention
    mention = line(":bob!b@h PRIVMSG #lobby :ALICE, lunch?", me="alice")
    assert mention is not None and mention.mention and not mention.own
    for text in ("alice_ is here", "malice", "[alice]x"):
        other = line(f":bob!b@h PRIVMSG #lobby :{text}", me="alice")
        assert other is not None and not other.mention, text
    join = line(":bob!b@h JOIN #alice", me="alice")
    assert join is not None and not join.mention


def test_split_mentions_marks_whole_words_only() -> None:
    assert list(split_mentions("hi alice, alice_ and Alice!", "alice")) == [
        (False, "hi "),
        (True, "alice"),
        (False, ", alice_ and "),
        (True, "Alice"),
        (False, "!"),
    ]
    assert list(split_mentions("anything", "")) == [(False, "anything")]


def test_lines_from_another_room_name_it() -> None:
    assert plain(":bob!b@h PRIVMSG #dev :ship it", room="#lobby") == "12:04 [#dev] bob: ship it"
    assert plain(":bob!b@h PRIVMSG #DEV :ship it", room="#dev") == "12:04 bob: ship it"
    assert plain(":bob!b@h QUIT :x", room="#lobby") == "12:04 ← bob quit (x)"


# -- terminal styling -------------------------------------------------------------------------


def test_fragments_colour_the_nick_and_highlight_mentions() -> None:
    result = line(":bob!b@h PRIVMSG #lobby :hey alice", me="alice")
    assert result is not None
    parts = fragments(result, "#lobby", "alice")
    assert (f"fg:{nick_colour('bob')} bold", "bob") in parts
    assert ("class:mention", "alice") in parts
    assert "".join(text for _, text, *_ in parts) == result.plain("#lobby")
    own = line(":alice!a@h PRIVMSG #lobby :mine", me="alice")
    assert own is not None and ("class:own", "mine") in fragments(own, "#lobby", "alice")


def test_to_ansi_renders_escape_sequences_around_the_text() -> None:
    from prompt_toolkit.output import ColorDepth

    result = line(":bob!b@h PRIVMSG #lobby :hello")
    assert result is not None
    text = to_ansi(fragments(result, "#lobby", ""), ColorDepth.DEPTH_24_BIT)
    assert "\x1b[" in text and "bob" in text and text.endswith("\x1b[0m")
    r, g, b = (int(nick_colour("bob")[i : i + 2], 16) for i in (1, 3, 5))
    assert f"38;2;{r};{g};{b}" in text


# -- client commands ------------------------------------------------------------------------------


class FakeClient:
    """Records what the command table asks of a ChatClient."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: self.calls.append((name, args, kwargs))


@pytest.mark.parametrize(
    ("typed", "call"),
    [
        ("hello", ("say", ("hello",), {})),
        ("//etc/passwd is gone", ("say", ("/etc/passwd is gone",), {})),
        ("/me waves", ("say", ("waves",), {"action": True})),
        ("/msg bob see you", ("message", ("bob", "see you"), {})),
        ("/nick al", ("change_nick", ("al",), {})),
        ("/join dev", ("join", ("#dev",), {})),
        ("/join #dev", ("join", ("#dev",), {})),
        ("/part", ("part", (None, ""), {})),
        ("/part #dev bye", ("part", ("#dev", "bye"), {})),
        ("/topic", ("topic", (None,), {})),
        ("/topic Friday", ("topic", ("Friday",), {})),
        ("/who", ("who", (), {})),
        ("/WHO", ("who", (), {})),
        ("/op bob", ("mode", ("+o", "bob"), {})),
        ("/op bob carol", ("mode", ("+oo", "bob", "carol"), {})),
        ("/deop bob", ("mode", ("-o", "bob"), {})),
        ("/voice bob", ("mode", ("+v", "bob"), {})),
        ("/devoice bob", ("mode", ("-v", "bob"), {})),
        ("/ban bob", ("mode", ("+b", "bob"), {})),
        ("/ban *!*@10.*", ("mode", ("+b", "*!*@10.*"), {})),
        ("/unban bob!*@*", ("mode", ("-b", "bob!*@*"), {})),
        ("/quiet bob", ("mode", ("+q", "bob"), {})),
        ("/mute bob", ("mode", ("+q", "bob"), {})),
        ("/unquiet bob", ("mode", ("-q", "bob"), {})),
        ("/unmute bob", ("mode", ("-q", "bob"), {})),
        ("/kick dave", ("kick", ("dave", ""), {})),
        ("/kick dave spamming again", ("kick", ("dave", "spamming again"), {})),
        ("/invite carol", ("invite", ("carol", None), {})),
        ("/invite carol #dev", ("invite", ("carol", "#dev"), {})),
        ("/mode", ("mode", (), {})),
        ("/mode +kl s3cret 4", ("mode", ("+kl", "s3cret", "4"), {})),
        ("/moderate", ("mode", ("+m",), {})),
        ("/moderate off", ("mode", ("-m",), {})),
        ("/oper boss correct horse", ("oper", ("boss", "correct horse"), {})),
    ],
)
def test_commands_call_the_client(typed: str, call: tuple) -> None:
    fake = FakeClient()
    assert run_input(fake, typed) is True  # type: ignore[arg-type]
    assert fake.calls == [call]


def test_quit_and_unknown_commands() -> None:
    fake = FakeClient()
    assert run_input(fake, "/quit see you") is False  # type: ignore[arg-type]
    assert fake.calls == [("quit", ("see you",), {})]
    fake = FakeClient()
    assert run_input(fake, "/frobnicate") is True  # type: ignore[arg-type]
    ((name, args, _),) = fake.calls
    assert name == "note" and "unknown command /frobnicate" in args[0] and "/help" in args[0]
    assert args[1] is Kind.ERROR


@pytest.mark.parametrize(
    "typed", ["/op", "/deop", "/voice", "/devoice", "/kick", "/ban", "/unban", "/quiet", "/mute", "/unquiet",
              "/unmute", "/invite", "/invite a b", "/mode m", "/moderate maybe", "/oper", "/oper boss"],
)
def test_room_commands_without_their_arguments_show_usage(typed: str) -> None:
    fake = FakeClient()
    assert run_input(fake, typed) is True  # type: ignore[arg-type]
    ((name, args, _),) = fake.calls
    assert name == "note" and args[0].startswith("usage: /") and args[1] is Kind.ERROR


class StatusClient(FakeClient):
    """A FakeClient that is (or is not) an operator of its room, or a server operator."""

    def __init__(self, operator: bool, server_oper: bool = False) -> None:
        super().__init__()
        self.operator = operator
        self.server_oper = server_oper

    def is_operator(self) -> bool:
        return self.operator or self.server_oper


def help_text(client: FakeClient) -> str:
    run_input(client, "/help")  # type: ignore[arg-type]
    return "\n".join(args[0] for _, args, _ in client.calls)


def test_help_lists_every_command_that_applies() -> None:
    member = help_text(StatusClient(operator=False))
    for word in ("/nick", "/me", "/msg", "/join", "/part", "/topic", "/who", "/invite", "/quit", "/oper"):
        assert word in member
    for word in ("/op ", "/kick", "/ban", "/quiet", "/mode", "/moderate", "operator)"):
        assert word not in member
    operator = help_text(StatusClient(operator=True))
    assert operator.startswith(member)  # the same, then a group of its own
    for word in ("Running the room", "/op NICK", "/deop", "/voice", "/devoice", "/kick NICK [reason]", "/ban",
                 "/unban", "/quiet", "/mute", "/unquiet", "/mode", "/moderate [on|off]"):
        assert word in operator
    assert operator.count("/quiet") == 1  # /mute is the same command, not a line of its own
    server = help_text(StatusClient(operator=False, server_oper=True))
    assert "/kick" in server and "/oper" not in server


# -- plain-text users: telnet bytes and first-line sniffing -------------------------------------


def test_iac_filter_removes_telnet_commands_even_split_across_reads() -> None:
    stream = b"\xff\xfb\x1f\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0al\xff\xf1ice\r\n\xff\xff"
    assert IacFilter().feed(stream) == b"alice\r\n"
    for cut in range(len(stream)):
        f = IacFilter()
        assert f.feed(stream[:cut]) + f.feed(stream[cut:]) == b"alice\r\n", cut
    assert IacFilter().feed("Вася\n".encode()) == "Вася\n".encode()


@pytest.mark.parametrize(
    ("first", "irc"),
    [
        ("CAP LS 302", True),
        ("NICK alice", True),
        ("nick alice", True),
        ("USER a 0 * :A", True),
        ("PASS secret", True),
        ("WEBIRC pw gw host 1.2.3.4", True),
        ("QUIT", True),
        ("@time=x PING :y", True),
        ("JOIN #lobby", True),  # an IRC client too early for JOIN still gets 451
        ("alice", False),
        ("Вася", False),
        ("Nick", False),
        ("hello everyone", False),
        ("join #lobby", False),
        ("/nick bob", False),
    ],
)
def test_first_line_sniffing(first: str, irc: bool) -> None:
    assert looks_like_irc(first) is irc


def test_after_the_name_prompt_only_capitalised_irc_counts() -> None:
    assert looks_like_irc("NICK alice", strict=True)
    assert not looks_like_irc("nick alice", strict=True)
    assert not looks_like_irc("JOIN #lobby", strict=True)


def test_text_bytes_end_lines_with_crlf_and_never_split_a_line() -> None:
    assert text_bytes("a", "b\r\nc\0") == b"a\r\nb  c\r\n"


def test_the_client_paces_a_long_burst_of_lines() -> None:
    from client.chat import Pacer

    pacer = Pacer(burst=10, rate=2.0)
    assert [pacer.delay() for _ in range(10)] == [0.0] * 10
    assert 0.0 < pacer.delay() <= 0.5  # the eleventh waits for its token, half a second at most


# -- history set apart -------------------------------------------------------------------------


def test_a_stamp_shows_the_date_only_for_another_day() -> None:
    from backend.irc.describe import stamp_at

    assert stamp_at(NOW - 60, NOW) == "12:03"
    two_days_ago = datetime(2025, 12, 31, 9, 15).timestamp()
    assert stamp_at(two_days_ago, NOW) == "2025-12-31 09:15"
    old = line("@time=2025-12-31T09:15:00.000Z :bob!b@h PRIVMSG #lobby :hi")
    assert old is not None and old.stamp.startswith("2025-12-31 ")


def test_marks_read_as_separators_without_a_time() -> None:
    from backend.irc.describe import mark

    assert mark("earlier in #lobby").plain("#dev") == "── earlier in #lobby ──"
    assert mark("now").plain() == "── now ──"
    assert to_ansi(fragments(mark("now"), "#lobby", "me"), ColorDepth.DEPTH_1_BIT).count("── now ──") == 1


def test_history_lines_are_dimmed_in_the_terminal_and_plain_otherwise() -> None:
    from dataclasses import replace

    live = line(":alice!a@h PRIVMSG #lobby :hello")
    assert live is not None
    old = replace(live, history=True)
    assert old.plain() == live.plain() == "12:04 alice: hello"
    assert all("class:history" in style and "dim" in style for style, _ in fragments(old, "#lobby", "me"))
    assert not any("dim" in style for style, _ in fragments(live, "#lobby", "me"))


class Shown:
    """A View that keeps the plain lines it was given."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.history: list[bool] = []

    def show(self, shown: Line, room: str | None, me: str) -> None:
        self.lines.append(shown.plain(room))
        self.history.append(shown.history)


def test_the_client_shows_a_chathistory_batch_between_marks_once() -> None:
    from backend.irc import parse_line
    from client.chat import ChatClient
    from client.connection import Connection

    view = Shown()
    chat = ChatClient(Connection("127.0.0.1", 1), view)  # never opened: sends go nowhere
    chat.nick, chat.room = "me", "#lobby"
    batch = [
        ":s BATCH +h1 chathistory #lobby",
        "@batch=h1;time=2025-12-31T09:15:00.000Z;msgid=a1 :bob!b@h PRIVMSG #lobby :old",
        "@time=2026-01-02T12:04:00.000Z;msgid=l1 :carol!c@h PRIVMSG #lobby :live meanwhile",
        "@batch=h1;time=2025-12-31T09:16:00.000Z;msgid=a2 :bob!b@h PRIVMSG #lobby :older",
        ":s BATCH -h1",
    ]
    for raw in batch:
        chat._handle(parse_line(raw))
    assert view.lines[0].endswith("carol: live meanwhile")  # live lines are not held back
    assert view.lines[1:] == [
        "── earlier in #lobby ──",
        time.strftime("%Y-%m-%d %H:%M", time.localtime(message_time(parse_line(batch[1]), 0))) + " bob: old",
        time.strftime("%Y-%m-%d %H:%M", time.localtime(message_time(parse_line(batch[3]), 0))) + " bob: older",
        "── now ──",
    ]
    assert view.history == [False, False, True, True, False]
    # Replayed again after a reconnect: every msgid was shown, so nothing at all.
    for raw in batch:
        chat._handle(parse_line(raw))
    assert len(view.lines) == 5


def test_text_users_read_server_notes_and_closing_lines_as_sentences() -> None:
    from backend.irc import parse_line
    from backend.net.textuser import closing_text, server_note

    assert server_note(parse_line(":lobby NOTICE #lobby :Recent messages in #lobby:")) == (
        "── Recent messages in #lobby ──"
    )
    assert server_note(parse_line(":bob!b@h NOTICE #lobby :not the server")) is None
    assert server_note(parse_line(":lobby NOTICE bob :to a person")) is None
    assert closing_text(parse_line("ERROR :Closing link: 1.2.3.4 (Bad password)")) == "Disconnected: Bad password."
    assert closing_text(parse_line("ERROR :Closing link: 1.2.3.4 (Quit: bye)")) == "Disconnected."


def test_the_server_does_not_import_the_client_package() -> None:
    """backend/ (textuser.py included) stands alone: the renderer it shares lives in backend/irc/describe.py."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, backend.node, backend.net.textuser, backend.cli; "
        "print(sorted(m for m in sys.modules if m == 'client' or m.startswith('client.')))"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
