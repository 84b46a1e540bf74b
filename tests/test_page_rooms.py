"""Running a room from the page (issue 14) and multiline messages on it (issue 13).

Debian's Chromium driven by Playwright against the real bridge and chat server, in
the style of tests/test_page.py: waits are locators and expect(), never sleeps. A raw
IRC user (irc_user) checks what really went over the wire.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.ircclient import IrcClient
from tests.pagehelpers import IrcFactory, PageFactory, expect, joined, name_button, say
from tests.test_client import Tmux, lobby_connect, run

pytest_plugins = ["tests.webfixtures"]
pytestmark = pytest.mark.browser



def log(page: Any) -> Any:
    return page.locator("#messages")


def group(page: Any, title: str) -> Any:
    """One group of the user list (Operators, Voiced, Everyone else)."""
    return page.locator("#users").get_by_role("list", name=re.compile(f"^{title}"))


def in_dev(pages: list[tuple[Any, str]], raw: IrcClient) -> None:
    """alice makes #dev (she is its operator), the other pages and a raw IRC user join it."""
    (creator, _), *others = pages
    say(creator, "/join #dev")
    expect(log(creator)).to_contain_text("You created #dev")
    for page, _ in others:
        say(page, "/join #dev")
        expect(page.locator("#room-title")).to_have_text("#dev")
    raw.send("JOIN #dev")
    raw.expect(rf" 366 {raw.nick} #dev ")
    for page, _ in pages:
        expect(page.locator("#users")).to_contain_text(raw.nick)


def test_an_operator_kicks_and_bans_from_the_user_list_menu(new_page: PageFactory, irc_user: IrcFactory) -> None:
    alice, bob = new_page(), new_page()
    joined(alice, "alice")
    joined(bob, "bob")
    carol = irc_user("carol")
    in_dev([(alice, "alice"), (bob, "bob")], carol)

    # Ranks: the creator is the room's operator, shown first, with @.
    expect(group(alice, "Operators")).to_contain_text("@alice")
    expect(group(bob, "Operators")).to_contain_text("alice")
    expect(group(bob, "Everyone else")).to_contain_text("bob")
    expect(group(bob, "Everyone else")).to_contain_text("carol")

    # A non-operator's menu: talking only, and no room settings.
    name_button(bob, "alice").click()
    menu = bob.get_by_role("menu", name="Actions for alice")
    expect(menu.get_by_role("menuitem", name="Send a private message")).to_be_visible()
    expect(menu.get_by_role("menuitem", name="Mention")).to_be_visible()
    expect(menu.get_by_role("menuitem")).to_have_count(2)
    bob.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(bob.get_by_role("button", name="Room settings")).to_be_hidden()
    say(bob, "/kick alice")
    expect(log(bob)).to_contain_text("You need to be an operator of #dev to do that.")

    # The operator gives voice from the menu: everyone's list follows, with +.
    name_button(alice, "bob").click()
    alice.get_by_role("menu", name="Actions for bob").get_by_role("menuitem", name="Give voice").click()
    carol.expect(r":alice!\S+ MODE #dev \+v bob")
    expect(group(bob, "Voiced")).to_contain_text("+bob")
    expect(log(bob)).to_contain_text("alice gave you voice")
    expect(log(alice)).to_contain_text("You gave bob voice")

    # Kick, by keyboard: Enter on the name, arrows to the item, a reason in the dialog.
    name_button(alice, "bob").focus()
    alice.keyboard.press("Enter")
    menu = alice.get_by_role("menu", name="Actions for bob")
    expect(menu.get_by_role("menuitem", name="Send a private message")).to_be_focused()
    expect(menu.get_by_role("menuitem", name="Remove voice")).to_be_visible()
    alice.keyboard.press("End")
    alice.keyboard.press("ArrowUp")
    expect(menu.get_by_role("menuitem", name="Kick…")).to_be_focused()
    alice.keyboard.press("Enter")
    dialog = alice.get_by_role("dialog", name="Remove bob from #dev")
    dialog.get_by_label("Reason").fill("spamming")
    dialog.get_by_role("button", name="Kick").click()
    carol.expect(r":alice!\S+ KICK #dev bob :spamming")
    expect(log(bob)).to_contain_text("You were removed from #dev by alice: spamming")
    expect(log(alice)).to_contain_text("You removed bob: spamming")
    expect(alice.locator("#users")).not_to_contain_text("bob")

    # Back in, then banned: a ban and a kick; the banned page says so, and can't come back.
    say(bob, "/join #dev")
    expect(log(alice)).to_contain_text("bob joined")
    name_button(alice, "bob").click()
    alice.get_by_role("menu", name="Actions for bob").get_by_role("menuitem", name="Ban…").click()
    dialog = alice.get_by_role("dialog", name="Ban bob from #dev")
    dialog.get_by_label("Reason").fill("enough")
    dialog.get_by_label("Reason").press("Enter")
    carol.expect(r":alice!\S+ MODE #dev \+b bob!\*@\*")
    carol.expect(r":alice!\S+ KICK #dev bob :enough")
    expect(log(bob)).to_contain_text("You are banned from #dev by alice")
    expect(log(bob)).to_contain_text("You were removed from #dev by alice: enough")
    expect(log(alice)).to_contain_text("You banned bob")
    say(bob, "/join #dev")
    expect(log(bob)).to_contain_text("You are banned from #dev: you can't join it.")

    # The ban list in the settings panel, with its Unban button.
    alice.get_by_role("button", name="Room settings").click()
    settings = alice.get_by_role("dialog", name="Settings of #dev")
    expect(settings.locator("#ban-list")).to_contain_text("bob!*@*")
    settings.get_by_role("button", name="Unban bob").click()
    carol.expect(r":alice!\S+ MODE #dev -b bob!\*@\*")
    expect(settings.get_by_role("status").filter(has_text="Nobody is banned.")).to_be_visible()
    say(bob, "/join #dev")
    expect(log(alice)).to_contain_text("bob joined")
    assert alice.errors == [] and bob.errors == []


def test_an_operator_mutes_the_room_from_the_settings_panel(new_page: PageFactory, irc_user: IrcFactory) -> None:
    alice, bob = new_page(), new_page()
    joined(alice, "alice")
    joined(bob, "bob")
    carol = irc_user("carol")
    in_dev([(alice, "alice"), (bob, "bob")], carol)

    # /help shows the operator commands to the operator only.
    say(bob, "/help")
    expect(bob.locator(".help-card")).to_be_visible()
    expect(bob.locator(".help-card")).not_to_contain_text("/kick")
    say(alice, "/help")
    expect(alice.locator(".help-card")).to_contain_text("/kick NAME [REASON]")

    alice.get_by_role("button", name="Room settings").click()
    settings = alice.get_by_role("dialog", name="Settings of #dev")
    expect(settings.get_by_label(re.compile("Topic lock"))).to_be_checked()  # new rooms start +t
    moderated = settings.get_by_label(re.compile("Moderated:"))
    expect(moderated).not_to_be_checked()
    moderated.check()
    carol.expect(r":alice!\S+ MODE #dev \+m")
    expect(log(bob)).to_contain_text("alice set the room to moderated")
    expect(moderated).to_be_checked()
    # The modes for huge rooms, both ways.
    delayed = settings.get_by_label(re.compile("Delayed join:"))
    delayed.check()
    carol.expect(r":alice!\S+ MODE #dev \+D")
    expect(delayed).to_be_checked()
    auditorium = settings.get_by_label(re.compile("Auditorium:"))
    auditorium.check()
    carol.expect(r":alice!\S+ MODE #dev \+u")
    delayed.uncheck()
    carol.expect(r":alice!\S+ MODE #dev -D")
    auditorium.uncheck()
    carol.expect(r":alice!\S+ MODE #dev -u")
    expect(auditorium).not_to_be_checked()
    settings.get_by_role("button", name="Close the room settings").click()

    # The refusal is a sentence, and nothing went out.
    say(bob, "can I talk?")
    expect(log(bob)).to_contain_text("You can't speak in #dev: it is moderated")
    # A slash command gives voice; then bob speaks, and the raw user reads it.
    say(alice, "/voice bob")
    expect(log(bob)).to_contain_text("alice gave you voice")
    say(bob, "now I can")
    assert carol.expect(r":bob!\S+ PRIVMSG #dev :").params[-1] == "now I can"
    # /mute of a person, and /op: bob now sees the settings button.
    say(alice, "/mute bob")
    carol.expect(r":alice!\S+ MODE #dev \+q bob!\*@\*")
    expect(log(bob)).to_contain_text("alice muted you")
    say(alice, "/op bob")
    expect(log(bob)).to_contain_text("alice made you an operator")
    expect(bob.get_by_role("button", name="Room settings")).to_be_visible()
    expect(group(bob, "Operators")).to_contain_text("bob")
    # #lobby has no operator: there the button is gone, and it comes back in #dev.
    bob.locator("#buffers").get_by_role("button", name="#lobby").click()
    expect(bob.get_by_role("button", name="Room settings")).to_be_hidden()
    bob.locator("#buffers").get_by_role("button", name="#dev").click()
    expect(bob.get_by_role("button", name="Room settings")).to_be_visible()
    assert alice.errors == [] and bob.errors == []


def test_a_message_of_several_lines_is_one_message(new_page: PageFactory, irc_user: IrcFactory) -> None:
    carol = irc_user("carol")  # no draft/multiline: she gets the lines one by one
    alice, bob = new_page(), new_page()
    joined(alice, "alice")
    joined(bob, "bob")
    box = alice.locator("#message")
    box.fill("first line")
    box.press("Shift+Enter")
    box.press_sequentially("second line")
    box.press("Shift+Enter")
    box.press_sequentially("third line")
    box.press("Enter")
    for page in (bob, alice):  # alice's own echo too
        message = log(page).locator(".line.message.multiline")
        expect(message).to_have_count(1)
        expect(message.locator(".body")).to_have_text("alice: first line\nsecond line\nthird line")
        # innerText follows CSS: the breaks are shown (pre-wrap), not folded into spaces.
        lines = message.locator(".body").inner_text().split("\n")
        assert lines == ["alice: first line", "second line", "third line"]
    got = [carol.expect(r":alice!\S+ PRIVMSG #lobby :").params[-1] for _ in range(3)]
    assert got == ["first line", "second line", "third line"]
    assert alice.errors == [] and bob.errors == []


@pytest.fixture
def tmux(make_server: Any) -> Iterator[Tmux]:
    """A private tmux server for `lobby connect`, killed before the chat server stops."""
    t = Tmux()
    yield t
    t.kill()


def test_what_an_operator_does_on_the_page_reads_as_sentences_in_lobby_connect(
    new_page: PageFactory, chat_server: Any, tmux: Tmux
) -> None:
    """The page's operator kicks, bans and mutes the room; a `lobby connect` user in it reads each."""
    alice = new_page()
    joined(alice, "alice")
    say(alice, "/join #dev")
    expect(group(alice, "Operators")).to_contain_text("alice")
    tmux.start(lobby_connect(chat_server.address[1], "term"))
    tmux.wait_for(r"→ term joined #lobby$")
    run(tmux, "/join #dev")
    expect(log(alice)).to_contain_text("term joined")
    alice.get_by_role("button", name="Room settings").click()
    settings = alice.get_by_role("dialog", name="Settings of #dev")
    settings.get_by_label(re.compile("Moderated:")).check()
    tmux.wait_for(r"alice set #dev to moderated \(\+m\)")
    settings.get_by_role("button", name="Close the room settings").click()
    run(tmux, "can I talk?")
    tmux.wait_for(r"You can't speak in #dev: it is moderated")
    name_button(alice, "term").click()
    alice.get_by_role("menu", name="Actions for term").get_by_role("menuitem", name="Ban…").click()
    dialog = alice.get_by_role("dialog", name="Ban term from #dev")
    dialog.get_by_label("Reason").fill("spamming")
    dialog.get_by_role("button", name="Ban").click()
    tmux.wait_for(r"You were removed from #dev by alice \(spamming\)")
    run(tmux, "/join #dev")
    tmux.wait_for(r"You are banned from #dev")
    assert alice.errors == []


def test_a_message_taken_back_shows_as_deleted(new_page: PageFactory, irc_user: IrcFactory) -> None:
    """REDACT (draft/message-redaction): the page keeps the line's place and says it was deleted."""
    bob = irc_user("bob", caps="message-tags echo-message")
    page = new_page()
    joined(page, "alice")
    bob.send("PRIVMSG #lobby :my secret is hunter2")
    msgid = bob.expect(r"PRIVMSG #lobby :my secret").tags["msgid"]
    expect(log(page)).to_contain_text("my secret is hunter2")
    bob.send(f"REDACT #lobby {msgid}")
    bob.expect(rf"REDACT #lobby {msgid}")
    line = page.locator("#messages .line.redacted")
    expect(line).to_have_count(1)
    expect(line).to_contain_text("message deleted")
    expect(log(page)).not_to_contain_text("hunter2")
    assert page.errors == []
