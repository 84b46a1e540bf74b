"""Staying signed in, over real HTTP: /api/session, its cookie, the hashed token store, and the relay's WEBIRC.

A real chat server with a SQLite file, the bridge on a loopback port, `requests` for HTTP and
websocket-client for /ws. Password delays are long (30 s) so that "throttled" is never a race.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from backend.core.passwords import hash_password
from backend.node import ChatServer
from bridge import config_for, create_app
from bridge.web import WebServer
from tests.ircclient import IrcClient

pytest_plugins = ["tests.webfixtures"]

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
JSON = {"Content-Type": "application/json"}
WsFactory = Callable[..., Any]  # webfixtures' ws_connect


def ws_url(web: WebServer) -> str:
    return web.url.replace("http://", "ws://", 1) + "/ws"


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "lobby.db")


@pytest.fixture
def chat_server(make_server: Callable[..., ChatServer], db: str) -> ChatServer:
    """A chat server with accounts in a file, alice among them, and slow second guesses."""
    server = make_server(webirc_password=secrets.token_urlsafe(18), db_path=db, password_delay=30.0,
                         password_delay_max=60.0)
    assert server.accounts is not None
    assert server.accounts.create("Alice", hash_password(PASSWORD))
    return server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def sign_in(http: requests.Session, web: WebServer, account: str = "alice", password: str = PASSWORD,
            **headers: str) -> requests.Response:
    return http.post(f"{web.url}/api/session", json={"account": account, "password": password},
                     headers={"Origin": web.url, **headers}, timeout=10)


def set_cookie_header(response: requests.Response) -> str:
    header = response.headers.get("Set-Cookie", "")
    assert header.startswith("lobby_session="), header
    return header


def test_signing_in_sets_a_strict_http_only_cookie_and_get_names_the_account(
    web: WebServer, http: requests.Session
) -> None:
    assert http.get(f"{web.url}/api/session", timeout=10).status_code == 401
    response = sign_in(http, web)
    assert response.status_code == 200
    assert response.json()["account"] == "Alice"  # as the account was made
    flags = [part.strip().lower() for part in set_cookie_header(response).split(";")]
    assert "httponly" in flags
    assert "samesite=strict" in flags
    assert "path=/" in flags
    assert "secure" not in flags  # plain http here: a Secure cookie would never come back
    assert any(flag.startswith("max-age=") for flag in flags)
    who = http.get(f"{web.url}/api/session", timeout=10)
    assert who.status_code == 200
    assert who.json() == {"account": "Alice", "accounts": True, "registration": True, "guests": True}
    assert who.headers["Cache-Control"] == "no-store"


def test_behind_an_https_proxy_the_cookie_is_secure(chat_server: ChatServer) -> None:
    app = create_app({"TESTING": True, **config_for(chat_server), "LOBBY_TRUSTED_PROXIES": 1})
    server = WebServer(app, "127.0.0.1", 0)
    server.start()
    try:
        proxied = {"X-Forwarded-Proto": "https", "Origin": server.url.replace("http:", "https:")}
        response = requests.post(f"{server.url}/api/session", json={"account": "alice", "password": PASSWORD},
                                 headers=proxied, timeout=10)
        assert response.status_code == 200
        assert "secure" in [part.strip().lower() for part in set_cookie_header(response).split(";")]
    finally:
        server.stop()


def test_the_token_is_kept_only_as_its_hash(web: WebServer, http: requests.Session, db: str,
                                            chat_server: ChatServer) -> None:
    sign_in(http, web)
    token = http.cookies["lobby_session"]
    assert len(token) >= 43  # 32 random bytes
    chat_server.stop()  # everything written and the file closed
    data = Path(db).read_bytes()
    assert token.encode() not in data
    assert hashlib.sha256(token.encode()).hexdigest().encode() in data


def test_a_wrong_password_is_401_and_the_next_try_is_throttled(web: WebServer, http: requests.Session) -> None:
    wrong = sign_in(http, web, password="not the password")
    assert wrong.status_code == 401
    assert "Set-Cookie" not in wrong.headers
    assert wrong.json() == {"error": "wrong account or password"}  # which part was wrong is not told
    # The right password right after a wrong one is not even checked: wait first.
    again = sign_in(http, web)
    assert again.status_code == 429
    assert int(again.headers["Retry-After"]) >= 1
    assert "Set-Cookie" not in again.headers
    assert http.get(f"{web.url}/api/session", timeout=10).status_code == 401


def test_an_unknown_account_is_answered_like_a_wrong_password(web: WebServer, http: requests.Session) -> None:
    unknown = sign_in(http, web, account="nobody", password="whatever1")
    assert unknown.status_code == 401
    assert unknown.json() == {"error": "wrong account or password"}


@pytest.mark.parametrize("body", [b"", b"[]", b'{"account": 1, "password": 2}', b'{"account": "alice"}', b"{not json"])
def test_malformed_bodies_are_400(web: WebServer, http: requests.Session, body: bytes) -> None:
    response = http.post(f"{web.url}/api/session", data=body, headers={**JSON, "Origin": web.url}, timeout=10)
    assert response.status_code == 400


def test_cross_origin_and_form_posts_are_refused(web: WebServer, http: requests.Session) -> None:
    cross = sign_in(http, web, Origin="http://evil.example")
    assert cross.status_code == 403
    form = http.post(f"{web.url}/api/session", data={"account": "alice", "password": PASSWORD},
                     headers={"Origin": web.url}, timeout=10)
    assert form.status_code == 415
    assert "lobby_session" not in http.cookies
    sign_in(http, web)
    # Signing out from another site is refused too: the token stays live.
    refused = http.delete(f"{web.url}/api/session", headers={**JSON, "Origin": "http://evil.example"}, timeout=10)
    assert refused.status_code == 403
    assert http.get(f"{web.url}/api/session", timeout=10).status_code == 200


def test_signing_out_revokes_the_token_so_the_old_cookie_is_a_guest(
    web: WebServer, http: requests.Session, ws_connect: WsFactory
) -> None:
    sign_in(http, web)
    token = http.cookies["lobby_session"]
    out = http.delete(f"{web.url}/api/session", headers={**JSON, "Origin": web.url}, timeout=10)
    assert out.status_code == 200
    assert "lobby_session=;" in out.headers["Set-Cookie"] or "Max-Age=0" in out.headers["Set-Cookie"]
    # Someone who kept the old cookie is nobody now, over HTTP and over /ws.
    stale = requests.get(f"{web.url}/api/session", cookies={"lobby_session": token}, timeout=10)
    assert stale.status_code == 401
    ws = ws_connect(ws_url(web), cookie=f"lobby_session={token}")
    ws.send("NICK Alice")
    ws.send("USER a 0 * :a")
    ws.expect(r" 433 \* Alice .*registered")


def test_a_live_cookie_signs_the_websocket_in_as_with_sasl(
    web: WebServer, http: requests.Session, ws_connect: WsFactory
) -> None:
    sign_in(http, web)
    ws = ws_connect(ws_url(web), cookie=f"lobby_session={http.cookies['lobby_session']}")
    ws.send("CAP LS 302")
    ws.send("CAP REQ :account-tag")
    ws.send("NICK alice")  # the account's own nick, protected from everyone else
    ws.send("USER a 0 * :a")
    ws.expect(r" 900 \S+ \S+ Alice ")
    ws.send("CAP END")
    ws.expect(r" 001 alice ")
    ws.send("WHOIS alice")
    ws.expect(r" 330 alice alice Alice ")
    # A forged token is just a guest, and can't take the protected nick.
    guest = ws_connect(ws_url(web), cookie="lobby_session=" + secrets.token_urlsafe(32))
    guest.send("NICK Alice")
    guest.send("USER b 0 * :b")
    guest.expect(r" 433 \* Alice ")


def test_a_browser_cannot_name_an_account_on_its_own_webirc_line(
    web: WebServer, ws_connect: WsFactory, chat_server: ChatServer
) -> None:
    ws = ws_connect(ws_url(web))
    ws.send(f"WEBIRC {chat_server.config.webirc_password} lobby-web h 127.0.0.1 :account=Alice")
    ws.send("NICK Alice")
    ws.send("USER a 0 * :a")
    ws.expect(r" 433 \* Alice ")


def test_without_accounts_the_api_says_so(make_server: Callable[..., ChatServer]) -> None:
    server = make_server(webirc_password="x" * 20, db_path=None)
    web = WebServer(create_app({"TESTING": True, **config_for(server)}), "127.0.0.1", 0)
    web.start()
    try:
        who = requests.get(f"{web.url}/api/session", timeout=10)
        assert who.status_code == 401
        assert who.json()["accounts"] is False
        post = requests.post(f"{web.url}/api/session", json={"account": "a", "password": "b"}, timeout=10)
        assert post.status_code == 404
    finally:
        web.stop()


def test_a_new_password_from_lobby_accounts_signs_every_browser_out(
    web: WebServer, http: requests.Session, db: str
) -> None:
    sign_in(http, web)
    assert http.get(f"{web.url}/api/session", timeout=10).status_code == 200
    done = subprocess.run([sys.executable, "-m", "backend.cli", "accounts", "--db", db, "passwd", "alice"],
                          input="another password\n", capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert http.get(f"{web.url}/api/session", timeout=10).status_code == 401


def test_webirc_account_option_signs_in_only_to_an_existing_account(
    chat_server: ChatServer, make_server: Callable[..., ChatServer]
) -> None:
    secret = chat_server.config.webirc_password

    def bridged(option: str, nick: str) -> IrcClient:
        c = IrcClient(chat_server.address)
        make_server.clients.append(c)  # type: ignore[attr-defined]
        c.send(f"WEBIRC {secret} lobby-web 198.51.100.7 198.51.100.7 :{option}")
        c.send(f"NICK {nick}")
        c.send(f"USER {nick} 0 * :{nick}")
        return c

    alice = bridged("secure account=alice", "alice")
    alice.expect(r" 900 \* \S+ Alice :You are now logged in as Alice")
    alice.expect(r" 001 alice ")
    nobody = bridged("account=nobody", "guest1")
    lines = [*nobody.sync()]
    assert any(" 001 guest1 " in line for line in lines)
    assert not any(" 900 " in line for line in lines)
