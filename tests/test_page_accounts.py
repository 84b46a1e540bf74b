"""Accounts on the page, in Debian's Chromium: signing up and in, staying signed in across a
reload and a server restart, signing out, private conversations restored with their unread
counts, the guest notice, and a guest's reload under the same name.

The chat server keeps accounts, tokens and history in a SQLite file under tmp_path; terminal
users sign in with SASL (tests/test_accounts.py's helpers). Waiting is done with locators.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from backend.core.passwords import hash_password
from backend.node import ChatServer
from bridge import config_for, create_app
from bridge.web import WebServer
from tests.ircclient import IrcClient, connect
from tests.pagehelpers import IrcFactory, PageFactory, expect, joined, say
from tests.test_accounts import sign_in as sasl_sign_in

pytest_plugins = ["tests.webfixtures"]
pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
GUEST_NOTICE = "Messages with guests are not kept after they leave."


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "lobby.db")


def start_server(make_server: Callable[..., ChatServer], db_path: str, secret: str) -> ChatServer:
    server = make_server(webirc_password=secret, db_path=db_path, password_delay=0.05, password_delay_max=0.4)
    assert server.accounts is not None
    if server.accounts.password_hash("bob") is None:
        assert server.accounts.create("bob", hash_password(PASSWORD))
    return server


@pytest.fixture
def chat_server(make_server: Callable[..., ChatServer], db_path: str) -> ChatServer:
    """Accounts, tokens and history in a file; bob has an account."""
    return start_server(make_server, db_path, secrets.token_urlsafe(18))


def bob_signed_in(chat_server: ChatServer, make_server: Callable[..., ChatServer]) -> IrcClient:
    """bob at a terminal, signed in to his account (SASL), with account-tag."""
    bob = connect(chat_server.address)
    make_server.clients.append(bob)  # type: ignore[attr-defined]
    sasl_sign_in(bob, "bob", "bob", PASSWORD, caps="sasl account-tag")
    bob.expect(r" 903 ")
    bob.send("CAP END")
    bob.expect(r" 001 bob ")
    return bob


def create_account(page: Any, name: str, password: str = PASSWORD) -> None:
    page.get_by_role("button", name="Create account").click()
    page.locator("#account-name").fill(name)
    page.locator("#account-password").fill(password)
    page.locator("#account-submit").click()
    online(page, name)


def sign_in(page: Any, name: str, password: str = PASSWORD) -> None:
    page.get_by_role("button", name="Sign in", exact=True).first.click()
    page.locator("#account-name").fill(name)
    page.locator("#account-password").fill(password)
    page.locator("#account-submit").click()


def online(page: Any, name: str) -> None:
    expect(page.locator("#status")).to_have_text("online")
    expect(page.locator("#users")).to_contain_text(name)


def conversation(page: Any, nick: str) -> Any:
    return page.locator("#queries").get_by_role("button", name=re.compile(f"^{re.escape(nick)}"))


def test_sign_up_then_a_reload_is_still_signed_in_with_rooms_and_conversations_back(
    new_page: PageFactory, chat_server: ChatServer, make_server: Callable[..., ChatServer]
) -> None:
    page = new_page()
    create_account(page, "alice")
    say(page, "/join #study")
    expect(page.locator("#buffers")).to_contain_text("#study")
    bob = bob_signed_in(chat_server, make_server)
    bob.send("PRIVMSG alice :are you coming to the study group?")
    expect(conversation(page, "bob")).to_be_visible()
    # Read it, so that only what comes after counts as new after the reload.
    conversation(page, "bob").click()
    expect(page.locator("#messages")).to_contain_text("are you coming")
    page.locator("#buffers").get_by_role("button", name=re.compile("^#study")).click()
    bob.send("PRIVMSG alice :it starts at six")
    bob.send("PRIVMSG alice :room 4")
    bob.sync()

    page.reload()
    # No form: straight back in as the account, in its rooms, with the conversation and its unread count.
    online(page, "alice")
    expect(page.locator("#join")).to_be_hidden()
    expect(page.locator("#buffers")).to_contain_text("#study")
    expect(page.locator("#buffers")).to_contain_text("#lobby")
    expect(conversation(page, "bob").locator(".badge")).to_have_text("2")
    conversation(page, "bob").click()
    expect(page.locator("#messages")).to_contain_text("are you coming to the study group?")
    expect(page.locator("#messages")).to_contain_text("room 4")
    expect(page.locator("#messages")).to_contain_text("beginning of the conversation")  # all of it is here
    expect(page.locator("#messages")).not_to_contain_text(GUEST_NOTICE)  # bob has an account: kept
    # A second tab of the same browser is signed in too, as the same user (multiclient): one
    # "alice" in the room, and what one tab says shows in the other.
    second = page.context.new_page()
    second.goto(page.url)
    expect(second.locator("#status")).to_have_text("online")
    expect(second.locator("#join")).to_be_hidden()
    expect(conversation(second, "bob")).to_be_visible()
    conversation(second, "bob").click()
    expect(second.locator("#users")).not_to_contain_text("alice_")
    say(second, "said from the second tab")
    expect(page.locator("#messages")).to_contain_text("said from the second tab")
    bob.expect(r":alice!\S+ PRIVMSG bob :said from the second tab")
    assert page.errors == []


def test_signing_out_shows_the_first_screen_and_the_old_cookie_is_a_guest(
    new_page: PageFactory, web: WebServer, irc_user: IrcFactory
) -> None:
    page = new_page()
    sign_in(page, "bob")
    online(page, "bob")
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "lobby_session")
    page.locator("#settings-button").click()
    expect(page.locator("#account-state")).to_contain_text("Signed in as bob")
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#ways")).to_be_visible()
    expect(page.locator("#name")).to_be_visible()
    assert not [c for c in page.context.cookies() if c["name"] == "lobby_session"]
    page.reload()
    expect(page.locator("#ways")).to_be_visible()
    expect(page.locator("#status")).to_have_text("not connected")
    # Someone holding the old cookie is nobody now.
    assert requests.get(f"{web.url}/api/session", cookies={"lobby_session": token}, timeout=10).status_code == 401


def test_a_wrong_password_is_said_on_the_form(new_page: PageFactory) -> None:
    page = new_page()
    sign_in(page, "bob", "not the password")
    expect(page.locator("#account-error")).to_contain_text("not right")
    expect(page.locator("#chat")).to_be_hidden()


def test_another_browser_cannot_take_a_signed_in_name(new_page: PageFactory) -> None:
    page = new_page()
    sign_in(page, "bob")
    online(page, "bob")
    other = new_page()
    other.locator("#name").fill("Bob")
    other.locator("#name").press("Enter")
    expect(other.locator("#name-error")).to_contain_text("taken")
    expect(other.locator("#chat")).to_be_hidden()
    # Making an account of that name is refused too.
    other.get_by_role("button", name="Create account").click()
    other.locator("#account-name").fill("bob")
    other.locator("#account-password").fill("another password")
    other.locator("#account-submit").click()
    expect(other.locator("#account-error")).to_contain_text("taken")


def test_a_conversation_survives_a_server_restart(
    browser: Any, make_server: Callable[..., ChatServer], db_path: str
) -> None:
    secret = secrets.token_urlsafe(18)

    def serve() -> tuple[ChatServer, WebServer]:
        server = start_server(make_server, db_path, secret)
        web = WebServer(create_app({"TESTING": True, **config_for(server)}), "127.0.0.1", 0)
        web.start()
        return server, web

    server, web = serve()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(web.url)
        assert server.accounts is not None
        assert server.accounts.create("alice", hash_password(PASSWORD))
        sign_in(page, "alice")
        online(page, "alice")
        bob = bob_signed_in(server, make_server)
        say(page, "/msg bob the notes are in the shared folder")
        bob.expect(r"PRIVMSG bob :the notes are in")
        web.stop()
        server.stop()

        server, web = serve()
        page.goto(web.url)  # cookies ignore the port: still signed in
        online(page, "alice")
        conversation(page, "bob").click()
        expect(page.locator("#messages")).to_contain_text("the notes are in the shared folder")
    finally:
        context.close()
        web.stop()


def test_a_private_conversation_with_a_guest_says_it_is_not_kept(
    new_page: PageFactory, irc_user: IrcFactory
) -> None:
    page = new_page()
    sign_in(page, "bob")
    online(page, "bob")
    dave = irc_user("dave")
    dave.send("PRIVMSG bob :hi, I'm just visiting")
    conversation(page, "dave").click()
    expect(page.locator("#messages")).to_contain_text("just visiting")
    expect(page.locator("#messages")).to_contain_text(GUEST_NOTICE)


def test_a_guest_reload_rejoins_under_the_same_name(new_page: PageFactory, irc_user: IrcFactory) -> None:
    irc_user("dave")
    page = new_page()
    joined(page, "carol")
    say(page, "/join #guests")
    expect(page.locator("#buffers")).to_contain_text("#guests")
    say(page, "/msg dave hello")
    expect(page.locator("#messages")).to_contain_text(GUEST_NOTICE)  # we are a guest ourselves
    page.reload()
    online(page, "carol")
    expect(page.locator("#join")).to_be_hidden()
    expect(page.locator("#buffers")).to_contain_text("#guests")
    # A new tab is a new visit: the form, with the name ready.
    fresh = page.context.new_page()
    fresh.goto(page.url)
    expect(fresh.locator("#name")).to_have_value("carol")
    expect(fresh.locator("#chat")).to_be_hidden()


def test_a_guest_whose_name_was_taken_meanwhile_gets_the_form_back(
    new_page: PageFactory, irc_user: IrcFactory, web: WebServer
) -> None:
    watcher = irc_user("watcher")
    page = new_page()
    joined(page, "erin")
    page.goto("about:blank")  # away: the name is free
    watcher.expect(r"^:erin!\S+ QUIT ")
    irc_user("erin")  # and someone takes it
    page.goto(web.url)
    expect(page.locator("#name-error")).to_contain_text("taken")
    expect(page.locator("#name")).to_have_value("erin")
    expect(page.locator("#chat")).to_be_hidden()


def test_search_finds_a_private_line_and_opens_its_conversation(
    new_page: PageFactory, chat_server: ChatServer, make_server: Callable[..., ChatServer]
) -> None:
    page = new_page()
    create_account(page, "alice")
    bob = bob_signed_in(chat_server, make_server)
    bob.send("PRIVMSG alice :the spare key is in the blue flowerpot")
    expect(conversation(page, "bob")).to_be_visible()
    say(page, "/search flowerpot")
    result = page.locator("#search-results .search-result")
    expect(result).to_have_count(1)
    expect(result).to_contain_text("bob")
    result.click()
    expect(page.locator("#search")).to_be_hidden()
    found = page.locator("#messages li", has_text="the spare key is in the blue flowerpot")
    expect(found).to_be_focused()
    assert page.errors == []


def test_with_accounts_required_the_page_offers_only_signing_in(
    browser: Any, make_server: Callable[..., ChatServer], db_path: str
) -> None:
    server = make_server(webirc_password=secrets.token_urlsafe(18), db_path=db_path, require_accounts=True,
                         password_delay=0.05, password_delay_max=0.4)
    assert server.accounts is not None
    assert server.accounts.create("student1", hash_password(PASSWORD))
    web = WebServer(create_app({"TESTING": True, **config_for(server)}), "127.0.0.1", 0)
    web.start()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(web.url)
        expect(page.locator("#account-form")).to_be_visible()  # straight to signing in
        expect(page.locator("#way-guest")).to_be_hidden()
        expect(page.locator("#join-form")).to_be_hidden()
        sign_in(page, "student1")
        online(page, "student1")
    finally:
        context.close()
        web.stop()
