"""What the page tests share: factory types, the phone layout, and the steps every test takes.

Chromium is driven by Playwright; waits are locators and expect(), never sleeps.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.ircclient import IrcClient

PageFactory = Callable[..., Any]
IrcFactory = Callable[..., IrcClient]
PHONE = {"viewport": {"width": 390, "height": 760}, "color_scheme": "dark", "is_mobile": True, "has_touch": True}


def expect(target: Any) -> Any:
    """Playwright's expect, imported when a browser test runs (webfixtures skips them without it)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def join(page: Any, name: str) -> None:
    """Type a name on the join form and press Enter."""
    page.locator("#name").fill(name)
    page.locator("#name").press("Enter")


def joined(page: Any, name: str) -> None:
    """Join, and wait until the page is online with the name in the user list."""
    join(page, name)
    expect(page.locator("#status")).to_have_text("online")
    expect(page.locator("#users")).to_contain_text(name)


def back_in(page: Any, name: str) -> None:
    """After a reload (same tab): a guest is back in by itself under the same name, no form (signin.js)."""
    expect(page.locator("#status")).to_have_text("online")
    expect(page.locator("#join")).to_be_hidden()
    expect(page.locator("#users")).to_contain_text(name)


def say(page: Any, text: str) -> None:
    """Type a line in the composer and send it."""
    page.locator("#message").fill(text)
    page.locator("#message").press("Enter")


def name_button(page: Any, nick: str) -> Any:
    """A person's button in the user list (its name starts with the nick)."""
    return page.locator("#users").get_by_role("button", name=re.compile(f"^{re.escape(nick)}\\b"))


def say_all(user: IrcClient, texts: list[str], room: str = "#lobby") -> None:
    """A raw user says every text at once; returns once the server has handled (and stored) them all."""
    user.send_raw(b"".join(f"PRIVMSG {room} :{text}\r\n".encode() for text in texts))
    user.sync()
