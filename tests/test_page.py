"""The chat page end to end: Debian's Chromium (driven by Playwright), the real bridge and chat server.

Browser users and a terminal user (a raw IRC socket) share rooms. The page has
a strict CSP, so tests wait with locators and expect(), never with string
predicates evaluated in the page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from backend.irc import split_text
from backend.node import ChatServer
from bridge import config_for, create_app
from bridge.web import WebServer
from scripts.screenshot import mixed_conversation
from tests.ircclient import connect
from tests.pagehelpers import IrcFactory, PageFactory, expect, join, joined, say

pytest_plugins = ["tests.webfixtures"]
pytestmark = pytest.mark.browser

PALETTE = ["#e6194b", "#3cb44b", "#c9a100", "#4363d8", "#f58231", "#911eb4", "#0fa3b1", "#f032e6"]


def nick_color(nick: str) -> str:
    """The terminal client's nick colour, as the page must reproduce it."""
    h = 0
    for ch in nick.casefold():
        h = (h * 31 + ord(ch)) % 2**32
    return PALETTE[h % 8]


def rgb(hex_color: str) -> str:
    r, g, b = (int(hex_color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def messages(page: Any) -> Any:
    return page.locator("#messages")


def test_browsers_and_a_terminal_user_talk_in_one_room(new_page: PageFactory, irc_user: IrcFactory) -> None:
    carol = irc_user("carol")
    alice = new_page()

    # An impossible or taken name is explained in place, and the page asks again.
    join(alice, "1st")
    expect(alice.locator("#name-error")).to_contain_text("can't be used as a name")
    join(alice, "carol")
    expect(alice.locator("#name-error")).to_contain_text("taken")
    expect(alice.locator("#name")).to_be_focused()
    joined(alice, "alice")
    expect(alice.locator("#users")).to_contain_text("carol")
    carol.expect(r":alice!\S+ JOIN #lobby")

    bob = new_page()
    joined(bob, "bob")
    expect(alice.locator("#users")).to_contain_text("bob")
    carol.expect(r":bob!\S+ JOIN #lobby")
    expect(messages(alice)).to_contain_text("bob joined")

    # Messages flow every way.
    say(alice, "hello from alice")
    expect(messages(bob)).to_contain_text("hello from alice")
    assert carol.expect(r"PRIVMSG #lobby").params == ("#lobby", "hello from alice")
    say(bob, "hi, bob here")
    expect(messages(alice)).to_contain_text("hi, bob here")
    assert carol.expect(r"PRIVMSG #lobby").params == ("#lobby", "hi, bob here")
    carol.send("PRIVMSG #lobby :carol on the terminal, hey bob")
    expect(messages(alice)).to_contain_text("carol on the terminal")
    expect(bob.locator(".line.mention")).to_contain_text("hey bob")  # bob's name is highlighted for bob
    expect(alice.locator(".line.mention")).to_have_count(0)

    # Own lines are distinct, and come from the server's echo (one each, not two).
    expect(alice.locator(".line.self")).to_have_count(1)
    expect(alice.locator(".line.self")).to_contain_text("hello from alice")
    expect(alice.locator(".line .time").first).to_have_text(re.compile(r"\d"))

    say(alice, "/me waves")
    assert carol.expect(r"PRIVMSG #lobby").params == ("#lobby", "\x01ACTION waves\x01")
    expect(bob.locator(".line.action")).to_contain_text("* alice waves")

    # Nick colours are the terminal client's.
    for nick in ("alice", "bob", "carol"):
        name = bob.locator("#users .nick", has_text=re.compile(f"^{nick}$"))
        assert name.evaluate("el => getComputedStyle(el).color") == rgb(nick_color(nick))

    # Long input goes as several PRIVMSGs, split like protocol.split_text splits.
    long_text = " ".join(f"wörd{i}" for i in range(220))
    say(alice, long_text)
    pieces = [carol.expect(r"PRIVMSG #lobby :wörd").params[1] for _ in split_text(long_text, 400)]
    assert pieces == split_text(long_text, 400)
    assert all(len(p.encode()) <= 400 for p in pieces)

    # The user list follows quits: a closed tab at once, a terminal user's QUIT too.
    bob.context.close()
    expect(alice.locator("#users")).not_to_contain_text("bob")
    expect(messages(alice)).to_contain_text("bob quit")
    carol.expect(r":bob!\S+ QUIT")
    carol.send("QUIT :bye now")
    expect(alice.locator("#users")).not_to_contain_text("carol")
    expect(messages(alice)).to_contain_text("carol quit (Quit: bye now)")
    assert alice.errors == []


def test_html_and_script_payloads_are_shown_as_text(new_page: PageFactory, irc_user: IrcFactory) -> None:
    carol = irc_user("carol")
    page = new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    joined(page, "alice")
    payloads = [
        '<img src=x onerror="alert(1)">',
        "<script>alert(2)</script>",
        '"><svg onload=alert(3)>',
        "javascript:alert(4)",
        "&lt;b&gt;not bold&lt;/b&gt;",
    ]
    for payload in payloads:
        carol.send(f"PRIVMSG #lobby :{payload}")
    carol.send("TOPIC #lobby :<b>topic</b><img src=x onerror=alert(5)>")
    carol.send("PRIVMSG #lobby :docs at https://example.com/wiki/A_(b). and ftp://example.com/x")
    expect(messages(page)).to_contain_text("docs at")
    for payload in payloads:
        expect(messages(page)).to_contain_text(payload)
    expect(page.locator("#topic")).to_have_text("<b>topic</b><img src=x onerror=alert(5)>")
    say(page, "<i>mine</i>")
    assert carol.expect(r"PRIVMSG #lobby :<i>").params[1] == "<i>mine</i>"
    expect(messages(page)).to_contain_text("<i>mine</i>")
    expect(page.locator("#messages img, #messages script, #messages svg, #messages b, #messages i, #topic *")) \
        .to_have_count(0)

    # Only the http(s) URL became a link, built safely.
    links = page.locator("#messages a")
    expect(links).to_have_count(1)
    expect(links).to_have_attribute("href", "https://example.com/wiki/A_(b)")
    expect(links).to_have_attribute("rel", "noopener noreferrer")
    expect(links).to_have_attribute("target", "_blank")
    assert dialogs == []
    assert page.errors == []


def test_the_page_reconnects_and_rejoins_after_a_server_restart(
    new_page: PageFactory, chat_server: ChatServer, make_server: Callable[..., ChatServer], web_app: Flask
) -> None:
    page = new_page()
    joined(page, "alice")
    say(page, "/join #side")
    expect(page.locator("#room-title")).to_have_text("#side")
    port = chat_server.address[1]

    chat_server.stop()
    expect(page.locator("#status")).to_contain_text("reconnecting…")
    expect(messages(page)).to_contain_text("Reconnecting")
    say(page, "typed while offline")
    expect(page.locator(".line.error").last).to_contain_text("your text is kept")
    expect(page.locator("#message")).to_have_value("typed while offline")
    restarted = make_server(port=port, webirc_password=chat_server.config.webirc_password)
    web_app.config["LOBBY_HUB"] = restarted.hub

    expect(page.locator("#status")).to_have_text("online", timeout=30_000)
    expect(messages(page)).to_contain_text("You rejoined #side")
    expect(page.locator("#room-title")).to_have_text("#side")  # still where the user was
    dave = connect(restarted.address, "dave")
    make_server.clients.append(dave)  # type: ignore[attr-defined]
    dave.send("JOIN #side")
    names = dave.expect(r" 353 \S+ = #side ")
    assert "alice" in [name.lstrip("@+") for name in names.params[-1].split()]  # she made #side: its operator
    expect(messages(page)).to_contain_text("dave joined")
    page.locator("#message").press("Enter")  # the kept text goes now
    assert dave.expect(r"PRIVMSG #side").params == ("#side", "typed while offline")
    say(page, "back again")
    assert dave.expect(r"PRIVMSG #side").params == ("#side", "back again")
    assert page.errors == []


def test_commands_title_and_remembered_name(new_page: PageFactory, irc_user: IrcFactory) -> None:
    carol = irc_user("carol")
    page = new_page()
    joined(page, "alice")

    # Tab completes a name; Up brings back what was sent.
    page.locator("#message").fill("ca")
    page.locator("#message").press("Tab")
    expect(page.locator("#message")).to_have_value("carol: ")
    page.locator("#message").press_sequentially("ready?")
    page.locator("#message").press("Enter")
    assert carol.expect(r"PRIVMSG #lobby").params == ("#lobby", "carol: ready?")
    expect(page.locator("#message")).to_have_value("")
    page.locator("#message").press("ArrowUp")
    expect(page.locator("#message")).to_have_value("carol: ready?")
    page.locator("#message").fill("")

    say(page, "/help")
    expect(messages(page)).to_contain_text("/msg NAME TEXT")
    say(page, "/frobnicate")
    expect(page.locator(".line.error")).to_contain_text("Unknown command /frobnicate. Type /help")
    expect(page.locator("#message")).to_have_value("/frobnicate")  # kept, to be put right

    say(page, "/topic Plans for today")
    assert carol.expect(r" TOPIC #lobby").params == ("#lobby", "Plans for today")
    expect(page.locator("#topic")).to_have_text("Plans for today")

    say(page, "/nick alicia")
    carol.expect(r":alice!\S+ NICK :?alicia")
    expect(page.locator("#users .self")).to_contain_text("alicia")

    say(page, "/who")
    expect(messages(page)).to_contain_text("carol — carol@127.0.0.1")

    say(page, "/msg carol psst")
    assert carol.expect(r"PRIVMSG carol").params == ("carol", "psst")
    expect(page.locator("#room-title")).to_have_text("carol")
    carol.send("PRIVMSG alicia :what's up?")
    expect(messages(page)).to_contain_text("what's up?")

    say(page, "/join side")
    expect(page.locator("#room-title")).to_have_text("#side")
    expect(page.locator("#buffers")).to_contain_text("#side")
    say(page, "/part")
    expect(page.locator("#buffers")).not_to_contain_text("#side")

    # While the tab is hidden, unread messages show in its title.
    page.locator("#buffers button", has_text="#lobby").click()
    page.evaluate("""() => {
        Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    carol.send("PRIVMSG #lobby :one")
    carol.send("PRIVMSG #lobby :two, alicia")
    expect(page).to_have_title("(2!) Lobby")
    page.evaluate("""() => {
        Object.defineProperty(document, "hidden", {configurable: true, get: () => false});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    expect(page).to_have_title("Lobby")

    say(page, "/quit see you")
    assert carol.expect(r":alicia!\S+ QUIT").params[0].endswith("see you")
    expect(page.locator("#status")).to_have_text("offline")
    expect(page.locator("#name")).to_have_value("alicia")  # ready to come back
    page.locator("#name").press("Enter")
    expect(page.locator("#status")).to_have_text("online")
    carol.expect(r":alicia!\S+ JOIN #lobby")

    # The name is remembered for next time.
    page.reload()
    expect(page.locator("#name")).to_have_value("alicia")
    assert page.errors == []


def test_a_line_with_nowhere_to_go_stays_in_the_box(new_page: PageFactory, irc_user: IrcFactory) -> None:
    carol = irc_user("carol")
    page = new_page()
    joined(page, "alice")
    say(page, "/part")
    carol.expect(r":alice!\S+ PART #lobby")
    expect(page.locator("#buffers")).not_to_contain_text("#lobby")
    expect(page.locator("#room-title")).to_have_text("No room open")
    expect(page.locator("#users")).not_to_contain_text("carol")

    say(page, "anyone here?")
    expect(page.locator(".line.error").last).to_contain_text("Join a room first")
    expect(page.locator("#message")).to_have_value("anyone here?")

    say(page, "/join #lobby")
    carol.expect(r":alice!\S+ JOIN #lobby")
    expect(page.locator("#room-title")).to_have_text("#lobby")
    say(page, "back")
    carol.expect(r":alice!\S+ PRIVMSG #lobby :back")
    # The page sends in order: a line sent while in no room would have come first.
    assert not any("anyone here?" in line for line in carol.seen)
    assert page.errors == []


def test_phone_sized_dark_layout(new_page: PageFactory, irc_user: IrcFactory) -> None:
    irc_user("carol")
    page = new_page(viewport={"width": 390, "height": 760}, color_scheme="dark", is_mobile=True, has_touch=True)
    expect(page.locator("label[for=name]")).to_be_visible()
    joined(page, "alice")
    background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(20, 22, 27)"
    assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    expect(page.locator("#message")).to_be_visible()
    expect(page.locator("#users")).to_be_hidden()
    page.locator("#people-toggle").click()
    expect(page.locator("#users")).to_be_visible()
    expect(page.locator("#users")).to_contain_text("carol")
    page.keyboard.press("Escape")
    expect(page.locator("#users")).to_be_hidden()
    expect(page.locator("#people-toggle")).to_be_focused()
    expect(page.locator("#messages")).to_have_attribute("aria-live", "polite")
    assert page.errors == []


def test_the_mixed_conversation_of_the_screenshot_renders(new_page: PageFactory, irc_user: IrcFactory) -> None:
    """What scripts/screenshot.py photographs for the README; the test only looks, it writes no file."""
    bob = mixed_conversation(new_page, irc_user)
    shown = messages(bob)
    for text in ("build is green", "who is presenting", "raises a hand", "slides.pdf", "привет всем",
                 "dave quit (Quit: lunch)", "<b>tags</b> show up as plain text"):
        expect(shown).to_contain_text(text)
    expect(bob.locator("#topic")).to_contain_text("Friday demo")
    assert len(bob.screenshot(animations="disabled")) > 10_000  # bytes in memory: nothing is written
    assert bob.errors == []


def test_a_server_password_is_asked_for_in_place(
    new_page: PageFactory, make_server: Callable[..., ChatServer]
) -> None:
    locked = make_server(password="open sesame", webirc_password="bridge-secret")
    site = WebServer(create_app(config_for(locked)), "127.0.0.1", 0)
    site.start()
    try:
        page = new_page()
        page.goto(site.url)
        join(page, "alice")
        expect(page.locator("#name-error")).to_contain_text("needs a password")
        expect(page.locator("#password")).to_be_focused()
        expect(page.locator("#status")).to_have_text("offline")  # no retry loop against a refusal
        page.locator("#password").fill("wrong")
        page.locator("#password").press("Enter")
        expect(page.locator("#name-error")).to_contain_text("not right")
        page.locator("#password").fill("open sesame")
        page.locator("#password").press("Enter")
        expect(page.locator("#status")).to_have_text("online")
        expect(page.locator("#users")).to_contain_text("alice")
        assert page.evaluate("() => JSON.stringify(localStorage)").find("sesame") < 0
        page.context.close()
    finally:
        site.stop()


LINES = [
    "PRIVMSG #a :hello world",
    ":nick!u@h PRIVMSG #a :hello :colon",
    "@time=2024-01-01T00:00:00.000Z;msgid=abc;+draft/x=a\\sb\\:c\\\\ :n!u@h PRIVMSG #a :x",
    "PING token",
    ":srv 353 me = #a :alice bob",
    "cmd  a   b  :trail  x",
    "NICK :",
    "@a;b= :s CMD",
    ":src 001 me",
    "@k=v\\q\\ :s privmsg #x :€ and 日本",
]
MESSAGES: list[dict[str, Any]] = [
    {"command": "PRIVMSG", "params": ["#a", "hello world"]},
    {"command": "PRIVMSG", "params": ["#a", ":starts with a colon"]},
    {"command": "PRIVMSG", "params": ["#a", ""]},
    {"command": "NICK", "params": ["Вася"]},
    {"command": "TAGMSG", "params": ["#a"], "tags": {"+typing": "active", "x": "a b;c"}, "source": "n!u@h"},
]
SPLITS = [("a" * 1000, 400), (" ".join(["word"] * 300), 400), ("€" * 300, 400), ("Вася " * 120, 391),
          ("👋" * 200, 400), ("short", 400), ("", 400)]
NICKS = ["alice", "bob", "carol", "Вася", "Zoë", "[bot]", "x_Y-z", "ÆSIR", "日本"]
NAMES = ["alice", "Вася", "1abc", "-x", "a b", "a" * 30, "a" * 31, "ab|c", "日本語", "a.b", "", "_x", "x9"]


def test_irc_js_mirrors_protocol_py_and_the_terminal_colours(new_page: PageFactory) -> None:
    from backend.irc import Message, is_valid_nick, parse_line

    page = new_page()
    got = page.evaluate(
        """async ([lines, messages, splits, nicks, names]) => {
            const irc = await import("/static/irc.js");
            const colors = await import("/static/colors.js");
            return {
                parsed: lines.map((line) => irc.parseLine(line)),
                formatted: messages.map((m) => irc.formatMessage(m)),
                splits: splits.map(([text, max]) => irc.splitText(text, max)),
                colors: nicks.map((nick) => colors.nickColor(nick)),
                valid: names.map((name) => irc.isValidNick(name)),
            };
        }""",
        [LINES, MESSAGES, SPLITS, NICKS, NAMES],
    )
    for line, js in zip(LINES, got["parsed"], strict=True):
        py = parse_line(line)
        assert (js["command"], js["params"], js["source"], js["tags"]) == \
            (py.command, list(py.params), py.source, py.tags), line
    for m, js in zip(MESSAGES, got["formatted"], strict=True):
        py = Message(m["command"], tuple(m["params"]), m.get("source"), m.get("tags", {}))
        assert js == py.format()
    for (text, limit), js in zip(SPLITS, got["splits"], strict=True):
        assert js == split_text(text, limit), (text[:20], limit)
    assert got["colors"] == [nick_color(nick) for nick in NICKS]
    assert got["valid"] == [is_valid_nick(name) for name in NAMES]


def test_the_page_ignores_what_it_does_not_know(new_page: PageFactory) -> None:
    """History batches, CHATHISTORY replies and commands from the future must not break it."""
    page = new_page()
    feed = [
        ":tester!t@h JOIN #lobby",
        "BATCH +h1 chathistory #lobby",
        "@batch=h1;time=2024-05-01T10:00:00.000Z;msgid=m1 :old!o@h PRIVMSG #lobby :from history",
        "BATCH -h1",
        "@msgid=m1 :old!o@h PRIVMSG #lobby :from history",
        ":srv CHATHISTORY TARGETS #lobby 2024-05-01T10:00:00.000Z",
        "FROBNICATE a b c",
        ":srv 999 tester :something new",
        ":srv 005 tester CHATHISTORY=100 :are supported by this server",
        ":old!o@h PRIVMSG #lobby :\x01VERSION\x01",
        ":old!o@h PRIVMSG #lobby :after all that",
    ]
    text = page.evaluate(
        """async (feed) => {
            const { parseLine } = await import("/static/irc.js");
            const { Chat } = await import("/static/chat.js");
            const { View } = await import("/static/view.js");
            const conn = { nick: "tester", caps: new Set(["echo-message"]), isOpen: false, registered: true,
                           send: () => false };
            const chat = new Chat(conn, new View(document), document);
            for (const line of feed) chat.handle(parseLine(line));
            return document.getElementById("messages").textContent;
        }""",
        feed,
    )
    assert text.count("from history") == 1
    assert "after all that" in text
    assert "VERSION" not in text
    assert page.errors == []


def test_joining_while_the_chat_server_is_down_says_so_and_keeps_trying(
    new_page: PageFactory, chat_server: ChatServer, make_server: Callable[..., ChatServer], web_app: Flask
) -> None:
    port = chat_server.address[1]
    chat_server.stop()
    page = new_page()
    join(page, "early")
    expect(page.locator("#name-error")).to_contain_text("The chat server is not reachable")
    expect(page.locator("#status")).to_contain_text("reconnecting…")
    restarted = make_server(port=port, webirc_password=chat_server.config.webirc_password)
    web_app.config["LOBBY_HUB"] = restarted.hub
    expect(page.locator("#status")).to_have_text("online", timeout=30_000)
    expect(page.locator("#users")).to_contain_text("early")
    assert page.errors == []
