"""A day on the page with the keyboard only, in Chromium.

No clicks: join, talk, make a room and switch between rooms and conversations
(Alt+↑/↓), open and close every dialog with Enter and Escape (focus going back to
what opened it), open a name's menu and start a private conversation from it, and
reach the "jump to latest" button after reading further up.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.pagehelpers import IrcFactory, PageFactory, expect, name_button

pytest_plugins = ["tests.webfixtures"]
pytestmark = pytest.mark.browser


def focused(locator: Any) -> bool:
    return bool(locator.evaluate("el => el === document.activeElement"))


def tab_to(page: Any, locator: Any, backwards: bool = False, limit: int = 40) -> None:
    """Press Tab (or Shift+Tab) until locator has focus, as someone without a mouse would."""
    for _ in range(limit):
        if locator.count() == 1 and focused(locator):
            return
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
    raise AssertionError(f"Tab never reached {locator}")


def type_line(page: Any, text: str) -> None:
    """Type into whatever has focus (the message box) and press Enter."""
    page.keyboard.type(text)
    page.keyboard.press("Enter")


def test_a_day_with_the_keyboard_only(new_page: PageFactory, irc_user: IrcFactory) -> None:
    carol = irc_user("carol")
    page = new_page()
    composer = page.locator("#message")

    # The name box has focus on load; Enter joins, and the message box takes focus.
    expect(page.locator("#name")).to_be_focused()
    page.keyboard.type("kim")
    page.keyboard.press("Enter")
    expect(page.locator("#status")).to_have_text("online")
    expect(composer).to_be_focused()
    expect(page.locator("#users")).to_contain_text("kim")  # in #lobby: a line typed before would stay in the box
    type_line(page, "hello from the keyboard")
    carol.expect(r":kim!\S+ PRIVMSG #lobby :hello from the keyboard")
    expect(page.locator("#messages")).to_contain_text("hello from the keyboard")

    # The skip link, first in the Tab order, leads back to the message box from anywhere.
    tab_to(page, page.locator(".skip-link"))
    expect(page.locator(".skip-link")).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(composer).to_be_focused()
    # /help lists the keys.
    type_line(page, "/help")
    expect(page.locator(".help-card")).to_contain_text("Alt+↑ and Alt+↓")

    # A room of our own (we run it), with carol in it.
    type_line(page, "/join #keys")
    expect(page.locator("#room-title")).to_have_text("#keys")
    carol.send("JOIN #keys")
    expect(name_button(page, "carol")).to_be_visible()

    # Each dialog: Enter on its button opens it, Escape closes it, focus goes back to the button.
    for opener, dialog in [
        ("#settings-button", "#settings"),
        ("#browse-rooms", "#room-browser"),
        ("#room-settings-button", "#room-settings"),
    ]:
        tab_to(page, page.locator(opener))
        page.keyboard.press("Enter")
        expect(page.locator(dialog)).to_be_visible()
        page.keyboard.press("Escape")
        expect(page.locator(dialog)).to_be_hidden()
        expect(page.locator(opener)).to_be_focused()

    # The room list joins with the keyboard: type a filter, Enter.
    tab_to(page, page.locator("#browse-rooms"))
    page.keyboard.press("Enter")
    expect(page.locator("#room-filter")).to_be_focused()
    expect(page.locator("#room-list")).to_contain_text("#lobby")
    page.keyboard.type("lobby")
    page.keyboard.press("Enter")
    expect(page.locator("#room-browser")).to_be_hidden()
    expect(page.locator("#room-title")).to_have_text("#lobby")
    expect(composer).to_be_focused()
    page.keyboard.press("Alt+ArrowDown")
    expect(page.locator("#room-title")).to_have_text("#keys")

    # A name's menu: Enter opens it on its first item, Escape gives focus back to the name.
    carol_button = name_button(page, "carol")
    tab_to(page, carol_button)
    page.keyboard.press("Enter")
    menu = page.locator("#name-menu")
    expect(menu.get_by_role("menuitem", name="Send a private message")).to_be_focused()
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(carol_button).to_be_focused()
    # Kick… asks for a reason in a dialog; Escape cancels it, and focus is back on the name.
    page.keyboard.press("Enter")
    page.keyboard.press("End")
    page.keyboard.press("ArrowUp")
    expect(menu.get_by_role("menuitem", name="Kick…")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#reason")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#reason-dialog")).to_be_hidden()
    expect(carol_button).to_be_focused()
    # Enter on "Send a private message" opens the conversation, ready to type in.
    page.keyboard.press("Enter")
    expect(menu.get_by_role("menuitem", name="Send a private message")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#room-title")).to_have_text("carol")
    expect(composer).to_be_focused()
    type_line(page, "just between us")
    carol.expect(r":kim!\S+ PRIVMSG carol :just between us")

    # Alt+↑/↓ walk the side list (rooms, then conversations), round, and leave the draft alone.
    page.keyboard.type("a draft")
    titles = []
    for key in ["Alt+ArrowUp", "Alt+ArrowUp", "Alt+ArrowUp", "Alt+ArrowDown"]:
        page.keyboard.press(key)
        titles.append(page.locator("#room-title").text_content())
    assert titles == ["#keys", "#lobby", "carol", "#lobby"]
    expect(composer).to_have_value("a draft")
    expect(composer).to_be_focused()
    composer.fill("")
    page.keyboard.press("Alt+ArrowDown")
    expect(page.locator("#room-title")).to_have_text("#keys")

    # Read further up (Home in the log) while lines arrive: the jump button is reached by Tab.
    for i in range(40):
        carol.send(f"PRIVMSG #keys :line {i}")
    expect(page.locator("#messages")).to_contain_text("line 39")
    log = page.locator("#messages")
    tab_to(page, log, backwards=True)
    assert log.evaluate("el => el.scrollHeight > el.clientHeight")  # there is somewhere to scroll
    page.keyboard.press("Home")
    expect(log.locator(".line").first).to_be_in_viewport()
    carol.send("PRIVMSG #keys :said while you read")
    jump = page.locator("#jump-latest")
    expect(jump).to_have_text("1 new message — jump to latest")
    tab_to(page, jump)
    page.keyboard.press("Enter")
    expect(jump).to_be_hidden()
    expect(log).to_be_focused()
    assert log.evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight < 80")
    assert page.errors == []
