"""Multiclient: one account signed in from several connections at once is one user (core/multiclient.py)."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from backend.core.chat import Chat
from backend.core.client import Client, SharedUser
from backend.core.config import ChatConfig
from backend.core.dispatch import dispatch
from backend.core.passwords import hash_password
from backend.irc import Message, parse_line
from backend.node import ChatServer
from tests.ircclient import IrcClient, connect, wait_until
from tests.realclients import IRSSI_CONFIG, Terminal, Terminals, require
from tests.test_core_handlers import RecordingLink
from tests.test_real_clients import joined_room, says

ROOT = Path(__file__).resolve().parent.parent
Factory = Callable[..., ChatServer]
FAST = {"password_delay": 0.05, "password_delay_max": 0.4, "text_silence": 0.2}
PASSWORD = "correct horse"


@pytest.fixture
def server(make_server: Factory) -> ChatServer:
    """A server with the accounts alice and bob."""
    server = make_server(**FAST)
    add_accounts(server)
    return server


def add_accounts(server: ChatServer) -> None:
    assert server.accounts is not None
    for name in ("alice", "bob"):
        assert server.accounts.create(name, hash_password(PASSWORD))


def opened(make_server: Factory, server: ChatServer) -> IrcClient:
    c = connect(server.address)
    make_server.clients.append(c)  # type: ignore[attr-defined]
    return c


def signed_in(
    make_server: Factory, server: ChatServer, nick: str, account: str, caps: str = "", password: str = PASSWORD,
) -> IrcClient:
    """A connection that signs in with SASL before registering, as nick; returned before CAP END's replies."""
    c = opened(make_server, server)
    c.send("CAP LS 302")
    c.send(f"CAP REQ :{' '.join(['sasl', *caps.split()])}")
    c.send(f"NICK {nick}")
    c.send(f"USER {nick} 0 * :{nick} real")
    c.expect(r" CAP \S+ ACK ")
    c.send("AUTHENTICATE PLAIN")
    c.expect(r"^AUTHENTICATE \+")
    c.send("AUTHENTICATE " + base64.b64encode(f"\0{account}\0{password}".encode()).decode())
    c.expect(r" 903 ")
    c.send("CAP END")
    return c


def device(make_server: Factory, server: ChatServer, caps: str = "") -> IrcClient:
    """One more connection of alice's, attached: welcomed as alice and put in her rooms."""
    c = signed_in(make_server, server, "alice", "alice", caps)
    c.expect(r" 001 alice ")
    c.expect(r" 366 alice #lobby ")
    return c


def guest(make_server: Factory, server: ChatServer, nick: str, caps: str = "") -> IrcClient:
    c = connect(server.address, nick, caps)
    make_server.clients.append(c)  # type: ignore[attr-defined]
    return c


def count(lines: list[str], pattern: str) -> int:
    return sum(1 for line in lines if re.search(pattern, line))


def test_a_second_connection_attaches_to_the_user(make_server: Factory, server: ChatServer) -> None:
    obs = guest(make_server, server, "obs")
    laptop = device(make_server, server)
    obs.expect(r":alice!\S+ JOIN #lobby")
    phone = signed_in(make_server, server, "alice", "alice")
    burst = phone.lines_until(r" 366 alice #lobby ")
    assert count(burst, r" 001 alice ") == 1
    assert count(burst, r"^:alice!\S+ JOIN :?#lobby$") == 1
    names = next(line for line in burst if " 353 " in line)
    assert set(names.split(":")[-1].split()) == {"obs", "alice"}
    obs.never(r"JOIN|QUIT")  # nobody else sees the second connection come
    laptop.never(r"JOIN")
    # One user: WHOIS, NAMES and the counts show alice once.
    obs.send("WHOIS alice")
    obs.expect(r" 318 obs alice ")
    assert count(obs.seen, r" 311 obs alice ") == 1
    obs.send("NAMES #lobby")
    names = obs.expect(r" 353 obs = #lobby ")
    assert sorted(names.params[-1].split()) == ["alice", "obs"]
    assert server.hub.user_count() == 2
    assert server.chat.local_counts() == (2, 0)


def test_what_one_connection_says_reaches_the_room_once_and_the_other_connections(
    make_server: Factory, server: ChatServer,
) -> None:
    obs = guest(make_server, server, "obs", "message-tags server-time")
    laptop = device(make_server, server)
    phone = device(make_server, server, "echo-message message-tags server-time")
    obs.sync()
    phone.send("PRIVMSG #lobby :from the phone")
    said = obs.expect(r":alice!\S+ PRIVMSG #lobby :from the phone")
    copy = laptop.expect(r"^:alice!\S+ PRIVMSG #lobby :from the phone$")  # rendered for its own (no) tags
    echo = phone.expect(r":alice!\S+ PRIVMSG #lobby :from the phone")
    assert echo.tags["msgid"] == said.tags["msgid"] and not copy.tags
    obs.never(r"from the phone")
    laptop.never(r"from the phone")
    phone.never(r"from the phone")
    # The laptop has no echo-message: the phone still shows what was said there.
    laptop.send("PRIVMSG #lobby :from the laptop")
    obs.expect(r":alice!\S+ PRIVMSG #lobby :from the laptop")
    phone.expect(r":alice!\S+ PRIVMSG #lobby :from the laptop")
    laptop.never(r"from the laptop")
    # Private messages: to alice, every connection; from one, a copy to the others.
    obs.send("PRIVMSG alice :hello alice")
    laptop.expect(r":obs!\S+ PRIVMSG alice :hello alice")
    phone.expect(r":obs!\S+ PRIVMSG alice :hello alice")
    phone.send("PRIVMSG obs :hi from the phone")
    obs.expect(r":alice!\S+ PRIVMSG obs :hi from the phone")
    laptop.expect(r":alice!\S+ PRIVMSG obs :hi from the phone")
    phone.expect(r":alice!\S+ PRIVMSG obs :hi from the phone")  # its echo-message
    obs.never(r"hi from the phone")
    phone.never(r"hi from the phone")


def test_join_part_and_nick_by_one_connection_are_the_users(make_server: Factory, server: ChatServer) -> None:
    obs = guest(make_server, server, "obs")
    obs.send("JOIN #room")
    obs.expect(r" 366 obs #room ")
    laptop = device(make_server, server)
    phone = device(make_server, server, "extended-join")
    laptop.send("JOIN #room")
    laptop.expect(r" 366 alice #room ")
    obs.expect(r":alice!\S+ JOIN #room")
    phone.expect(r":alice!\S+ JOIN #room alice :alice real")  # its own extended-join
    names = phone.expect(r" 353 alice = #room ")
    assert sorted(names.params[-1].split()) == ["@obs", "alice"]
    phone.expect(r" 366 alice #room ")
    obs.never(r"JOIN")
    phone.send("PART #room :bye")
    phone.expect(r":alice!\S+ PART #room :bye")
    laptop.expect(r":alice!\S+ PART #room :bye")
    obs.expect(r":alice!\S+ PART #room :bye")
    obs.never(r"PART")
    laptop.send("NICK alice2")
    laptop.expect(r":alice!\S+ NICK :?alice2")
    phone.expect(r":alice!\S+ NICK :?alice2")
    obs.expect(r":alice!\S+ NICK :?alice2")
    obs.never(r"NICK")
    phone.send("PRIVMSG #lobby :renamed")
    obs.expect(r":alice2!\S+ PRIVMSG #lobby :renamed")


def test_one_connection_leaving_is_invisible_and_the_last_is_the_users_quit(
    make_server: Factory, server: ChatServer,
) -> None:
    obs = guest(make_server, server, "obs", "away-notify")
    laptop = device(make_server, server)
    phone = device(make_server, server)
    # Modes and away are the user's: set from one connection, they hold for the other.
    laptop.send("MODE alice +i")
    laptop.expect(r"MODE alice :?\+i")
    phone.send("AWAY :brb")
    phone.expect(r" 306 alice ")
    obs.expect(r":alice!\S+ AWAY :brb")
    assert server.chat.local_counts() == (2, 1)
    obs.sync()
    # The first connection leaves: the user stays, through the phone.
    laptop.send("QUIT :laptop closed")
    laptop.expect_closed()
    wait_until(lambda: len(server.sessions()) == 2)
    obs.never(r"QUIT|PART")
    phone.never(r"QUIT")
    obs.send("PRIVMSG #lobby :still there?")
    phone.expect(r":obs!\S+ PRIVMSG #lobby :still there\?")
    obs.send("PRIVMSG alice :direct")
    phone.expect(r":obs!\S+ PRIVMSG alice :direct")
    obs.expect(r" 301 obs alice :brb")  # still away: the user's, not the laptop's
    phone.send("PRIVMSG #lobby :yes")
    obs.expect(r":alice!\S+ PRIVMSG #lobby :yes")
    assert server.chat.local_counts() == (2, 1)
    # Another attaches to what is left, then both go: the last one's QUIT is the user's.
    tablet = device(make_server, server)
    tablet.send("QUIT :tablet closed")
    tablet.expect_closed()
    wait_until(lambda: len(server.sessions()) == 2)
    obs.never(r"QUIT")
    phone.send("QUIT :phone closed")
    phone.expect_closed()
    obs.expect(r":alice!\S+ QUIT :Quit: phone closed")
    wait_until(lambda: server.chat.local_counts() == (1, 0))
    assert server.hub.find("alice") is None
    # And the nick is free again for a new first connection.
    again = device(make_server, server)
    obs.expect(r":alice!\S+ JOIN #lobby")
    again.send("QUIT")


def test_a_guest_or_another_account_still_gets_433(make_server: Factory, server: ChatServer) -> None:
    device(make_server, server)
    intruder = opened(make_server, server)
    intruder.send("NICK alice")
    intruder.send("USER x 0 * :x")
    intruder.expect(r" 433 \* alice ")
    intruder.send("NICK notalice")
    intruder.expect(r" 001 notalice ")
    other = signed_in(make_server, server, "alice", "bob")
    other.expect(r" 433 \* alice ")
    other.send("NICK bob")
    other.expect(r" 001 bob ")
    other.send("NICK alice")
    other.expect(r" 433 bob alice ")


def test_with_multiclient_off_a_second_connection_gets_433(make_server: Factory) -> None:
    server = make_server(multiclient=False, **FAST)
    add_accounts(server)
    device(make_server, server)
    second = signed_in(make_server, server, "alice", "alice")
    second.never(r" 001 ")
    assert count(second.seen, r" 433 \* alice ") == 1  # refused at NICK, as before multiclient


def test_a_person_at_a_terminal_sees_a_multiclient_user_once(make_server: Factory, server: ChatServer) -> None:
    person = opened(make_server, server)
    person.expect(r"^Enter your name:$")
    person.send_raw(b"tess\n")
    person.expect(r"Welcome, tess!")
    laptop = device(make_server, server)
    phone = device(make_server, server)
    person.expect(r"alice joined #lobby")
    phone.send("PRIVMSG #lobby :one line")
    laptop.expect(r"PRIVMSG #lobby :one line")
    laptop.send("PRIVMSG #lobby :two lines")
    person.expect(r" alice: two lines$")
    assert count(person.seen, r" alice: one line$") == 1
    assert count(person.seen, r"alice joined") == 1


def print_config(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "backend.cli", "serve", *args, "--print-config"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_switch_is_a_flag_and_a_config_key(tmp_path: Path) -> None:
    assert "multiclient = true" in print_config()
    assert "multiclient = false" in print_config("--no-multiclient")
    path = tmp_path / "lobby.toml"
    path.write_text("multiclient = false\n")
    assert "multiclient = false" in print_config("--config", str(path))
    assert "multiclient = true" in print_config("--config", str(path), "--multiclient")


# -- without sockets: the core alone, clients on recording links (tests/test_core_handlers.py) ------------


def core_conn(chat: Chat, nick: str, caps: str = "", account: str | None = None) -> tuple[Client, RecordingLink]:
    """A registered connection; account as if signed in with SASL before registering."""
    link = RecordingLink()
    client = chat.client(link, "127.0.0.1")
    client.set_caps(set(caps.split()))
    client.account = account
    dispatch(chat, client, parse_line(f"NICK {nick}"))
    dispatch(chat, client, parse_line(f"USER {nick} 0 * :{nick}"))
    return client, link


def lines(link: RecordingLink, command: str) -> list[Message]:
    return [m for m in link.sent if m.command == command]


def test_each_connection_gets_what_its_own_capabilities_ask_for() -> None:
    chat = Chat(ChatConfig())
    plain, plain_link = core_conn(chat, "alice", account="alice")
    notified, notified_link = core_conn(chat, "alice", "away-notify extended-join", account="alice")
    assert notified.registered and notified.member is plain.member and chat.hub.user_count() == 1
    bob, _ = core_conn(chat, "bob")
    dispatch(chat, bob, parse_line("AWAY :lunch"))
    assert [m.params for m in lines(notified_link, "AWAY")] == [("lunch",)]
    assert lines(plain_link, "AWAY") == []
    core_conn(chat, "carol")
    joins = [m.params for m in lines(notified_link, "JOIN") if m.source and m.source.startswith("carol!")]
    assert joins == [("#lobby", "*", "carol")]
    assert [m.params for m in lines(plain_link, "JOIN") if m.source and m.source.startswith("carol!")] == [("#lobby",)]


def test_kill_ends_every_connection_and_the_last_one_leaving_frees_the_nick() -> None:
    chat = Chat(ChatConfig(operators={}))
    first, first_link = core_conn(chat, "alice", account="alice")
    second, second_link = core_conn(chat, "alice", account="alice")
    user = chat.hub.find("alice")
    assert isinstance(user, SharedUser) and user.connections() == (first, second)
    user.kill("Killed by oper")
    assert first_link.killed == second_link.killed == "Killed by oper"
    assert chat.hub.leave(first) is None  # the user stays while the second remains
    left = chat.hub.leave(second)
    assert left is not None and left[0] is user and chat.hub.find("alice") is None
    # A connection signing in as the last one leaves finds the nick free, not a user being removed.
    assert chat.hub.attach(user, first) is None


# -- a real client: irssi signs in to an account whose user is online from a raw connection -----------------


def test_irssi_attaches_to_its_users_other_connection(make_server: Factory, tmp_path: Path) -> None:
    require("irssi", "tmux")
    server = make_server(**FAST)
    assert server.accounts is not None
    server.accounts.create("dana", hash_password("correct-horse-battery"))
    obs = guest(make_server, server, "obs")
    laptop = signed_in(make_server, server, "dana", "dana", password="correct-horse-battery")
    laptop.expect(r" 366 dana #lobby ")
    obs.expect(r":dana!\S+ JOIN #lobby")
    terminals = Terminals(tmp_path)
    try:
        home = tmp_path / "irssi-dana"
        home.mkdir()
        (home / "config").write_text(IRSSI_CONFIG.format(nick="dana", user="dana", queue_speed="200msec"))
        irssi = Terminal("irssi-dana", home, ["irssi", f"--home={home}", f"--config={home / 'config'}", "-n", "dana"],
                         stuck_on=("Remove unknown settings from config file",))
        terminals.started.append(irssi)
        host, port = server.address
        irssi.type_line("/network add -sasl_mechanism PLAIN -sasl_username dana "
                        "-sasl_password correct-horse-battery lobby")
        irssi.type_line(f"/server add -network lobby -notls {host} {port}")
        irssi.type_line("/connect lobby")
        irssi.wait_for(joined_room("irssi", "dana", "#lobby"))  # its own JOIN, as irssi shows it
        irssi.wait_for(r"@?obs")  # the names it was sent
        obs.never(r"JOIN")
        laptop.send("PRIVMSG #lobby :said on the laptop")
        obs.expect(r":dana!\S+ PRIVMSG #lobby :said on the laptop")
        irssi.wait_for(says("irssi", "dana", "said on the laptop"))
        irssi.type_line("typed in irssi")
        laptop.expect(r":dana!\S+ PRIVMSG #lobby :typed in irssi")
        obs.expect(r":dana!\S+ PRIVMSG #lobby :typed in irssi")
        obs.never(r"typed in irssi")
        irssi.type_line("/quit gone home")
        wait_until(lambda: len(server.sessions()) == 2)
        obs.never(r"QUIT")
        obs.send("PRIVMSG dana :still here?")
        laptop.expect(r":obs!\S+ PRIVMSG dana :still here\?")
    finally:
        terminals.stop_all()
