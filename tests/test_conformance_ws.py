"""A WebSocket client through the bridge meets the same protocol rules as a TCP one.

Truncation to 512 bytes, the client-tag limit, tags only for message-tags clients, and
invalid UTF-8 (possible in the binary.ircv3.net subprotocol) answered as on TCP.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.ircclient import IrcClient

pytest_plugins = ["tests.webfixtures"]

WsFactory = Callable[..., Any]
IrcFactory = Callable[..., IrcClient]


def test_a_long_line_from_a_browser_reaches_others_cut_to_512_bytes(ws_client: WsFactory, irc_user: IrcFactory) -> None:
    bob = irc_user("bob")
    web = ws_client("webby")
    web.send("PRIVMSG #lobby :" + "ж" * 247)  # 16 + 494 = 510 bytes: the most a client may send
    line = bob.expect(r"PRIVMSG #lobby :ж")
    assert len(f":{line.source} PRIVMSG #lobby :{line.params[1]}".encode()) + 2 <= 512
    assert set(line.params[1]) == {"ж"}


def test_tags_over_the_client_limit_get_417_over_websocket(ws_client: WsFactory) -> None:
    web = ws_client("webby")
    web.send("@+x=" + "y" * 4092 + " PRIVMSG #lobby :hi")  # 3 + 4092 = 4095 bytes of tag data
    web.expect(r" 417 webby ")


def test_a_websocket_client_without_message_tags_gets_no_client_tags(
    ws_client: WsFactory, irc_user: IrcFactory
) -> None:
    sender = irc_user("sender", caps="message-tags")
    web = ws_client("webby")
    sender.send("@+draft/reply=abc PRIVMSG #lobby :tagged")
    web.expect(r"PRIVMSG #lobby :tagged")
    assert not web.seen[-1].startswith("@")


def test_invalid_utf8_in_a_binary_frame_is_replaced_and_the_sender_told(
    ws_client: WsFactory, irc_user: IrcFactory
) -> None:
    bob = irc_user("bob")
    web = ws_client(subprotocols=["binary.ircv3.net"])
    web.send(b"NICK webby")
    web.send(b"USER w 0 * :W")
    web.expect(r" 366 webby #lobby ")
    web.send(b"PRIVMSG #lobby :caf\xe9")
    web.expect(r"NOTICE webby :.*not UTF-8")
    assert bob.expect(r"PRIVMSG #lobby :caf").params[1] == "caf\ufffd"
