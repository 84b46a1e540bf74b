"""Rich messages outlive a server restart (#18): replies, reactions, deleted messages and uploads
come back from the SQLite file and the files directory; typing notices don't.

Debian's Chromium against the real bridge and chat server, stopped and started again on the
same database (the web port too, so that an uploaded file's URL still names this server).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backend.node import ChatServer
from bridge import config_for, create_app
from bridge.web import WebServer
from tests.ircclient import IrcClient, connect
from tests.pagehelpers import expect, joined
from tests.test_page_rich import chip, message
from tests.test_page_uploads import ALT, decoded, png

pytest_plugins = ["tests.webfixtures"]
pytestmark = pytest.mark.browser


def test_replies_reactions_deletions_and_uploads_survive_a_restart_and_typing_does_not(
    browser: Any, make_server: Callable[..., ChatServer], tmp_path: Path
) -> None:
    db = str(tmp_path / "lobby.db")
    secret = secrets.token_urlsafe(18)
    web_port = 0

    def serve() -> tuple[ChatServer, WebServer]:
        server = make_server(webirc_password=secret, db_path=db, flood=False)
        web = WebServer(create_app({"TESTING": True, **config_for(server)}), "127.0.0.1", web_port)
        web.start()
        return server, web

    def raw(server: ChatServer, nick: str) -> IrcClient:
        c = connect(server.address, nick, "message-tags echo-message draft/message-redaction")
        make_server.clients.append(c)  # type: ignore[attr-defined]
        return c

    server, web = serve()
    web_port = web.address[1]
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(web.url)
        joined(page, "alice")
        carol = raw(server, "carol")
        carol.send("PRIVMSG #lobby :the parent line")
        parent = carol.expect(r"PRIVMSG #lobby :the parent line").tags["msgid"]
        carol.send(f"@+draft/reply={parent} PRIVMSG #lobby :a reply to it")
        carol.send(f"@+draft/react=👍;+draft/reply={parent} TAGMSG #lobby")
        carol.send("PRIVMSG #lobby :oops, wrong room")
        oops = carol.expect(r"PRIVMSG #lobby :oops, wrong room").tags["msgid"]
        carol.send(f"REDACT #lobby {oops}")
        carol.expect(rf"REDACT #lobby {oops}")
        page.get_by_role("button", name="Attach a file").click(trial=True)  # the upload ticket has come
        page.locator("#attach-input").set_input_files(files=[{"name": "cat.png", "mimeType": "image/png",
                                                              "buffer": png()}])
        carol.expect(r"PRIVMSG #lobby :http\S+/files/")
        carol.send("@+typing=active TAGMSG #lobby")
        expect(page.locator("#typing")).to_contain_text("carol")
        expect(chip(page, "the parent line", "👍")).to_have_attribute("aria-label", "👍 1: carol")
        carol.sync()

        page.close()
        web.stop()
        server.stop()
        server, web = serve()

        page = context.new_page()
        errors: list[object] = []
        page.on("pageerror", lambda error: errors.append(error))
        page.goto(web.url)
        joined(page, "dave")
        expect(message(page, "the parent line")).to_be_visible()
        quote = message(page, "a reply to it").locator(".reply-quote")
        expect(quote).to_have_attribute("aria-label", "In reply to carol: the parent line (go to that message)")
        expect(chip(page, "the parent line", "👍")).to_have_attribute("aria-label", "👍 1: carol")
        expect(page.get_by_role("log").get_by_role("img", name=ALT)).to_be_visible()
        decoded(page)
        expect(page.locator("#messages")).not_to_contain_text("oops, wrong room")
        expect(page.locator("#typing")).not_to_contain_text("carol")
        assert errors == []
    finally:
        context.close()
        web.stop()
