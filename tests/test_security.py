"""Issue 16's security items, each pinned down: room names that cannot pass for others,
no escape sequences reaching a terminal, password guessing slowed down per address, and
web slots that come back when a thread cannot be started.

Pure functions are tested directly; behaviour over real sockets on port 0.
"""

from __future__ import annotations

import io
import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Callable

import pytest
from flask import Flask
from prompt_toolkit.output import ColorDepth

from backend.core.guard import FailureGuard
from backend.irc import Message, is_valid_channel, is_valid_nick, parse_line
from backend.irc import describe as describing
from backend.irc.describe import describe
from backend.net.textuser import PROMPT, text_bytes
from backend.node import ChatServer
from bridge.web import WebServer
from client.chat import ChatClient, Outcome
from client.connection import Connection as ClientConnection
from client.terminal import PlainView, TerminalView
from tests.conftest import wait_for_threads
from tests.ircclient import IrcClient, connect, wait_until

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


# -- item 9: password guessing -----------------------------------------------------------------


class FakeClock:
    """A clock for the guard that moves only when told (or slept on)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_guard_doubles_the_delay_up_to_the_cap_and_spaces_checks() -> None:
    clock = FakeClock()
    guard = FailureGuard(base=0.5, cap=8.0, quiet=300.0, clock=clock)
    assert guard.admit("198.51.100.7") == 0.0  # a fresh address is never held up
    delays = [guard.failed("198.51.100.7") for _ in range(7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert guard.admit("198.51.100.7") == pytest.approx(8.0)  # the next check must wait
    assert guard.admit("203.0.113.9") == 0.0  # other addresses are not affected
    clock.sleep(8.0)
    assert guard.admit("198.51.100.7") == 0.0  # its turn: the slot is taken ...
    assert guard.admit("198.51.100.7") == pytest.approx(8.0)  # ... so a second connection waits
    guard.succeeded("198.51.100.7")
    assert guard.failures("198.51.100.7") == 0 and guard.admit("198.51.100.7") == 0.0
    assert guard.failed("198.51.100.7") == 0.5  # and starts over


def test_the_guard_forgets_after_a_quiet_period_and_stays_bounded() -> None:
    clock = FakeClock()
    guard = FailureGuard(base=1.0, cap=4.0, quiet=60.0, clock=clock, max_keys=3)
    for _ in range(3):
        guard.failed("a")
    clock.sleep(59.0)
    assert guard.failures("a") == 3
    clock.sleep(1.0)
    assert guard.failures("a") == 0 and guard.admit("a") == 0.0
    for key in ("k1", "k2", "k3", "k4", "k5"):
        guard.failed(key)
        clock.sleep(0.1)
    assert guard.failures("k5") == 1 and guard.failures("k1") == 0  # the stalest went first
    assert len(guard._records) <= 3


def guess(address: tuple[str, int], password: str | None, source: str = "127.0.0.1") -> tuple[float, list[str]]:
    """Register with password (None: no PASS); return the seconds until the server hung up, and its lines."""
    sock = socket.create_connection(address, timeout=30, source_address=(source, 0))
    c = IrcClient(address, timeout=30, sock=sock)
    try:
        if password is not None:
            c.send(f"PASS :{password}")
        c.send("NICK guesser")
        started = time.monotonic()
        c.send("USER g 0 * :G")
        lines = c.expect_closed(timeout=30)
        return time.monotonic() - started, lines
    finally:
        c.close()


SECRET = "correct horse battery staple"


def test_wrong_passwords_from_one_address_are_answered_ever_more_slowly(
    make_server: Callable[..., ChatServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    server = make_server(password=SECRET, password_delay=0.1, password_delay_max=0.4)
    bystander = connect(server.address, None)
    make_server.clients.append(bystander)  # type: ignore[attr-defined]
    bystander.send(f"PASS :{SECRET}")
    bystander.register("bob")
    timings = []
    for attempt in range(6):
        took, lines = guess(server.address, f"guess-{attempt}")
        assert lines[0].endswith(" 464 guesser :Password incorrect"), lines
        timings.append(took)
        # Nobody else waits meanwhile: a registered user is answered at once.
        started = time.monotonic()
        bystander.sync()
        assert time.monotonic() - started < 0.2
    # 0.1, 0.2, 0.4, 0.4, ... (generous bounds: a loaded machine is only ever slower)
    assert timings[0] >= 0.08
    assert timings[1] >= 0.16
    assert all(took >= 0.3 for took in timings[2:]), timings
    assert sum(timings) >= 1.5, timings
    # Each failure is logged once, with the address; no password is ever in the log.
    failures = [r for r in caplog.records if "wrong server password" in r.getMessage()]
    assert len(failures) == 6 and all("127.0.0.1" in r.getMessage() for r in failures)
    assert not any(f"guess-{attempt}" in caplog.text for attempt in range(6))
    assert SECRET not in caplog.text
    # The right password still gets in (after at most one delay) and starts the count over.
    right = connect(server.address, None)
    make_server.clients.append(right)  # type: ignore[attr-defined]
    right.send(f"PASS :{SECRET}")
    right.register("alice")
    took, _ = guess(server.address, "wrong again")
    assert took < 0.3


def test_many_connections_from_one_address_get_one_check_per_delay(make_server: Callable[..., ChatServer]) -> None:
    server = make_server(password=SECRET, password_delay=0.25, password_delay_max=0.25)
    guess(server.address, "first")
    started = time.monotonic()
    results: list[tuple[float, list[str]]] = []
    threads = [threading.Thread(target=lambda i=i: results.append(guess(server.address, f"p{i}")))
               for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    elapsed = time.monotonic() - started
    assert len(results) == 8 and all(any(" 464 " in line for line in lines) for _, lines in results)
    # 8 checks, one per 0.25 s, each answered 0.25 s later: about 2.25 s; 1,508 a second before.
    assert elapsed >= 8 * 0.25 * 0.8, elapsed
    # Another address is not held up by this one's guessing.
    took, lines = guess(server.address, "elsewhere", source="127.0.0.2")
    assert took < 0.6 and any(" 464 " in line for line in lines)


def test_every_failure_is_answered_alike(make_server: Callable[..., ChatServer]) -> None:
    server = make_server(password=SECRET, password_delay=0.01, password_delay_max=0.01)
    answers = [guess(server.address, password)[1] for password in (None, "nope", SECRET.upper(), SECRET + " ")]
    assert all(answer == answers[0] for answer in answers), answers
    assert any(" 464 " in line for line in answers[0])


def test_a_guesser_waiting_out_its_delay_does_not_hold_up_shutdown(make_server: Callable[..., ChatServer]) -> None:
    server = make_server(password=SECRET, password_delay=20.0, password_delay_max=20.0)
    results: list[tuple[float, list[str]]] = []
    guesser = threading.Thread(target=lambda: results.append(guess(server.address, "slow")))
    guesser.start()
    wait_until(lambda: server.chat.guard.failures("127.0.0.1") == 1)
    time.sleep(0.2)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.5
    guesser.join(5)
    assert results and results[0][0] < 5, results


# -- item 4: a failed thread start in the web server ----------------------------------------


def http_get(address: tuple[str, int]) -> bytes:
    """A plain HTTP GET / over a socket; the whole response."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_a_thread_that_cannot_start_gives_its_web_slot_back(monkeypatch: pytest.MonkeyPatch) -> None:
    baseline = set(threading.enumerate())
    app = Flask("slots")
    app.add_url_rule("/", "index", lambda: "served")
    server = WebServer(app, "127.0.0.1", 0, max_connections=3)
    address = server.start()
    real_start = threading.Thread.start
    failures = {"left": 5}

    def start(thread: threading.Thread) -> None:
        # Only the web server's per-connection threads fail, as under a pids limit.
        if thread.name.startswith("web-") and thread.name != "web-serve" and failures["left"] > 0:
            failures["left"] -= 1
            raise RuntimeError("can't start new thread")
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    try:
        refused = [http_get(address) for _ in range(5)]
        assert failures["left"] == 0
        assert all(not response or response.startswith(b"HTTP/1.1 503") for response in refused), refused
        # The five slots came back: honest requests are served, more of them than max_connections.
        for _ in range(6):
            response = http_get(address)
            assert response.startswith(b"HTTP/1.1 200") and response.endswith(b"served"), response
    finally:
        monkeypatch.undo()
        started = time.monotonic()
        server.stop()  # raised "cannot join thread before it is started"
    assert time.monotonic() - started < 2.0
    assert not wait_for_threads(baseline)
