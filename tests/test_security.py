"""Issue 16's security items, each pinned down: room names that cannot pass for others,
no escape sequences reaching a terminal, password guessing slowed down per address, and
web slots that come back when a thread cannot be started.

Pure functions are tested directly; behaviour over real sockets on port 0.
"""

from __future__ import annotations

import io
import re
import socket
import sys
import time
from collections.abc import Callable

import pytest
from prompt_toolkit.output import ColorDepth

from backend.irc import Message, is_valid_channel, is_valid_nick, parse_line
from backend.irc import describe as describing
from backend.irc.describe import describe
from backend.net.textuser import PROMPT, text_bytes
from backend.node import ChatServer
from client.chat import ChatClient, Outcome
from client.connection import Connection as ClientConnection
from client.terminal import PlainView, TerminalView
from tests.ircclient import connect

# What a hostile user sends, one line each: clear the screen, retitle the window,
# write the clipboard (OSC 52), and an 8-bit CSI (U+009B) that some terminals obey.
EVIL = (
    "\x1b[2J\x1b[Hcleared",
    "\x1b]0;pwned\x07title",
    "\x1b]52;c;cm0gLXJmIH4=\x07clipboard",
    "\x9b31mred",
    "st\x1b\\\x90dcs\x9c\x9d",
)
C1 = re.compile("[\x80-\x9f]")


def assert_inert(text: str) -> None:
    """No ESC, no BEL, no C1 control: nothing a terminal would act upon."""
    assert "\x1b" not in text and "\x07" not in text, repr(text)
    assert not C1.search(text), repr(text)


# -- item 12: room names -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "#admin\u202e",  # right-to-left override
        "#lob\u200bby",  # zero-width space
        "#lob\u200dby",  # zero-width joiner (Cf)
        "#\u2066lobby\u2069",  # bidi isolates
        "#lobby\ufeff",  # zero-width no-break space
        "#lob\u00a0by",  # no-break space (Zs)
        "#lob\u3000by",  # ideographic space (Zs)
        "#lob\u2028by",  # line separator (Zl)
        "#lob\u2029by",  # paragraph separator (Zp)
        "#lob\u00adby",  # soft hyphen (Cf)
        "#lob\x1bby",  # escape (Cc)
        "#lob\x85by",  # next line (C1)
        "#\u3164",  # Hangul filler: a "letter" that shows nothing
        "#lobby\ufe0f",  # variation selector
        "#lobby\ue000",  # private use
    ],
)
def test_invisible_and_text_direction_characters_are_refused_in_room_names(name: str) -> None:
    assert not is_valid_channel(name)


@pytest.mark.parametrize("name", ["#lobby", "#кафе", "#日本語", "#c++", "#café", "#नमस्ते", "#a-b_c.d"])
def test_visible_room_names_of_any_script_stay_valid(name: str) -> None:
    assert is_valid_channel(name)


def test_nicks_refuse_the_same_invisible_characters() -> None:
    assert is_valid_nick("Вася")
    for nick in ("ali\u202ece", "ali\u200bce", "\u3164", "al\u3164"):
        assert not is_valid_nick(nick)


def test_joining_a_spoofing_room_name_is_refused_with_a_reason(make_server: Callable[..., ChatServer]) -> None:
    server = make_server()
    alice = connect(server.address, "alice")
    make_server.clients.append(alice)  # type: ignore[attr-defined]
    alice.send("JOIN #admin\u202e")
    refused = alice.expect(r" (403|479) alice ")
    assert refused.params[1] == "#admin\u202e"
    assert "invisible" in refused.params[-1]
    alice.send("JOIN #lob\u200bby")
    assert alice.expect(r" (403|479) alice ").params[1] == "#lob\u200bby"
    assert alice.sync() == []  # no JOIN followed either refusal
    assert server.hub.rooms_of(alice_member(server)) == ["#lobby"]


def alice_member(server: ChatServer) -> object:
    member = server.hub.find("alice")
    assert member is not None
    return member


# -- item 10: no escape sequences for terminals -----------------------------------------------


def test_visible_makes_every_control_character_inert() -> None:
    for evil in EVIL:
        assert_inert(describing.visible(evil))
    assert describing.visible("\x1b[2J") == "\u241b[2J"  # shown, not obeyed
    assert describing.visible("\x9b31m") == "\u241b[31m"  # C1 CSI as the ESC [ it stands for
    ordinary = "plain, ünïcödé 日本 \u05e9\u05dc\u05d5\u05dd"
    assert describing.visible(ordinary) == ordinary
    # IRC's own formatting codes are dropped, the words kept.
    assert describing.visible("\x02bold\x02 \x0304,01red\x0f \x1ditalic\x1d") == "bold red italic"
    assert_inert("".join(describing.visible(chr(c)) for c in range(0x100)))


def test_described_lines_carry_no_control_characters() -> None:
    for evil in EVIL:
        for raw in (
            Message("PRIVMSG", ("#lobby", evil), "eve!e@h"),
            Message("TOPIC", ("#lobby", evil), "eve!e@h"),
            Message("NOTICE", ("#lobby", evil), "eve!e@h"),
            Message("PART", ("#lobby", evil), "eve!e@h"),
            Message("QUIT", (evil,), "eve!e@h"),
            Message("332", ("me", "#lobby", evil), "server"),
            Message("404", ("me", "#lobby", evil), "server"),
            Message("PRIVMSG", ("#lobby", "hi"), f"ev{evil}!e@h"),  # another server's nick
        ):
            line = describe(raw, time.time(), "me")
            assert line is not None
            assert_inert(line.plain("#lobby"))
    assert_inert(text_bytes(*EVIL).decode("utf-8"))


class RawReader:
    """A socket's raw bytes, read as far as needed to see a marker."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = b""

    def until(self, marker: bytes, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        start = len(self.data)
        while not re.search(marker, self.data[start:]):
            assert time.monotonic() < deadline, f"no {marker!r} in {self.data!r}"
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.sock.recv(65536)
            assert chunk, f"closed before {marker!r}: {self.data!r}"
            self.data += chunk


def test_a_text_user_never_receives_escape_sequences(make_server: Callable[..., ChatServer]) -> None:
    server = make_server(text_silence=0.2)
    person = socket.create_connection(server.address, timeout=10)
    seen = RawReader(person)
    try:
        seen.until(PROMPT.encode())
        person.sendall(b"tess\r\n")
        seen.until(b"tess joined #lobby")
        eve = connect(server.address, "eve")
        make_server.clients.append(eve)  # type: ignore[attr-defined]
        for evil in EVIL:
            eve.send(f"PRIVMSG #lobby :{evil}")
            eve.send(f"TOPIC #lobby :{evil}")
            eve.send(f"PRIVMSG tess :{evil}")
            eve.send(f"NOTICE #lobby :{evil}")
        eve.send("PART #lobby :\x1b]0;bye\x07")
        eve.send("JOIN #lobby")
        eve.send("PRIVMSG #lobby :the end")
        seen.until(b"eve: the end")
        person.sendall(b"/topic\r\n")
        seen.until(b"Topic of #lobby[^\r]*\r\n")
    finally:
        person.close()
    text = seen.data.decode("utf-8")
    assert_inert(text)
    assert "\u241b[2J" in text and "\u241b]0;pwned" in text and "\u241b]52;c;" in text
    assert "\u241b[31mred" in text  # the C1 CSI, shown as what it is


class RecordingTerminal(TerminalView):
    """The terminal client's coloured view, at a fixed colour depth, printing to a buffer."""

    def __init__(self) -> None:
        self.depth = ColorDepth.DEPTH_24_BIT


# Lobby's own styling: SGR colours and the auto-wrap switch prompt_toolkit writes.
OWN_STYLING = re.compile(r"\x1b\[(\?7h|[0-9;]*m)")


def test_the_terminal_client_shows_escape_sequences_inert(
    make_server: Callable[..., ChatServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_server()
    screen = io.StringIO()
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stdout", screen)
    clients = [
        ChatClient(ClientConnection("127.0.0.1", server.address[1]), RecordingTerminal()),
        ChatClient(ClientConnection("127.0.0.1", server.address[1]), PlainView(piped)),
    ]
    try:
        for nick, chat in zip(("tina", "pete"), clients, strict=True):
            chat.start()
            assert chat.sign_in(nick, timeout=10).outcome is Outcome.WELCOME
            assert chat.wait_ready(10)
        eve = connect(server.address, "eve")
        make_server.clients.append(eve)  # type: ignore[attr-defined]
        for evil in EVIL:
            eve.send(f"PRIVMSG #lobby :{evil}")
            eve.send(f"TOPIC #lobby :{evil}")
            eve.send(f"PRIVMSG tina :{evil}")
        eve.send("PRIVMSG #lobby :the end")
        deadline = time.monotonic() + 10
        while not ("eve: the end" in piped.getvalue() and "the end" in screen.getvalue()):
            assert time.monotonic() < deadline, (screen.getvalue(), piped.getvalue())
            time.sleep(0.02)
    finally:
        for chat in clients:
            chat.quit()
    assert_inert(piped.getvalue())
    assert "\u241b[2J" in piped.getvalue()
    shown = screen.getvalue()
    assert "\x1b[" in shown  # coloured: our own escape sequences are there
    assert_inert(OWN_STYLING.sub("", shown))
    assert "\u241b]52;c;" in shown


def test_a_server_refusal_is_printed_inert() -> None:
    chat = ChatClient(ClientConnection("127.0.0.1", 9), PlainView(io.StringIO()))
    chat._handle(parse_line("ERROR :Closing link: \x1b]0;pwned\x07"))
    assert_inert(chat._last_error)
