"""Regenerate docs/screenshot.png: browsers and terminal users in one mixed conversation.

    python scripts/screenshot.py [--out docs/screenshot.png]
    python scripts/screenshot.py --phone [--out docs/screenshot-phone.png]

--phone photographs bob's page as a phone shows it (390x844, dark theme).

It starts a chat server and the web app on free loopback ports (as the tests'
fixtures do), drives Debian's headless Chromium through Playwright, writes the
picture of bob's page, and stops everything. The test suite plays the same
conversation (mixed_conversation) to check it renders, but never writes the file.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a file: make backend and bridge importable from a checkout
    sys.path.insert(0, str(ROOT))

from backend.node import ChatServer, ServerConfig  # noqa: E402
from bridge import config_for, create_app  # noqa: E402
from bridge.web import WebServer  # noqa: E402

CHROMIUM = os.environ.get("LOBBY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DEFAULT_OUT = ROOT / "docs" / "screenshot.png"
PHONE_OUT = ROOT / "docs" / "screenshot-phone.png"
DESKTOP: dict[str, Any] = {"viewport": {"width": 1100, "height": 640}}
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844}, "color_scheme": "dark", "is_mobile": True, "has_touch": True,
}
TIMEOUT = 10.0


class TerminalUser(Protocol):
    """A raw IRC connection: all the conversation needs of a terminal user."""

    def send(self, line: str) -> None:
        """Send one line (CRLF added)."""
        ...


def mixed_conversation(new_page: Callable[..., Any], irc_user: Callable[[str], TerminalUser],
                       bob_options: dict[str, Any] | None = None) -> Any:
    """Two browsers and three terminal users talk in #lobby; return bob's page, ready to photograph.

    new_page(**context_options) opens the chat page; irc_user(nick) is a registered raw IRC user;
    bob_options are bob's context options (by default a 1100x640 desktop window).
    Every step waits until the page shows it, so the result is the same each time.
    """
    from playwright.sync_api import expect

    def say(page: Any, text: str) -> None:
        page.locator("#message").fill(text)
        page.locator("#message").press("Enter")

    def joined(page: Any, name: str) -> None:
        page.locator("#name").fill(name)
        page.locator("#name").press("Enter")
        expect(page.locator("#status")).to_have_text("online")
        expect(page.locator("#users")).to_contain_text(name)

    carol = irc_user("carol")
    carol.send("TOPIC #lobby :Friday demo — notes at https://example.com/demo")
    alice = new_page()
    joined(alice, "alice")
    bob = new_page(**(bob_options or DESKTOP))
    joined(bob, "bob")
    vasya = irc_user("Вася")
    carol.send("PRIVMSG #lobby :morning all! the build is green again")
    expect(bob.locator("#messages")).to_contain_text("build is green")
    say(alice, "nice! who is presenting at the demo?")
    expect(bob.locator("#messages")).to_contain_text("who is presenting")
    say(bob, "/me raises a hand")
    expect(alice.locator("#messages")).to_contain_text("raises a hand")
    carol.send("PRIVMSG #lobby :bob, can you share the slides first?")
    say(bob, "sure: https://example.com/slides.pdf")
    expect(alice.locator("#messages")).to_contain_text("slides.pdf")
    vasya.send("PRIVMSG #lobby :привет всем, I'm on the terminal client")
    expect(bob.locator("#messages")).to_contain_text("привет")
    dave = irc_user("dave")
    dave.send("QUIT :lunch")
    expect(bob.locator("#messages")).to_contain_text("dave quit (Quit: lunch)")
    say(alice, "<b>tags</b> show up as plain text, as they should")
    expect(bob.locator("#messages")).to_contain_text("as they should")
    bob.locator("#message").blur()
    return bob


class RawUser:
    """A terminal user as a bare socket: registers, then sends lines; reads only to register."""

    def __init__(self, address: tuple[str, int], nick: str) -> None:
        self.sock = socket.create_connection(address, timeout=TIMEOUT)
        self.send(f"NICK {nick}")
        self.send(f"USER u 0 * :{nick}")
        seen, deadline = b"", time.monotonic() + TIMEOUT
        while not re.search(rb"^\S+ 001 ", seen, re.M):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{nick} did not register: {seen[-300:]!r}")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError(f"{nick} was disconnected: {seen[-300:]!r}")
            seen += chunk

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode("utf-8") + b"\r\n")

    def close(self) -> None:
        self.sock.close()


def take(out: Path, bob_options: dict[str, Any] | None = None) -> int:
    """Play the conversation and write the screenshot of bob's page to out; return its size in bytes."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)
    chat = ChatServer(ServerConfig(host="127.0.0.1", port=0, webirc_password=secrets.token_urlsafe(18)))
    chat.start()
    web = WebServer(create_app(config_for(chat)), "127.0.0.1", 0)
    users: list[RawUser] = []
    try:
        web.start()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            contexts: list[Any] = []

            def new_page(**context_options: Any) -> Any:
                context_options.setdefault("viewport", {"width": 1100, "height": 700})
                context = browser.new_context(**context_options)
                context.set_default_timeout(15_000)
                contexts.append(context)
                page = context.new_page()
                page.goto(web.url)
                return page

            def irc_user(nick: str) -> RawUser:
                users.append(RawUser(chat.address, nick))
                return users[-1]

            try:
                png = mixed_conversation(new_page, irc_user, bob_options).screenshot(animations="disabled")
            finally:
                for context in contexts:
                    with contextlib.suppress(Exception):
                        context.close()
                browser.close()
    finally:
        for user in users:
            user.close()
        web.stop()
        chat.stop()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(png)
    return len(png)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the README's screenshot of the chat page.")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"where to write it (default {DEFAULT_OUT}, or {PHONE_OUT} with --phone)")
    parser.add_argument("--phone", action="store_true", help="a phone's view: 390x844, dark theme")
    args = parser.parse_args(argv)
    out = args.out or (PHONE_OUT if args.phone else DEFAULT_OUT)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing (apt-get install chromium, or set LOBBY_CHROMIUM)", file=sys.stderr)
        return 1
    size = take(out, PHONE if args.phone else None)
    print(f"wrote {out} ({size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
