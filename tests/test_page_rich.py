"""Rich messages on the page (#18), in Debian's Chromium: replies, reactions, typing notices,
search, and emoji, between two browsers and raw IRC clients.

The chat server keeps its history in a SQLite file (reactions come back from it, search runs
on it); flood control is off so that a raw user can say many lines at once. Waiting is done
with locators and expect(); a raw client's negative checks end with a PING (never()).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backend.node import ChatServer
from tests.pagehelpers import IrcFactory, PageFactory, back_in, expect, joined, say, say_all

pytest_plugins = ["tests.webfixtures"]
pytestmark = pytest.mark.browser

HOSTILE = '<img src=x onerror="window.hacked=1"><script>window.hacked=2</script>'


@pytest.fixture
def chat_server(make_server: Callable[..., ChatServer], tmp_path: Path) -> ChatServer:
    """The webfixtures chat server, with history in a file and no flood control."""
    return make_server(webirc_password=secrets.token_urlsafe(18), db_path=str(tmp_path / "lobby.db"), flood=False)


def message(page: Any, text: str) -> Any:
    """The message line of the open conversation that says text (not one that quotes it)."""
    return page.locator("#messages li.line").filter(has=page.locator(":scope > .body > .text", has_text=text))


def platform_fonts(page: Any, selector: str) -> list[dict[str, Any]]:
    """The fonts Chromium drew an element's text with (over the DevTools protocol)."""
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        fonts: list[dict[str, Any]] = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
        return fonts
    finally:
        cdp.detach()


def untouched(page: Any) -> None:
    """No markup from user text ran or was made: no images, no script effects, no page errors."""
    assert page.evaluate("window.hacked") is None
    assert page.locator("#messages img, #search-results img, #messages script").count() == 0
    assert page.errors == []


def test_a_reply_quotes_its_parent_in_the_other_browser_and_jumps_to_it(
    new_page: PageFactory, irc_user: IrcFactory
) -> None:
    plain = irc_user("plain")
    tagged = irc_user("tagged", caps="message-tags")
    alice = new_page()
    joined(alice, "alice")
    bob = new_page()
    joined(bob, "bob")
    say(alice, f"{HOSTILE} the original question")
    parent = message(bob, "the original question")
    expect(parent).to_be_visible()
    parent.hover()
    parent.get_by_role("button", name="Reply to alice").click()
    chip = bob.locator("#reply-chip")
    expect(chip).to_contain_text("Replying to alice: <img src=x")
    expect(bob.locator("#message")).to_be_focused()
    # Escape cancels; the keyboard brings it back (Tab into the line's actions).
    bob.locator("#message").press("Escape")
    expect(chip).to_be_hidden()
    parent.get_by_role("button", name="Reply to alice").focus()
    bob.keyboard.press("Enter")
    expect(chip).to_be_visible()
    say(bob, "the answer")
    expect(chip).to_be_hidden()

    reply = message(alice, "the answer")
    quote = reply.locator(".reply-quote")
    expect(quote).to_contain_text("alice")
    expect(quote).to_contain_text("<img src=x onerror=")
    expect(quote).to_have_attribute("aria-label", re.compile(r"^In reply to alice: <img"))
    parent_id = message(alice, "the original question").get_attribute("data-msgid")
    assert parent_id

    # A plain client sees the line as it is; a message-tags client gets the tag too.
    line = plain.lines_until(r"PRIVMSG #lobby :the answer")[-1]
    assert not line.startswith("@"), line
    got = tagged.expect(r"PRIVMSG #lobby :the answer")
    assert got.tags.get("+draft/reply") == parent_id

    # After a reload the reply still quotes its parent (the tag is kept in history).
    alice.reload()
    back_in(alice, "alice")
    expect(quote).to_contain_text("<script>window.hacked=2</script> the origin")

    # The quote goes to the parent: scrolled to, highlighted a moment, focused.
    alice.locator("#messages").evaluate("el => { el.scrollTop = el.scrollHeight; }")
    quote.click()
    parent_line = message(alice, "the original question")
    expect(parent_line).to_be_focused()
    untouched(alice)
    untouched(bob)


def test_a_reply_to_a_line_not_loaded_fetches_the_history_around_it(
    new_page: PageFactory, irc_user: IrcFactory
) -> None:
    carol = irc_user("carol", caps="message-tags echo-message")
    carol.send("PRIVMSG #lobby :the long-ago question")
    parent_id = carol.expect(r"PRIVMSG #lobby :the long-ago question").tags["msgid"]
    say_all(carol, [f"filler {n}" for n in range(120)])
    page = new_page()
    joined(page, "alice")
    expect(page.locator("#messages")).to_contain_text("filler 119")
    carol.send(f"@+draft/reply={parent_id} PRIVMSG #lobby :the late answer")
    quote = message(page, "the late answer").locator(".reply-quote")
    expect(quote).to_have_text(re.compile("original message not loaded"))
    quote.click()
    parent = message(page, "the long-ago question")
    expect(parent).to_be_focused()
    expect(page.locator("#messages")).to_contain_text("messages in between not loaded")
    # Now that the parent is here, the reply quotes it.
    expect(quote).to_contain_text("carol the long-ago question")
    assert page.errors == []


def chip(page: Any, text: str, emoji: str) -> Any:
    return message(page, text).locator(".reaction", has_text=emoji)


def test_reactions_show_with_counts_in_both_browsers_toggle_and_come_back_from_history(
    new_page: PageFactory, irc_user: IrcFactory
) -> None:
    tagged = irc_user("tagged", caps="message-tags")
    alice = new_page()
    joined(alice, "alice")
    bob = new_page()
    joined(bob, "bob")
    say(alice, "react to me")
    line = message(bob, "react to me")
    line.hover()
    line.get_by_role("button", name="React to alice’s message").click()
    picker = bob.locator("#emoji-grid")
    expect(picker).to_be_visible()
    expect(picker).to_have_attribute("aria-label", "React to alice’s message")
    picker.get_by_role("menuitem", name="thumbsup").click()
    expect(picker).to_be_hidden()
    for page in (alice, bob):
        expect(chip(page, "react to me", "👍")).to_have_attribute("aria-label", "👍 1: bob")
    expect(chip(bob, "react to me", "👍")).to_have_attribute("aria-pressed", "true")
    expect(chip(alice, "react to me", "👍")).to_have_attribute("aria-pressed", "false")
    got = tagged.expect(r"\+draft/react=\S* :bob!\S+ TAGMSG #lobby")
    assert got.tags["+draft/react"] == "👍"
    assert got.tags["+draft/reply"] == message(alice, "react to me").get_attribute("data-msgid")

    # A chip adds ours; pressed again it takes it back.
    chip(alice, "react to me", "👍").click()
    for page in (alice, bob):
        expect(chip(page, "react to me", "👍")).to_have_attribute("aria-label", "👍 2: bob, alice")
    chip(bob, "react to me", "👍").click()
    for page in (alice, bob):
        expect(chip(page, "react to me", "👍")).to_have_attribute("aria-label", "👍 1: alice")
    # With the keyboard: ↑ in the log reaches the line, Tab its buttons; the picker opens on
    # Enter, arrows move, Enter picks.
    bob.locator("#messages").focus()
    bob.keyboard.press("ArrowUp")
    expect(message(bob, "react to me")).to_be_focused()
    react = bob.get_by_role("button", name="React to alice’s message")
    for _ in range(4):
        if react.evaluate("el => el === document.activeElement"):
            break
        bob.keyboard.press("Tab")
    expect(react).to_be_focused()
    bob.keyboard.press("Enter")
    expect(picker).to_be_visible()
    bob.keyboard.press("ArrowRight")
    bob.keyboard.press("Enter")
    expect(chip(alice, "react to me", "❤️")).to_have_attribute("aria-label", "❤️ 1: bob")

    # A hostile reaction is text on its chip.
    target = message(alice, "react to me").get_attribute("data-msgid")
    tagged.send(f"@+draft/react=<img\\ssrc=x\\sonerror=window.hacked=1>;+draft/reply={target} TAGMSG #lobby")
    hostile = chip(alice, "react to me", "<img src=x")
    expect(hostile).to_have_attribute("aria-label", re.compile(r"^<img src=x .* 1: tagged$"))
    untouched(alice)

    # A page opened later, and one reloaded, get them from history, counted as they stand.
    carol = new_page()
    joined(carol, "carol")
    expect(chip(carol, "react to me", "👍")).to_have_attribute("aria-label", "👍 1: alice")
    expect(chip(carol, "react to me", "❤️")).to_have_attribute("aria-label", "❤️ 1: bob")
    alice.reload()
    back_in(alice, "alice")
    expect(chip(alice, "react to me", "👍")).to_have_attribute("aria-label", "👍 1: alice")
    expect(chip(alice, "react to me", "👍")).to_have_attribute("aria-pressed", "true")
    expect(chip(alice, "react to me", "❤️")).to_have_attribute("aria-label", "❤️ 1: bob")
    for page in (alice, bob, carol):
        assert page.errors == []


def test_typing_shows_in_the_other_browser_ends_on_send_and_can_be_switched_off(
    new_page: PageFactory, irc_user: IrcFactory
) -> None:
    watcher = irc_user("watcher", caps="message-tags")
    alice = new_page()
    joined(alice, "alice")
    bob = new_page()
    joined(bob, "bob")
    alice.locator("#message").press_sequentially("hello th")
    expect(bob.locator("#typing")).to_have_text("alice is typing…")
    expect(bob.locator("#typing")).to_have_attribute("aria-live", "polite")
    bob.locator("#message").press_sequentially("me too")
    expect(alice.locator("#typing")).to_have_text("bob is typing…")
    alice.locator("#message").press("Enter")
    expect(bob.locator("#typing")).to_have_text("")
    said = watcher.lines_until(r"PRIVMSG #lobby :hello th")
    typing = [line for line in said if "+typing" in line and "alice!" in line]
    assert typing and "+typing=active" in typing[0], typing
    assert len([line for line in typing if "+typing=active" in line]) == 1  # at most one per 3 s
    watcher.expect(r"\+typing=done\S* :?alice!\S+ TAGMSG #lobby")

    # Settings: "Let others see when I am typing" off. Nothing goes out, before or after sending.
    alice.locator("#settings-button").click()
    alice.get_by_label("Let others see when I am typing").uncheck()
    alice.keyboard.press("Escape")
    expect(alice.locator("#settings")).to_be_hidden()
    alice.locator("#message").press_sequentially("a secret draft")
    alice.locator("#message").press("Enter")
    before = watcher.lines_until(r"PRIVMSG #lobby :a secret draft")
    assert not [line for line in before if "+typing" in line and "alice!" in line], before
    watcher.never(r"alice!\S+ TAGMSG")
    expect(bob.locator("#typing")).to_have_text("")
    assert alice.errors == [] and bob.errors == []


def set_typing_times(page: Any, **times: int) -> None:
    """Shorten the page's typing timers (typing.js TYPING), so that a test waits on events, not seconds."""
    page.evaluate("async (times) => Object.assign((await import('/static/typing.js')).TYPING, times)", times)


def test_typing_pauses_and_expires_as_the_spec_says(new_page: PageFactory, irc_user: IrcFactory) -> None:
    watcher = irc_user("watcher", caps="message-tags")
    alice = new_page()
    joined(alice, "alice")
    bob = new_page()
    joined(bob, "bob")
    set_typing_times(alice, pauseMs=200)
    alice.locator("#message").press_sequentially("thinking")
    watcher.expect(r"\+typing=active\S* :alice!\S+ TAGMSG #lobby")
    expect(bob.locator("#typing")).to_have_text("alice is typing…")
    # No key for a while, text still there: "paused" (still shown, for longer).
    watcher.expect(r"\+typing=paused\S* :alice!\S+ TAGMSG #lobby")
    expect(bob.locator("#typing")).to_have_text("alice is typing…")
    # A notice not renewed expires; clearing the box says "done".
    set_typing_times(bob, activeExpiryMs=2000, pausedExpiryMs=2000)
    watcher.send("@+typing=active TAGMSG #lobby")
    expect(bob.locator("#typing")).to_have_text("alice and watcher are typing…")
    expect(bob.locator("#typing")).to_have_text("alice is typing…")
    alice.locator("#message").fill("")
    watcher.expect(r"\+typing=done\S* :alice!\S+ TAGMSG #lobby")
    expect(bob.locator("#typing")).to_have_text("")
    # A /command being typed is not a message: no notice for it.
    alice.locator("#message").press_sequentially("/join #elsewhere")
    alice.locator("#message").fill("")
    watcher.never(r"alice!\S+ TAGMSG")
    assert alice.errors == [] and bob.errors == []


def test_search_finds_a_line_and_jumps_to_it_in_its_room(new_page: PageFactory, irc_user: IrcFactory) -> None:
    carol = irc_user("carol", caps="message-tags")
    say_all(carol, [f"{HOSTILE} the zebra crossing at noon", *[f"filler {n}" for n in range(80)]])
    page = new_page()
    joined(page, "alice")
    expect(page.locator("#messages")).to_contain_text("filler 79")
    page.locator("#messages").focus()
    page.keyboard.press("Control+K")
    dialog = page.locator("#search")
    expect(dialog).to_be_visible()
    expect(page.locator("#search-input")).to_be_focused()
    expect(page.locator("#search-hints")).to_contain_text("from:")
    page.locator("#search-input").fill("zebra from:carol")
    page.locator("#search-input").press("Enter")
    result = page.locator("#search-results .search-result")
    expect(result).to_have_count(1)
    expect(result).to_contain_text("#lobby")
    expect(result).to_contain_text("carol")
    expect(result.locator("mark")).to_have_text("zebra")
    expect(result.locator(".search-text")).to_contain_text('<img src=x onerror="window.hacked=1">')
    expect(page.locator("#search-status")).to_contain_text("1 message found")
    result.click()
    expect(dialog).to_be_hidden()
    found = message(page, "the zebra crossing at noon")
    expect(found).to_be_focused()
    untouched(page)

    # A refusal is told in the panel; /search runs from the message box.
    say(page, "/search zebra in:#nowhere")
    expect(dialog).to_be_visible()
    expect(page.locator("#search-status")).to_contain_text(re.compile(r"\S"))
    expect(page.locator("#search-status")).to_have_attribute("data-kind", "error")
    expect(result).to_have_count(0)
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.locator("#messages").focus()
    page.keyboard.press("/")
    expect(dialog).to_be_visible()
    assert page.errors == []


def test_emoji_completion_and_picker_insert_emoji_in_a_bundled_colour_font(
    new_page: PageFactory, irc_user: IrcFactory
) -> None:
    watcher = irc_user("watcher")
    page = new_page()
    joined(page, "alice")
    box = page.locator("#message")
    box.press_sequentially("well :thumbs")
    listbox = page.get_by_role("listbox", name="Emoji matching what you typed")
    expect(listbox).to_be_visible()
    expect(listbox.get_by_role("option").first).to_contain_text(":thumbsup:")
    expect(box).to_have_attribute("aria-activedescendant", "emoji-option-0")
    box.press("ArrowDown")
    expect(box).to_have_attribute("aria-activedescendant", "emoji-option-1")
    box.press("ArrowUp")
    box.press("Enter")  # picks, doesn't send
    expect(listbox).to_be_hidden()
    expect(box).to_have_value("well 👍 ")
    box.press_sequentially(":tada: and :smi")
    expect(listbox).to_be_visible()
    box.press("Escape")
    expect(listbox).to_be_hidden()
    expect(box).to_have_value("well 👍 🎉 and :smi")
    box.press_sequentially("le")
    box.press("Tab")
    expect(box).to_have_value("well 👍 🎉 and 😄 ")
    # The picker: Insert emoji, arrows, Enter.
    page.get_by_role("button", name="Insert emoji").click()
    grid = page.get_by_role("menu", name="Insert emoji")
    expect(grid).to_be_visible()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    expect(grid).to_be_hidden()
    expect(box).to_have_value("well 👍 🎉 and 😄 😂")
    expect(box).to_be_focused()
    box.press("Enter")
    watcher.expect(r"PRIVMSG #lobby :well 👍 🎉 and 😄 😂$")
    expect(page.locator("#messages li.line.self .text")).to_have_text("well 👍 🎉 and 😄 😂")

    # No emoji font on this machine's list is needed: the page's own draws them in colour.
    colours = page.evaluate("""async () => {
        await document.fonts.load('32px "Lobby Emoji"', "😄");
        const canvas = document.createElement("canvas");
        canvas.width = canvas.height = 48;
        const ctx = canvas.getContext("2d");
        ctx.font = '32px "Lobby Emoji"';
        ctx.textBaseline = "top";
        ctx.fillText("😄", 4, 4);
        const data = ctx.getImageData(0, 0, 48, 48).data;
        let coloured = 0;
        for (let i = 0; i < data.length; i += 4) {
            const [r, g, b, a] = data.slice(i, i + 4);
            if (a > 200 && Math.max(r, g, b) - Math.min(r, g, b) > 60) coloured += 1;
        }
        return { loaded: document.fonts.check('32px "Lobby Emoji"', "😄"), coloured };
    }""")
    assert colours["loaded"], colours
    assert colours["coloured"] > 50, colours
    family = page.locator(".emoji-button").evaluate("el => getComputedStyle(el).fontFamily")
    assert "Lobby Emoji" in family
    # What Chromium drew the sent line and the buttons with: an emoji font (this machine's or
    # the bundled one), never only a text font's empty box.
    for selector in ["#messages li.line.self .text", "#attach", "#emoji-button"]:
        fonts = platform_fonts(page, selector)
        assert any("Emoji" in font["familyName"] for font in fonts), (selector, fonts)
    assert page.errors == []
