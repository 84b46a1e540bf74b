"""Real IRC clients as users: irssi 1.4 and WeeChat 3.8 in tmux, next to raw sockets, browsers and `lobby connect`.

Every assertion is on what a person sees on the client's screen (or on what a raw
IRC user receives from it). The clients run with their defaults, as people have
them: irssi asks only for `server-time` and shows the time a line arrived
(`show_server_time` off); WeeChat asks for `server-time` and `message-tags`.
Outside CI the tests skip when irssi, WeeChat or tmux is missing; on CI they fail.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from backend.node import ChatServer
from tests.ircclient import IrcClient, connect
from tests.realclients import IRSSI_CONFIG, Terminal, Terminals, compact

pytest_plugins = ["tests.webfixtures"]

ServerFactory = Callable[..., ChatServer]

# What a client shows when the server answers something it does (or does not) do.
ERRORS = [
    r"Unknown MODE flag",
    r"Unknown mode",
    r"No topic is set",  # irssi, for a 331 (RPL_NOTOPIC)
    r"No topic set for",  # WeeChat, for a 331
    r"Unknown command",
    r"\b421\b",
    r"\b501\b",
    r"Not enough parameters",
]
# irssi's and WeeChat's way of showing bob's line: "12:00:00 < bob> hi" / "12:00:00 bob | hi".
IRSSI_SAYS = r"<[ @+]?{nick}> {text}"
WEECHAT_SAYS = r"[@+]?{nick} \| {text}"


@pytest.fixture
def terminals(tmp_path: Path) -> Iterator[Terminals]:
    """terminals(kind, nick, address): irssi, weechat or lobby in tmux; all killed after the test, pass or fail."""
    started = Terminals(tmp_path)
    yield started
    started.stop_all()


def raw_user(make_server: ServerFactory, server: ChatServer, nick: str) -> IrcClient:
    """A raw-socket IRC user of server, closed at teardown by make_server."""
    user = connect(server.address, nick)
    make_server.clients.append(user)  # type: ignore[attr-defined]
    return user


def says(kind: str, nick: str, text: str) -> str:
    """The regex for nick's line as kind shows it."""
    form = IRSSI_SAYS if kind == "irssi" else WEECHAT_SAYS
    return form.format(nick=re.escape(nick), text=re.escape(text))


def chat_text(line: str) -> str:
    """A screen line without WeeChat's buffer list and nick list beside it."""
    parts = line.split("│")
    return (parts[1] if len(parts) > 1 else line).strip()


def errors_on(screen: str) -> list[str]:
    """The lines of screen that show an error from the server."""
    return [chat_text(line) for line in screen.splitlines() if any(re.search(e, line) for e in ERRORS)]


def show_window(kind: str, client: Terminal, number: int, expected: str) -> str:
    """Switch to window/buffer number and wait until expected is on screen; return the screen."""
    client.type_line(f"/window {number}" if kind == "irssi" else f"/buffer {number}")
    return client.wait_for(expected)


def joined_room(kind: str, nick: str, room: str) -> str:
    """How kind shows that nick joined room."""
    if kind == "irssi":
        return rf"{re.escape(nick)} \[\S+\] has joined {re.escape(room)}"
    # WeeChat with extended-join shows the real name too: "alice (Alice) (alice@host) has joined".
    return rf"{re.escape(nick)} (?:\([^)]*\) )?\(\S+\) has joined {re.escape(room)}"


# -- 1, 2: a raw IRC user and the real client talk; /join, /msg, /part ---------------------


@pytest.mark.parametrize("kind", ["irssi", "weechat"])
def test_client_talks_joins_messages_and_parts(kind: str, make_server: ServerFactory, terminals: Terminals) -> None:
    server = make_server()
    bob = raw_user(make_server, server, "bob")
    alice = terminals(kind, "alice", server.address)

    # Put in #lobby by the server, in a window of its own.
    bob.expect(r":alice!\S+ JOIN #lobby")
    alice.wait_for(joined_room(kind, "alice", "#lobby"))
    bob.send("PRIVMSG #lobby :hi alice, bob here")
    alice.wait_for(says(kind, "bob", "hi alice, bob here"))
    alice.type_line("hello bob, this is alice")
    assert bob.expect(r"PRIVMSG #lobby").params == ("#lobby", "hello bob, this is alice")
    alice.wait_for(says(kind, "alice", "hello bob, this is alice"))

    # /join a room someone is in; talk there.
    bob.send("JOIN #dev")
    bob.expect(r" 366 bob #dev ")
    alice.type_line("/join #dev")
    bob.expect(r":alice!\S+ JOIN #dev")
    alice.wait_for(joined_room(kind, "alice", "#dev"))
    bob.send("PRIVMSG #dev :welcome to dev")
    alice.wait_for(says(kind, "bob", "welcome to dev"))
    alice.type_line("glad to be here")
    assert bob.expect(r"PRIVMSG #dev").params == ("#dev", "glad to be here")

    # /msg opens a private conversation; the answer shows there.
    alice.type_line("/msg bob just between us")
    assert bob.expect(r"PRIVMSG bob ").params == ("bob", "just between us")
    bob.send("PRIVMSG alice :sure, privately")
    if kind == "weechat":  # WeeChat opens the private buffer for the answer; go to it
        alice.wait_for(r"\d+\.\s*bob")
        alice.type_line("/buffer bob")
    alice.wait_for(says(kind, "bob", "sure, privately"))

    # /part leaves, and the other member sees it.
    alice.type_line("/part #dev")
    bob.expect(r":alice!\S+ PART #dev")
    alice.type_line("/window goto #lobby" if kind == "irssi" else "/buffer #lobby")
    bob.send("NAMES #dev")
    assert "alice" not in bob.expect(r" 353 bob \S #dev ").params[-1].split()
    bob.send("PRIVMSG #lobby :still here?")
    alice.wait_for(says(kind, "bob", "still here?"))


# -- 3: with a browser user, through the bridge -------------------------------------------


def page_expect(target: Any) -> Any:
    from playwright.sync_api import expect

    return expect(target)


def page_say(page: Any, text: str) -> None:
    page.locator("#message").fill(text)
    page.locator("#message").press("Enter")


@pytest.mark.browser
def test_irssi_weechat_and_a_browser_user_talk_in_the_lobby(
    chat_server: ChatServer, new_page: Callable[..., Any], terminals: Terminals
) -> None:
    alice = terminals("irssi", "alice", chat_server.address)
    carol = terminals("weechat", "carol", chat_server.address)
    alice.wait_for(joined_room("irssi", "alice", "#lobby"))
    carol.wait_for(joined_room("weechat", "carol", "#lobby"))

    page = new_page()
    page.locator("#name").fill("dora")
    page.locator("#name").press("Enter")
    page_expect(page.locator("#status")).to_have_text("online")
    page_expect(page.locator("#users")).to_contain_text("alice")
    page_expect(page.locator("#users")).to_contain_text("carol")
    alice.wait_for(joined_room("irssi", "dora", "#lobby"))
    carol.wait_for(joined_room("weechat", "dora", "#lobby"))

    page_say(page, "hello from the browser")
    alice.wait_for(says("irssi", "dora", "hello from the browser"))
    carol.wait_for(says("weechat", "dora", "hello from the browser"))
    alice.type_line("irssi here, hi dora")
    page_expect(page.locator("#messages")).to_contain_text("irssi here, hi dora")
    carol.wait_for(says("weechat", "alice", "irssi here, hi dora"))
    carol.type_line("weechat here, hi both")
    page_expect(page.locator("#messages")).to_contain_text("weechat here, hi both")
    alice.wait_for(says("irssi", "carol", "weechat here, hi both"))
    page_expect(page.locator(".line.mention")).to_contain_text("hi dora")  # dora's name is highlighted for her
    assert page.errors == []


# -- 4: nothing the clients do on their own is answered with an error ---------------------

# When a client has had every answer to what it asks on joining a room (irssi: MODE #room,
# WHO #room, MODE #room b, after MODE nick +i at sign-on; WeeChat: MODE #room).
ROOM_SYNCED = {"irssi": r"Join to {room} was synced", "weechat": r"Channel created on"}
WHOIS_END = {"irssi": r"End of WHOIS", "weechat": r"End of /WHOIS"}
STATUS_WINDOW = {"irssi": r"Capabilities acknowledged", "weechat": r"client capability, enabled"}


@pytest.mark.parametrize("kind", ["irssi", "weechat"])
def test_client_screens_show_no_errors(kind: str, make_server: ServerFactory, terminals: Terminals) -> None:
    server = make_server()
    bob = raw_user(make_server, server, "bob")
    alice = terminals(kind, "alice", server.address)
    bob.expect(r":alice!\S+ JOIN #lobby")
    alice.wait_for(ROOM_SYNCED[kind].format(room="#lobby"))
    alice.type_line("/join #dev")  # a new room: no topic, alice its first member
    alice.wait_for(joined_room(kind, "alice", "#dev"))
    screens = {"#dev": alice.wait_for(ROOM_SYNCED[kind].format(room="#dev"))}
    alice.type_line("/whois bob")
    screens["status"] = show_window(kind, alice, 1, WHOIS_END[kind])
    assert re.search(STATUS_WINDOW[kind], screens["status"]), compact(screens["status"])
    screens["#lobby"] = show_window(kind, alice, 2, joined_room(kind, "alice", "#lobby"))

    found = {name: errors_on(screen) for name, screen in screens.items() if errors_on(screen)}
    assert not found, f"{kind} shows errors from the server: {found}; screens:\n" + "\n\n".join(
        f"[{name}]\n{compact(screens[name])}" for name in found)


# -- 5: history replay is never mistaken for live lines -----------------------------------

EARLIER = ["first of the earlier lines", "second of the earlier lines"]
REPLAY_MARKER = re.compile(r"(?i)recent messages|earlier|history|replay|playback")
STAMP = re.compile(r"\b(\d\d):(\d\d):(\d\d)\b")


def seconds_of_day(stamp: re.Match[str]) -> int:
    return int(stamp[1]) * 3600 + int(stamp[2]) * 60 + int(stamp[3])


def shows_as_replayed(screen: str, text: str, said: float, joined: float) -> str | None:
    """None when the line with text is marked as history; else why it looks live.

    Marked means one of: it is shown with the time it was said (not the time it
    arrived), its text carries its original time in brackets, or a notice above it
    (after the join) says that what follows is history.
    """
    lines = screen.splitlines()
    found = [i for i, line in enumerate(lines) if text in line]
    if not found:
        return f"{text!r} is not on screen"
    index = found[0]
    line = lines[index]
    stamp = STAMP.search(line)
    said_at = time.strftime("%H:%M", time.gmtime(said))
    if stamp and seconds_of_day(stamp) < int(joined) % 86400 and seconds_of_day(stamp) <= int(said) % 86400 + 1:
        return None  # shown with its original time
    if re.search(r"\[(\d{4}-\d\d-\d\d )?" + re.escape(said_at) + r"(:\d\d)?\]", line):
        return None  # its original time in the text
    join_line = max((i for i, ln in enumerate(lines[:index]) if "has joined" in ln), default=-1)
    if any(REPLAY_MARKER.search(ln) for ln in lines[join_line + 1:index]):
        return None  # announced as history
    return f"shown as if just said: {line.strip()!r} (said at {time.strftime('%H:%M:%S', time.gmtime(said))} UTC, " \
           f"joined at {time.strftime('%H:%M:%S', time.gmtime(joined))} UTC)"


@pytest.mark.parametrize("kind", ["irssi", "weechat"])
def test_replayed_history_never_looks_live(kind: str, make_server: ServerFactory, terminals: Terminals) -> None:
    server = make_server()
    bob = raw_user(make_server, server, "bob")
    said = time.time()
    for text in EARLIER:
        bob.send(f"PRIVMSG #lobby :{text}")
    bob.sync()  # both lines handled (and stored) by now
    while time.time() < said + 3:  # a few seconds, so that "said" and "arrived" differ on screen
        time.sleep(0.1)

    joined = time.time()
    alice = terminals(kind, "alice", server.address)
    bob.expect(r":alice!\S+ JOIN #lobby")
    alice.wait_for(joined_room(kind, "alice", "#lobby"))
    bob.send("PRIVMSG #lobby :a live line")
    screen = alice.wait_for(says(kind, "bob", "a live line"))
    assert all(text in screen for text in EARLIER), f"{kind} shows no replayed history:\n{compact(screen)}"
    live = STAMP.search(next(line for line in screen.splitlines() if "a live line" in line))
    assert live and seconds_of_day(live) >= int(joined) % 86400, f"the live line has no time of its own:\n{screen}"
    problems = [p for text in EARLIER if (p := shows_as_replayed(screen, text, said, joined))]
    assert not problems, f"{kind}: {problems}; screen:\n{compact(screen)}"


# -- 6: the project's own terminal client and irssi ---------------------------------------


def test_lobby_connect_and_irssi_talk(make_server: ServerFactory, terminals: Terminals) -> None:
    server = make_server()
    erin = terminals("lobby", "erin", server.address)
    erin.wait_for(r"erin joined #lobby")
    alice = terminals("irssi", "alice", server.address)
    alice.wait_for(joined_room("irssi", "alice", "#lobby"))
    erin.wait_for(r"alice joined #lobby")

    erin.type_line("hi alice, erin on lobby connect")
    alice.wait_for(says("irssi", "erin", "hi alice, erin on lobby connect"))
    alice.type_line("hi erin, alice on irssi")
    erin.wait_for(r"alice: hi erin, alice on irssi")

    alice.type_line("/msg erin a private word")
    erin.wait_for(r"a private word")
    erin.type_line("/msg alice and one back")
    alice.wait_for(says("irssi", "erin", "and one back"))
    erin.type_line("/quit bye")
    alice.wait_for(r"erin \[\S+\] has quit")


# -- 7: irssi runs a room it created: /op, /kick, /ban ------------------------------------

# What irssi shows for a server's refusal of something it asked (482, 441, 478 and the like).
REFUSALS = [r"not a channel operator", r"aren't on that channel", r"No such", r"Cannot", r"\b4\d\d\b"]


def test_irssi_ops_kicks_and_bans_in_a_room_it_created(make_server: ServerFactory, terminals: Terminals) -> None:
    server = make_server()
    bob = raw_user(make_server, server, "bob")
    alice = terminals("irssi", "alice", server.address)
    bob.expect(r":alice!\S+ JOIN #lobby")
    alice.type_line("/join #dev")  # a new room: alice, its creator, is its operator
    alice.wait_for(ROOM_SYNCED["irssi"].format(room="#dev"))
    bob.send("JOIN #dev")
    bob.expect(r" 366 bob #dev ")
    alice.wait_for(joined_room("irssi", "bob", "#dev"))

    alice.type_line("/op bob")
    bob.expect(r":alice!\S+ MODE #dev \+o bob$")
    alice.wait_for(r"mode/#dev \[\+o bob\] by alice")
    alice.type_line("/deop bob")
    bob.expect(r":alice!\S+ MODE #dev -o bob$")
    alice.type_line("/ban bob")  # irssi makes the mask from what it knows of bob (WHO on join)
    ban = bob.expect(r":alice!\S+ MODE #dev \+b ")
    assert re.fullmatch(r"\*!\S+@\S+", ban.params[2]), ban.params
    alice.type_line("/kick bob enough for today")
    bob.expect(r":alice!\S+ KICK #dev bob :enough for today$")
    screen = alice.wait_for(r"bob was kicked from #dev by alice \[enough for today\]")
    bob.send("JOIN #dev")
    bob.expect(r" 474 bob #dev ")
    bob.send("PRIVMSG #dev :let me back in")
    bob.expect(r" 404 bob #dev ")

    found = [chat_text(line) for line in screen.splitlines()
             if any(re.search(e, line) for e in ERRORS + REFUSALS)]
    assert not found, f"irssi shows errors from the server: {found}; screen:\n{compact(screen)}"


def test_irssi_signs_in_to_an_account_with_sasl(make_server: ServerFactory, terminals: Terminals) -> None:
    """An account made with REGISTER; irssi signs in with its own /network add -sasl_* options."""
    server = make_server()
    maker = raw_user(make_server, server, "maker")
    maker.send("REGISTER alice * :correct-horse-battery")
    maker.expect(r"REGISTER SUCCESS alice ")
    maker.send("QUIT")
    maker.expect_closed()
    home = terminals.root / "irssi-sasl"
    home.mkdir(parents=True)
    (home / "config").write_text(IRSSI_CONFIG.format(nick="alice", user="alice", queue_speed="200msec"))
    alice = Terminal("irssi-sasl", home, ["irssi", f"--home={home}", f"--config={home / 'config'}", "-n", "alice"],
                     stuck_on=("Remove unknown settings from config file",))
    terminals.started.append(alice)
    host, port = server.address
    alice.type_line("/network add -sasl_mechanism PLAIN -sasl_username alice "
                    "-sasl_password correct-horse-battery lobby")
    alice.type_line(f"/server add -network lobby -notls {host} {port}")
    alice.type_line("/connect lobby")
    alice.wait_for(joined_room("irssi", "alice", "#lobby"))
    alice.type_line("/window 1")
    alice.wait_for(r"You are now logged in as alice")
    bob = raw_user(make_server, server, "bob")
    bob.send("WHOIS alice")
    bob.expect(r" 330 bob alice alice ")
