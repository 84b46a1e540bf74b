"""The page on a server that puts nobody in a room (`lobby serve --auto-join ""`): it still opens #lobby."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from backend.node import ChatServer
from tests.ircclient import IrcClient
from tests.pagehelpers import join

pytest_plugins = ["tests.webfixtures"]


@pytest.fixture
def chat_server(make_server: Callable[..., ChatServer]) -> ChatServer:
    """A server with no auto-join rooms."""
    return make_server(auto_join=())


@pytest.mark.browser
def test_the_page_opens_lobby_when_the_server_auto_joins_nobody(
    new_page: Any, irc_user: Callable[..., IrcClient]
) -> None:
    page = new_page()
    join(page, "alice")
    expect(page.locator("#messages")).to_contain_text("You joined #lobby")
    carol = irc_user()
    carol.send("NICK carol")
    carol.send("USER c 0 * :C")
    carol.expect(r" 001 carol ")
    carol.send("NAMES #lobby")
    # Nobody else was there: alice made #lobby, so she is its operator.
    assert "@alice" in carol.expect(r" 353 carol ").params[-1].split()
