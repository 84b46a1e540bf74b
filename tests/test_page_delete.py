"""Deleting a message on the page (#18, draft/message-redaction): the line's Delete action, its
confirmation, what the other browser shows, who is offered it, and an upload going with its message.

Debian's Chromium driven by Playwright against the real bridge and chat server (history in a
SQLite file, uploads in tmp_path); waits are locators and expect(), never sleeps.
"""

from __future__ import annotations

import re
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backend.node import ChatServer
from tests.ircclient import IrcClient
from tests.pagehelpers import IrcFactory, PageFactory, back_in, expect, joined, say
from tests.test_page_uploads import png, thumbnail

pytest_plugins = ["tests.webfixtures"]
pytestmark = pytest.mark.browser

REDACTION = "message-tags echo-message draft/message-redaction"


@pytest.fixture
def chat_server(make_server: Callable[..., ChatServer], tmp_path: Path) -> ChatServer:
    """The chat server with history in a file (REDACT needs it) and uploads on."""
    return make_server(webirc_password=secrets.token_urlsafe(18), db_path=str(tmp_path / "lobby.db"),
                       files_dir=str(tmp_path / "files"), flood=False)


def message(page: Any, text: str) -> Any:
    """The message line of the open conversation that says text."""
    return page.locator("#messages li.line").filter(has=page.locator(":scope > .body > .text", has_text=text))


def delete_button(line: Any) -> Any:
    return line.get_by_role("button", name="Delete message")


def in_dev(page: Any) -> None:
    say(page, "/join #dev")
    expect(page.locator("#room-title")).to_have_text("#dev")


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return err.code


def test_deleting_your_own_message_with_the_mouse_and_the_keyboard(new_page: PageFactory,
                                                                   irc_user: IrcFactory) -> None:
    watcher: IrcClient = irc_user("watcher", caps=REDACTION)  # in #lobby, where everyone starts
    alice, bob = new_page(), new_page()
    joined(alice, "alice")
    joined(bob, "bob")
    for text in ("before it all", "first oops", "second oops", "after it all"):
        say(alice, text)
        expect(message(bob, text)).to_be_visible()

    # The mouse: Delete on the hovered line asks first; Escape leaves the line as it was.
    first = message(alice, "first oops")
    first.hover()
    delete_button(first).click()
    dialog = alice.get_by_role("dialog", name="Delete your message?")
    expect(dialog).to_be_visible()
    expect(alice.locator("#reason")).to_be_focused()
    alice.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(delete_button(first)).to_be_focused()  # focus is back in the line
    watcher.sync()
    expect(message(bob, "first oops")).to_be_visible()
    first.hover()
    delete_button(first).click()
    expect(dialog).to_be_visible()
    alice.locator("#reason").press("Enter")
    gone = watcher.expect(r":alice!\S+ REDACT #lobby \S+$")
    expect(bob.locator("#messages li.line.redacted")).to_have_text(re.compile("message deleted"))
    expect(message(bob, "first oops")).to_have_count(0)
    expect(alice.locator("#messages li.line.redacted")).to_contain_text("You deleted this message")

    # The keyboard: ↑ to the line, Tab to its Delete, Enter; a reason typed, Enter again.
    second = message(alice, "second oops")
    alice.locator("#messages").focus()
    alice.keyboard.press("ArrowUp")
    alice.keyboard.press("ArrowUp")
    expect(second).to_be_focused()
    for _ in range(4):
        alice.keyboard.press("Tab")
        if alice.evaluate("document.activeElement.getAttribute('aria-label')") == "Delete message":
            break
    expect(delete_button(second)).to_be_focused()
    alice.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    alice.keyboard.type("typo")
    alice.keyboard.press("Enter")
    got = watcher.expect(r":alice!\S+ REDACT #lobby ")
    assert got.params[2:] == ("typo",) and got.params[1] != gone.params[1]
    expect(bob.locator("#messages li.line.redacted")).to_have_count(2)
    expect(alice.locator("#messages li.line.redacted").nth(1)).to_be_focused()  # focus stays on the line

    # After a reload the messages are gone from the history; the lines around them are there.
    bob.reload()
    back_in(bob, "bob")
    expect(message(bob, "after it all")).to_be_visible()
    expect(message(bob, "before it all")).to_be_visible()
    expect(bob.locator("#messages")).not_to_contain_text("oops")
    watcher.sync()
    assert alice.errors == [] and bob.errors == []


def test_an_operator_deletes_anyones_message_and_others_only_their_own(new_page: PageFactory) -> None:
    alice, bob = new_page(), new_page()
    joined(alice, "alice")
    joined(bob, "bob")
    in_dev(alice)  # the room's creator is its operator
    in_dev(bob)
    say(alice, "the operator speaks")
    say(bob, "bob says something rude")
    say(bob, "bob says something else")
    expect(message(alice, "bob says something else")).to_be_visible()

    # bob is no operator: no Delete on alice's line (nor in the Tab order), Delete on his own.
    theirs = message(bob, "the operator speaks")
    theirs.hover()
    expect(theirs.get_by_role("button", name="Reply to alice")).to_be_visible()
    expect(delete_button(theirs)).to_be_hidden()
    mine = message(bob, "bob says something rude")
    mine.hover()
    expect(delete_button(mine)).to_be_visible()

    # alice, the operator, deletes bob's line.
    line = message(alice, "bob says something rude")
    line.hover()
    delete_button(line).click()
    dialog = alice.get_by_role("dialog", name="Delete bob’s message?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Delete").click()
    expect(bob.locator("#messages li.line.redacted")).to_have_text(re.compile("message deleted"))
    expect(message(bob, "bob says something rude")).to_have_count(0)

    # Deleted meanwhile by its author: the operator's REDACT is refused, and the page says why.
    other = message(alice, "bob says something else")
    other.hover()
    delete_button(other).click()
    expect(dialog).to_be_visible()
    mine = message(bob, "bob says something else")
    mine.hover()
    delete_button(mine).click()
    bob.get_by_role("dialog", name="Delete your message?").get_by_role("button", name="Delete").click()
    expect(alice.locator("#messages li.line.redacted")).to_have_count(2)
    dialog.get_by_role("button", name="Delete").click()
    expect(alice.locator("#messages li.line.error").last).to_contain_text("The message wasn't deleted")
    assert alice.errors == [] and bob.errors == []


def test_deleting_an_uploaded_images_message_deletes_the_image(new_page: PageFactory, web: Any,
                                                               tmp_path: Path) -> None:
    alice, carol = new_page(), new_page()
    joined(alice, "alice")
    joined(carol, "carol")
    attach = alice.get_by_role("button", name="Attach a file")
    expect(attach).to_be_visible()
    alice.locator("#attach-input").set_input_files(files=[{"name": "cat.png", "mimeType": "image/png",
                                                            "buffer": png()}])
    expect(thumbnail(carol)).to_be_visible()
    url = carol.get_by_role("log").locator("a.file-preview").get_attribute("href")
    assert url and url.startswith(web.url + "/files/") and status(url) == 200
    line = alice.locator("#messages li.line").filter(has=alice.locator(".file-preview"))
    line.hover()
    delete_button(line).click()
    alice.get_by_role("dialog", name="Delete your message?").get_by_role("button", name="Delete").click()
    expect(carol.locator("#messages li.line.redacted")).to_have_text(re.compile("message deleted"))
    expect(thumbnail(carol)).to_have_count(0)
    expect(thumbnail(alice)).to_have_count(0)
    assert status(url) == 404
    assert list((tmp_path / "files").iterdir()) == []
    assert alice.errors == [] and carol.errors == []
