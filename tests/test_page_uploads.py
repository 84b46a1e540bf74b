"""Uploads on the page (issue 18): the paperclip, drop and paste, thumbnails, errors.

Debian's Chromium driven by Playwright against the real bridge and chat server, with
uploads into tmp_path; waits are locators and expect(), never sleeps.
"""

from __future__ import annotations

import re
import secrets
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from backend.node import ChatServer
from bridge import config_for, create_app
from tests.pagehelpers import IrcFactory, PageFactory, expect, joined, say

pytest_plugins = ["tests.webfixtures"]
pytestmark = pytest.mark.browser

ALT = "Shared image (opens the full file)"
MAX_BYTES = 64 * 1024
QUOTA_BYTES = 48 * 1024


def png(width: int = 3, height: int = 2) -> bytes:
    """A real (tiny, red) PNG, so that the thumbnail actually decodes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\0" + b"\xff\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture
def chat_server(make_server: Callable[..., ChatServer], tmp_path: Path) -> ChatServer:
    """The chat server, with its files directory in tmp_path (uploads on)."""
    return make_server(webirc_password=secrets.token_urlsafe(18), files_dir=str(tmp_path / "files"))


@pytest.fixture
def web_app(chat_server: ChatServer) -> Flask:
    """The bridge app with small limits, so that the refusals are cheap to reach."""
    return create_app({"TESTING": True, **config_for(chat_server),
                       "LOBBY_MAX_UPLOAD_BYTES": MAX_BYTES, "LOBBY_UPLOAD_QUOTA_BYTES": QUOTA_BYTES})


def attach(page: Any) -> Any:
    button = page.get_by_role("button", name="Attach a file")
    expect(button).to_be_visible()  # the ticket has come
    return button


def thumbnail(page: Any) -> Any:
    return page.get_by_role("log").get_by_role("img", name=ALT)


def decoded(page: Any) -> None:
    page.wait_for_function("() => [...document.querySelectorAll('.file-preview img')].some((i) => i.naturalWidth > 0)")


def test_an_attached_image_shows_in_both_browsers_and_is_a_plain_url_on_irc(
        new_page: PageFactory, irc_user: IrcFactory, web: Any) -> None:
    bob = irc_user("bob")
    alice, carol = new_page(), new_page()
    joined(alice, "alice")
    joined(carol, "carol")
    attach(alice)
    alice.locator("#attach-input").set_input_files(files=[{"name": "cat.png", "mimeType": "image/png",
                                                            "buffer": png()}])
    expect(alice.get_by_role("status").filter(has_text="Sent “cat.png”")).to_be_visible()
    line = bob.expect(r"PRIVMSG #lobby :")
    url = line.params[1]
    assert re.fullmatch(re.escape(web.url) + r"/files/[A-Za-z0-9_-]{22}\.png", url), url
    for page in (alice, carol):
        expect(thumbnail(page)).to_be_visible()
        decoded(page)
        link = page.get_by_role("log").locator("a.file-preview")
        expect(link).to_have_attribute("href", url)
        # The URL itself stays a text link too, for copying.
        expect(page.get_by_role("log").get_by_role("link", name=url)).to_be_visible()
    # Someone who comes later sees it in the room's history, thumbnail and all.
    dave = new_page()
    joined(dave, "dave")
    expect(thumbnail(dave)).to_be_visible()
    decoded(dave)
    assert alice.errors == [] and carol.errors == [] and dave.errors == []


DROP = """
([selector, name, type, text]) => {
  const data = new DataTransfer();
  data.items.add(new File([text], name, { type }));
  const target = document.querySelector(selector);
  target.dispatchEvent(new DragEvent("dragover", { dataTransfer: data, bubbles: true, cancelable: true }));
  target.dispatchEvent(new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }));
}
"""

PASTE = """
([name, type, text]) => {
  const data = new DataTransfer();
  data.items.add(new File([text], name, { type }));
  document.querySelector("#message").dispatchEvent(
    new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
}
"""


def test_a_dropped_or_pasted_file_is_a_link_without_a_thumbnail(new_page: PageFactory, irc_user: IrcFactory,
                                                                 web: Any) -> None:
    bob = irc_user("bob")
    alice = new_page()
    joined(alice, "alice")
    attach(alice)
    alice.evaluate(DROP, ["#messages", "notes.txt", "text/plain", "hello from a file"])
    url = bob.expect(r"PRIVMSG #lobby :").params[1]
    assert re.fullmatch(re.escape(web.url) + r"/files/[A-Za-z0-9_-]{22}", url), url
    expect(alice.get_by_role("log").get_by_role("link", name=url)).to_be_visible()
    # An SVG pasted is a file like any other: never an <img> (it is served as an attachment).
    alice.evaluate(PASTE, ["drawing.svg", "image/svg+xml", "<svg xmlns='http://www.w3.org/2000/svg'/>"])
    svg_url = bob.expect(r"PRIVMSG #lobby :").params[1]
    expect(alice.get_by_role("log").get_by_role("link", name=svg_url)).to_be_visible()
    expect(thumbnail(alice)).to_have_count(0)
    expect(alice.locator("#message")).to_have_value("")  # the paste didn't land in the message box
    assert alice.errors == []


def test_only_our_own_image_urls_become_thumbnails(new_page: PageFactory, irc_user: IrcFactory, web: Any) -> None:
    bob = irc_user("bob")
    alice = new_page()
    joined(alice, "alice")
    token = "A" * 22
    foreign = f"http://evil.example/files/{token}.png"
    bob.send(f"PRIVMSG #lobby :{foreign}")
    bob.send(f"PRIVMSG #lobby :look {web.url}/files/{token}.png")
    expect(alice.get_by_role("log").get_by_role("link", name=foreign)).to_be_visible()
    expect(alice.get_by_role("log")).to_contain_text("look ")
    expect(thumbnail(alice)).to_have_count(0)
    say(alice, f"{web.url}/files/{token}.png")  # ours in form, but no such file: the plain link stays
    expect(alice.get_by_role("log").get_by_role("link", name=f"{web.url}/files/{token}.png")).to_have_count(2)
    expect(alice.locator(".file-preview")).to_have_count(0)


def test_refusals_are_shown(new_page: PageFactory, irc_user: IrcFactory) -> None:
    bob = irc_user("bob")
    alice = new_page()
    joined(alice, "alice")
    attach(alice)
    status = alice.locator("#upload-status")
    # Over the size the bridge announced: refused before a byte is sent.
    alice.locator("#attach-input").set_input_files(files=[{"name": "huge.bin", "mimeType": "application/octet-stream",
                                                            "buffer": b"\0" * (MAX_BYTES + 1)}])
    expect(status).to_contain_text("“huge.bin” is too large to send")
    # Under the size, over what the directory has room for: the server's 507, in words.
    alice.locator("#attach-input").set_input_files(files=[{"name": "big.bin", "mimeType": "application/octet-stream",
                                                            "buffer": b"\1" * (QUOTA_BYTES + 1)}])
    expect(status).to_contain_text("“big.bin” wasn't sent: The server has no room for more files.")
    expect(status).to_have_attribute("data-kind", "error")
    bob.never(r"PRIVMSG #lobby :http")
    assert alice.errors == []
