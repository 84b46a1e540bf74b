"""Two nodes on one Redis: the page in Chromium on node A, `lobby connect` on node B.

Node A is the web fixtures' chat server with its bridge (tests.webfixtures), node B
a second chat server with its own bridge, both on a private redis-server
(tests.clusterfixtures). The browser is Debian's Chromium driven by Playwright; the
terminal user is the real `lobby connect` in piped mode, as in scripts. The page has
a strict CSP, so waits are locators and expect(), never string predicates.
"""

from __future__ import annotations

import json
import re
import secrets
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from backend.node import ChatServer
from bridge import config_for, create_app
from bridge.web import WebServer
from tests.ircclient import wait_until
from tests.test_client import PipedClient, run_piped

pytest_plugins = ["tests.webfixtures", "tests.clusterfixtures"]
pytestmark = pytest.mark.browser

PageFactory = Callable[..., Any]
STAMP = r"^\d\d:\d\d "


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


@pytest.fixture
def chat_server(redis_url: str, make_server: Callable[..., ChatServer]) -> ChatServer:
    """Node A, which the web fixtures put their bridge (and so the browser) in front of.

    Redis is asked for first, so it is stopped last: after both nodes.
    """
    return make_server(redis_url=redis_url, webirc_password=secrets.token_urlsafe(18))


@pytest.fixture
def node_b(redis_url: str, make_server: Callable[..., ChatServer]) -> ChatServer:
    """Node B, on the same Redis."""
    return make_server(redis_url=redis_url, webirc_password=secrets.token_urlsafe(18))


@pytest.fixture
def web_b(node_b: ChatServer) -> Iterator[WebServer]:
    """Node B's own web page and bridge, as `lobby serve` runs them."""
    server = WebServer(create_app({"TESTING": True, **config_for(node_b)}), "127.0.0.1", 0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def terminal(node_b: ChatServer, make_server: Callable[..., ChatServer]) -> Iterator[Callable[..., PipedClient]]:
    """Piped `lobby connect` clients of node B; killed (and their reader threads joined) before the nodes stop."""
    started: list[PipedClient] = []

    def start(name: str) -> PipedClient:
        client = PipedClient(node_b.address[1], name)
        started.append(client)
        return client

    yield start
    for client in started:
        client.stop()


def join(page: Any, name: str) -> None:
    page.locator("#name").fill(name)
    page.locator("#name").press("Enter")


def say(page: Any, text: str) -> None:
    page.locator("#message").fill(text)
    page.locator("#message").press("Enter")


def listed(page: Any, nick: str) -> Any:
    """The user list's entry for exactly this nick."""
    return page.locator("#users .nick", has_text=re.compile(f"^{re.escape(nick)}$"))


def healthz(web: WebServer) -> dict[str, Any]:
    with urllib.request.urlopen(web.url + "/healthz", timeout=10) as response:
        body: dict[str, Any] = json.load(response)
        return body


def test_a_browser_on_node_a_and_a_terminal_client_on_node_b_share_a_room(
    new_page: PageFactory, web_b: WebServer, terminal: Callable[..., PipedClient]
) -> None:
    term = terminal("term")
    term.expect(rf"{STAMP}→ term joined #lobby$")

    page = new_page()
    join(page, "webby")
    expect(page.locator("#status")).to_have_text("online")
    # The user list of the page on A shows the user on B.
    expect(listed(page, "webby")).to_have_count(1)
    expect(listed(page, "term")).to_have_count(1)
    term.expect(rf"{STAMP}→ webby joined #lobby$")
    # Node B's page counts both users too.
    wait_until(lambda: healthz(web_b)["users"] == 2, timeout=20)

    say(page, "hello from the page on node A")
    term.expect(rf"{STAMP}webby: hello from the page on node A$")
    term.send("hello from the terminal on node B")
    line = page.locator("#messages .line", has_text="hello from the terminal on node B")
    expect(line).to_have_count(1)
    expect(line).to_contain_text("term")
    expect(line).not_to_have_class(re.compile(r"\bself\b"))

    # The terminal client leaves at end of input: gone from the list on A, with a quit line.
    term.end_input()
    expect(listed(page, "term")).to_have_count(0)
    expect(page.locator("#messages")).to_contain_text("term quit")
    expect(listed(page, "webby")).to_have_count(1)
    assert term.wait() == 0
    assert page.errors == []


def test_a_nick_held_on_one_node_is_refused_on_the_other(
    new_page: PageFactory, node_b: ChatServer, terminal: Callable[..., PipedClient]
) -> None:
    carol = terminal("carol")
    carol.expect(rf"{STAMP}→ carol joined #lobby$")

    # Before joining: the page explains it in place and asks again, case-insensitively.
    page = new_page()
    join(page, "carol")
    expect(page.locator("#name-error")).to_contain_text("taken")
    expect(page.locator("#name")).to_be_focused()
    join(page, "CAROL")
    expect(page.locator("#name-error")).to_contain_text("The name “CAROL” is taken")
    expect(page.locator("#status")).not_to_have_text("online")
    join(page, "alice")
    expect(page.locator("#status")).to_have_text("online")
    expect(listed(page, "carol")).to_have_count(1)
    carol.expect(rf"{STAMP}→ alice joined #lobby$")

    # Once joined, /nick to a name held on B is refused too, and alice keeps hers.
    say(page, "/nick Carol")
    expect(page.locator("#messages .line.error")).to_contain_text("Carol")
    expect(page.locator("#users .self .nick")).to_have_text("alice")

    # Freed on B when carol quits, so A may take it; then B refuses it to a new terminal user.
    carol.end_input()
    assert carol.wait() == 0
    expect(listed(page, "carol")).to_have_count(0)
    say(page, "/nick carol")
    expect(page.locator("#users .self .nick")).to_have_text("carol")
    late = run_piped(node_b.address[1], "Carol", "never said\n")
    assert late.returncode == 2
    assert "The name Carol is taken" in late.stderr
    assert page.errors == []
