"""Uploads over real HTTP: POST /upload, GET /files/<name>, tickets from /ws, limits, hostile names, ISUPPORT.

Every test runs a real chat server (make_server, which checks for leftover threads) and the
real web server on free loopback ports, with the files directory in tmp_path.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from backend.cluster.mirror import Mirror
from backend.cluster.wire import payload
from backend.core.chat import Chat
from backend.core.envelope import Envelope
from backend.core.history import Ref
from backend.core.passwords import hash_password
from backend.irc import Message
from backend.node import ChatServer, ServerConfig
from backend.store.sqlite import History
from bridge import config_for, create_app
from bridge.uploads import (
    NAME_PATTERN,
    RateLimiter,
    Uploader,
    content_disposition,
    follow,
    is_welcome,
    sanitise_filename,
    sniff_image,
)
from bridge.web import WebServer
from tests.ircclient import IrcClient, connect, wait_until

pytest_plugins = ["tests.webfixtures"]

WsFactory = Callable[..., Any]  # tests.webfixtures.WsClient factories
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(64))
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'
HTML = b"<!doctype html><script>fetch('/upload')</script><p>hi</p>"


class Files:
    """A chat server, its web server with uploads into tmp_path/files, and HTTP helpers."""

    def __init__(self, server: ChatServer, web: WebServer, root: Path, ws_connect: WsFactory) -> None:
        self.server = server
        self.web = web
        self.root = root
        self.ws_connect = ws_connect

    def ticket(self, nick: str = "webby") -> tuple[str, Any]:
        """Register a browser-like WebSocket; return the ticket the bridge hands it, and the client."""
        ws = self.ws_connect(self.web.url.replace("http://", "ws://") + "/ws")
        ws.send(f"NICK {nick}")
        ws.send(f"USER {nick} 0 * :{nick}")
        ws.expect(r" 001 ")
        note = ws.expect(r"^:lobby-web NOTE \* LOBBY_UPLOAD ")
        return note.params[2], ws

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        host, port = self.web.address
        conn = http.client.HTTPConnection(host, port, timeout=20)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def upload(self, data: bytes, ticket: str | None, filename: str | None = "a.bin",
               content_type: str = "application/octet-stream",
               extra: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
        headers = {"Content-Type": content_type}
        if ticket is not None:
            headers["Authorization"] = f"Bearer {ticket}"
        if filename is not None:
            headers["Content-Disposition"] = "attachment; filename*=UTF-8''" + quote_all(filename)
        headers.update(extra or {})
        status, got, body = self.request("POST", "/upload", data, headers)
        return status, got, json.loads(body) if body else None

    def fetch(self, url: str) -> tuple[int, dict[str, str], bytes]:
        return self.request("GET", urlsplit(url).path)

    def disk(self) -> list[str]:
        return sorted(os.listdir(self.root)) if self.root.exists() else []


def quote_all(name: str) -> str:
    return "".join(ch if ch.isascii() and ch.isalnum() else "".join(f"%{b:02X}" for b in ch.encode()) for ch in name)


@pytest.fixture
def make_files(make_server: Callable[..., ChatServer], ws_connect: WsFactory,
               tmp_path: Path) -> Iterator[Callable[..., Files]]:
    """A factory for a chat and web server with uploads; app settings may be overridden."""
    webs: list[WebServer] = []

    def factory(server_options: dict[str, Any] | None = None, **app: Any) -> Files:
        root = tmp_path / "files"
        server = make_server(webirc_password=secrets.token_urlsafe(18), files_dir=str(root),
                             **(server_options or {}))
        web = WebServer(create_app({"TESTING": True, **config_for(server), **app}), "127.0.0.1", 0)
        web.start()
        webs.append(web)
        return Files(server, web, root, ws_connect)

    yield factory
    for web in webs:
        web.stop()


@pytest.fixture
def files(make_files: Callable[..., Files]) -> Files:
    return make_files()


# -- round trips and headers ------------------------------------------------------------------


def test_an_upload_comes_back_byte_for_byte_as_an_attachment(files: Files) -> None:
    ticket, _ = files.ticket()
    data = os.urandom(200_000)
    status, headers, body = files.upload(data, ticket, "notes.bin")
    assert status == 201, body
    assert headers["location"] == body["url"]
    assert body["name"] == "notes.bin" and body["size"] == len(data)
    name = urlsplit(body["url"]).path.removeprefix("/files/")
    assert NAME_PATTERN.fullmatch(name) and "." not in name
    status, got, fetched = files.fetch(body["url"])
    assert status == 200 and fetched == data
    assert got["content-type"] == "application/octet-stream"
    assert got["content-disposition"].startswith("attachment;")
    assert got["x-content-type-options"] == "nosniff"
    assert got["content-security-policy"] == "default-src 'none'; sandbox"
    # HEAD says the same without the body (the filehost convention asks for HEAD and GET).
    status, head, empty = files.request("HEAD", urlsplit(body["url"]).path)
    assert status == 200 and empty == b"" and head["content-length"] == str(len(data))


def test_a_png_is_inline_with_its_verified_type(files: Files) -> None:
    ticket, _ = files.ticket()
    status, _, body = files.upload(PNG, ticket, "cat.png", "image/png")
    assert status == 201
    assert body["url"].endswith(".png") and body["type"] == "image/png"
    status, got, fetched = files.fetch(body["url"])
    assert status == 200 and fetched == PNG
    assert got["content-type"] == "image/png"
    assert got["content-disposition"].startswith("inline;")
    assert got["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(("data", "filename", "declared"), [
    (SVG, "evil.svg", "image/svg+xml"),
    (HTML, "page.html", "text/html"),
    (HTML, "looks.png", "image/png"),  # a name and a type that lie: the bytes decide
])
def test_svg_and_html_are_attachments_that_cannot_run(files: Files, data: bytes, filename: str,
                                                      declared: str) -> None:
    ticket, _ = files.ticket()
    status, _, body = files.upload(data, ticket, filename, declared)
    assert status == 201
    assert not body["url"].endswith((".svg", ".html", ".png"))
    status, got, fetched = files.fetch(body["url"])
    assert status == 200 and fetched == data
    assert got["content-type"] == "application/octet-stream"
    assert got["content-disposition"].startswith("attachment;")
    assert got["x-content-type-options"] == "nosniff"
    assert "sandbox" in got["content-security-policy"] and "default-src 'none'" in got["content-security-policy"]


def test_options_says_what_upload_takes(files: Files) -> None:
    status, headers, _ = files.request("OPTIONS", "/upload")
    assert status == 204
    assert "POST" in headers["allow"] and headers["accept-post"] == "*/*"


# -- who may upload -----------------------------------------------------------------------------


def test_without_a_ticket_nothing_is_stored(files: Files) -> None:
    status, headers, body = files.upload(b"hello", None)
    assert status == 401 and "Bearer" in headers["www-authenticate"] and body["error"]
    status, _, body = files.upload(b"hello", "not-a-ticket")
    assert status == 403 and body["status"] == 403
    status, _, _ = files.upload(b"hello", None, extra={"Authorization": "Digest abc"})
    assert status == 401
    assert files.disk() == []


def test_a_ticket_dies_with_its_websocket(files: Files) -> None:
    ticket, ws = files.ticket()
    assert files.upload(b"one", ticket)[0] == 201
    ws.send("QUIT :bye")
    ws.expect_close()
    # The relay revokes the ticket as it ends, a moment after the browser sees the close.
    book = files.web.app.extensions["lobby.upload_tickets"]
    wait_until(lambda: not book.valid(ticket))
    before = files.disk()
    status, _, _ = files.upload(b"two", ticket)
    assert status == 403
    assert files.disk() == before


def test_an_account_may_upload_with_basic_auth(make_files: Callable[..., Files], tmp_path: Path) -> None:
    files = make_files({"db_path": str(tmp_path / "lobby.db")})
    assert files.server.accounts is not None
    files.server.accounts.create("alice", hash_password("correct horse"))

    def basic(user: str, password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    assert files.upload(b"x", None, extra=basic("alice", "wrong horse"))[0] == 403
    assert files.upload(b"x", None, extra=basic("nobody", "correct horse"))[0] == 403
    assert files.disk() == []
    status, _, body = files.upload(b"from irc", None, extra=basic("alice", "correct horse"))
    assert status == 201 and files.fetch(body["url"])[2] == b"from irc"


# -- limits ------------------------------------------------------------------------------------


def test_ten_megabytes_over_the_limit_is_413_and_leaves_nothing(files: Files) -> None:
    ticket, _ = files.ticket()
    status, _, body = files.upload(b"\0" * (10 * 1024 * 1024 + 1), ticket, "big.bin")
    assert status == 413 and "too large" in body["error"]
    assert files.disk() == []


def test_over_the_quota_is_507(make_files: Callable[..., Files]) -> None:
    files = make_files(LOBBY_UPLOAD_QUOTA_BYTES=3000)
    ticket, _ = files.ticket()
    assert files.upload(b"a" * 1500, ticket)[0] == 201
    before = files.disk()
    status, _, body = files.upload(b"b" * 1500, ticket)
    assert status == 507 and body["error"]
    assert files.disk() == before
    assert files.upload(b"c" * 100, ticket)[0] == 201  # what still fits is taken


def test_too_many_uploads_from_one_address_is_429(make_files: Callable[..., Files]) -> None:
    files = make_files(LOBBY_UPLOAD_BURST=2, LOBBY_UPLOAD_RATE_SECONDS=3600)
    ticket, _ = files.ticket()
    assert files.upload(b"1", ticket)[0] == 201
    assert files.upload(b"2", ticket)[0] == 201
    status, headers, body = files.upload(b"3", ticket)
    assert status == 429 and headers["retry-after"] and body["error"]


def test_an_address_has_a_daily_byte_quota(make_files: Callable[..., Files]) -> None:
    files = make_files(LOBBY_UPLOAD_DAILY_BYTES=2500)
    ticket, _ = files.ticket()
    assert files.upload(b"a" * 2000, ticket)[0] == 201
    before = files.disk()
    status, _, body = files.upload(b"b" * 1000, ticket)
    assert status == 429 and "today" in body["error"]
    assert files.disk() == before
    assert files.upload(b"c" * 400, ticket)[0] == 201


def test_a_body_without_length_or_with_nothing_is_refused(files: Files) -> None:
    ticket, _ = files.ticket()
    assert files.upload(b"", ticket)[0] == 400
    host, port = files.web.address
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("POST", "/upload", body=iter([b"abc"]), headers={"Authorization": f"Bearer {ticket}"},
                     encode_chunked=True)
        assert conn.getresponse().status == 411
    finally:
        conn.close()
    assert files.disk() == []


def test_rate_limiter_refills_with_time() -> None:
    now = [0.0]
    limiter = RateLimiter(2, 10.0, clock=lambda: now[0])
    assert limiter.allow("a") and limiter.allow("a") and not limiter.allow("a")
    assert limiter.allow("b")
    now[0] = 10.0
    assert limiter.allow("a") and not limiter.allow("a")
    assert not limiter.allow("c", 3.0) and limiter.allow("c", 2.0)


# -- names are never trusted ----------------------------------------------------------------------


HOSTILE = ["../../etc/passwd", "..\\..\\boot.ini", "a\0b.txt", "x" * 5000 + ".png", "\u202egnp.exe",
           "gif.\u202eexe", ".htaccess", "   ", "%2e%2e%2fx", 'quo"te;\r\nX-Evil: 1']


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_filenames_never_reach_the_disk(files: Files, hostile: str) -> None:
    ticket, _ = files.ticket()
    status, _, body = files.upload(b"payload", ticket, hostile)
    assert status == 201
    for entry in files.disk():
        token = entry.split(".")[0]
        assert NAME_PATTERN.fullmatch(token) and entry in (token, f"{token}.json"), entry
    _, got, _ = files.fetch(body["url"])
    disposition = got["content-disposition"]
    assert "\r" not in disposition and "\n" not in disposition and "\0" not in disposition
    shown = unquote(re.search(r"filename\*=UTF-8''(\S+)$", disposition).group(1))  # type: ignore[union-attr]
    assert shown == body["name"]
    for bad in ("/", "\\", "\0", "\u202e", "\r", "\n"):
        assert bad not in shown
    assert not shown.startswith(".") and 0 < len(shown) <= 120
    assert "X-Evil" not in got


def test_sanitise_filename() -> None:
    assert sanitise_filename("../../etc/passwd") == "passwd"
    assert sanitise_filename("C:\\Users\\x\\photo.jpg") == "photo.jpg"
    assert sanitise_filename("a\0b\u202ec.txt") == "abc.txt"
    assert sanitise_filename("") == "file" and sanitise_filename(None) == "file" and sanitise_filename("..") == "file"
    long = sanitise_filename("y" * 300 + ".jpeg")
    assert long.endswith(".jpeg") and len(long) == 120
    assert sanitise_filename("été  photo.png") == "été photo.png"
    assert content_disposition("attachment", 'é"x.txt') == \
        "attachment; filename=\"__x.txt\"; filename*=UTF-8''%C3%A9%22x.txt"


def test_sniff_image_trusts_bytes_only() -> None:
    assert sniff_image(PNG) == "png"
    assert sniff_image(b"\xff\xd8\xff\xe0rest") == "jpg"
    assert sniff_image(b"GIF89a....") == "gif"
    assert sniff_image(b"RIFF\0\0\0\0WEBPVP8 ") == "webp"
    assert sniff_image(SVG) is None and sniff_image(b"RIFF\0\0\0\0WAVE") is None


# -- fetching ----------------------------------------------------------------------------------------


def test_path_traversal_and_side_files_are_not_served(files: Files, tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("secret")
    ticket, _ = files.ticket()
    _, _, body = files.upload(b"mine", ticket)
    token = urlsplit(body["url"]).path.removeprefix("/files/")
    for path in ["/files/../secret.txt", "/files/..%2Fsecret.txt", "/files/%2e%2e/secret.txt",
                 "/files/..%2F..%2F..%2Fetc%2Fpasswd", f"/files/{token}.json", f"/files/{token}.png",
                 f"/files/{token}/", "/files/", "/files/.%2e/.%2e/secret.txt", f"/files/{token[:-1]}%00"]:
        status, _, fetched = files.request("GET", path)
        assert status in (404, 308), path
        assert b"secret" not in fetched and b"filename" not in fetched, path


def test_uploads_off_without_a_files_directory(make_server: Callable[..., ChatServer], ws_connect: WsFactory) -> None:
    server = make_server(webirc_password=secrets.token_urlsafe(18))  # ":memory:" history, no files-dir
    assert server.config.uploads_dir() is None
    web = WebServer(create_app({"TESTING": True, **config_for(server)}), "127.0.0.1", 0)
    web.start()
    try:
        conn = http.client.HTTPConnection(*web.address, timeout=10)
        conn.request("POST", "/upload", body=b"x", headers={"Authorization": "Bearer x"})
        assert conn.getresponse().status == 404
        conn.close()
        ws = ws_connect(web.url.replace("http://", "ws://") + "/ws", "plain")
        ws.send("PING :done")
        ws.expect(r"PONG .*done")
        assert not [line for line in ws.seen if "LOBBY_UPLOAD" in line]
    finally:
        web.stop()


def test_the_files_directory_defaults_to_beside_the_database(tmp_path: Path) -> None:
    assert ServerConfig(db_path=str(tmp_path / "lobby.db")).uploads_dir() == str(tmp_path / "files")
    assert ServerConfig(db_path=":memory:").uploads_dir() is None
    assert ServerConfig(db_path=None).uploads_dir() is None
    assert ServerConfig(db_path=":memory:", files_dir="/srv/f").uploads_dir() == "/srv/f"
    assert ServerConfig(db_path=str(tmp_path / "lobby.db"), uploads=False).uploads_dir() is None


def test_is_welcome() -> None:
    assert is_welcome(b":lobby 001 alice :Welcome")
    assert is_welcome(b"@time=2024-01-01T00:00:00Z :lobby 001 alice :Welcome")
    assert not is_welcome(b":lobby 002 alice :Your host")
    assert not is_welcome(b":bob!b@h PRIVMSG #lobby :001 ")


# -- ISUPPORT ----------------------------------------------------------------------------------------


def test_isupport_names_the_filehost_only_when_uploads_are_on(make_server: Callable[..., ChatServer]) -> None:
    off = make_server()
    c = IrcClient(off.address)
    c.send("NICK plain")
    c.send("USER plain 0 * :plain")
    lines = c.lines_until(r" 376 | 422 ")
    c.close()
    assert any(" 005 " in line for line in lines)
    assert not [line for line in lines if "FILEHOST" in line]
    on = make_server(filehost_url="http://chat.example:8000/upload")
    c = IrcClient(on.address)
    c.send("NICK filer")
    c.send("USER filer 0 * :filer")
    lines = c.lines_until(r" 376 | 422 ")
    c.close()
    tokens = " ".join(line for line in lines if " 005 " in line).split()
    assert "draft/FILEHOST=http://chat.example:8000/upload" in tokens
    assert "soju.im/FILEHOST=http://chat.example:8000/upload" in tokens


def test_files_outlive_a_restart_of_the_web_app(files: Files) -> None:
    ticket, _ = files.ticket()
    _, _, body = files.upload(PNG, ticket, "kept.png", "image/png")
    files.web.stop()
    again = WebServer(create_app({"TESTING": True, **config_for(files.server)}), "127.0.0.1", 0)
    again.start()
    try:
        files.web = again
        status, got, fetched = files.fetch(body["url"])
        assert status == 200 and fetched == PNG and got["content-disposition"].startswith("inline;")
        assert "kept.png" in got["content-disposition"]
    finally:
        again.stop()


def test_lobby_serve_puts_files_beside_the_database_and_advertises_them(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--irc-port", "0", "--web-port", "0",
         "--db", str(tmp_path / "lobby.db"), "--max-upload-mb", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": "."})
    try:
        printed: dict[str, str] = {}
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        while "uploads" not in printed and time.monotonic() < deadline:
            line = proc.stdout.readline().strip()
            if not line:
                break
            key, _, value = line.partition(" on " if " on " in line else " in ")
            printed[key.split()[0]] = value
        assert printed.get("uploads") == str(tmp_path / "files"), printed
        assert (tmp_path / "files").is_dir()
        web = printed["web"]
        host, port = printed["chat"].rsplit(":", 1)
        c = IrcClient((host, int(port)))
        c.send("NICK cli")
        c.send("USER cli 0 * :cli")
        tokens = " ".join(c.lines_until(r" 376 | 422 ")).split()
        c.close()
        assert f"draft/FILEHOST={web}/upload" in tokens
        conn = http.client.HTTPConnection(*urlsplit(web).netloc.split(":"), timeout=10)
        conn.request("POST", "/upload", body=b"\0" * (2 * 1024 * 1024 + 1), headers={"Authorization": "Bearer x"})
        assert conn.getresponse().status == 403  # credentials first: a stranger learns nothing of the limits
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)


# -- deleting a message deletes its file -----------------------------------------------------------

TAGS = "message-tags batch server-time echo-message draft/message-redaction"


def in_room(files: Files, nick: str, room: str = "#dev") -> IrcClient:
    """An IRC client with message tags and redaction, in room (the first one in is its operator)."""
    c = connect(files.server.address, nick, TAGS)
    c.send(f"JOIN {room}")
    c.expect(rf" 366 {nick} {room} ")
    return c


def browser_in_room(files: Files, nick: str = "webby", room: str = "#dev") -> tuple[str, Any]:
    """A browser-like WebSocket in room, with the upload ticket the bridge handed it."""
    ticket, ws = files.ticket(nick)
    ws.send(f"JOIN {room}")
    ws.expect(rf" 366 {nick} {room} ")
    return ticket, ws


def said(c: IrcClient, pattern: str) -> str:
    """The msgid of the next line c sees matching pattern."""
    return c.expect(pattern).tags["msgid"]


def test_deleting_your_message_deletes_the_file_you_uploaded(files: Files) -> None:
    watcher = in_room(files, "watcher")
    ticket, ws = files.ticket("webby")
    # The page's user changes nick before uploading: the relay follows, and the file is theirs.
    ws.send("NICK author")
    ws.expect(r"NICK :?author")
    ws.send("JOIN #dev")
    ws.expect(r" 366 author #dev ")
    status, _, body = files.upload(PNG, ticket, "cat.png", "image/png")
    assert status == 201 and files.fetch(body["url"])[0] == 200
    ws.send(f"PRIVMSG #dev :look {body['url']} !")
    msgid = said(watcher, r":author!\S+ PRIVMSG #dev :look ")
    ws.send(f"REDACT #dev {msgid}")
    watcher.expect(rf":author!\S+ REDACT #dev {msgid}")
    wait_until(lambda: files.fetch(body["url"])[0] == 404)
    assert files.disk() == []
    assert files.server.chat.attachments is not None
    watcher.sync()
    watcher.close()


def test_an_operator_deleting_the_message_deletes_the_authors_file(files: Files) -> None:
    boss = in_room(files, "boss")
    ticket, ws = browser_in_room(files)
    _, _, one = files.upload(b"first", ticket, "one.txt")
    _, _, two = files.upload(b"second", ticket, "two.txt")
    ws.send(f"PRIVMSG #dev :{one['url']} and {two['url']}")
    msgid = said(boss, r":webby!\S+ PRIVMSG #dev :")
    boss.send(f"REDACT #dev {msgid} :spam")
    boss.expect(rf":boss!\S+ REDACT #dev {msgid} :?spam")
    wait_until(lambda: files.disk() == [])
    assert files.fetch(one["url"])[0] == 404 and files.fetch(two["url"])[0] == 404
    boss.sync()
    boss.close()


def test_reposting_someone_elses_file_and_deleting_that_line_leaves_the_file(files: Files) -> None:
    boss = in_room(files, "boss")
    mallory = in_room(files, "mallory")
    ticket, _ = browser_in_room(files)
    _, _, body = files.upload(PNG, ticket, "mine.png", "image/png")
    on_disk = files.disk()
    mallory.send(f"PRIVMSG #dev :{body['url']}")
    mine = said(mallory, r":mallory!\S+ PRIVMSG #dev :")
    mallory.send(f"REDACT #dev {mine}")
    mallory.expect(rf"REDACT #dev {mine}")
    mallory.send(f"PRIVMSG #dev :again {body['url']}")
    again = said(boss, r":mallory!\S+ PRIVMSG #dev :again ")
    boss.send(f"REDACT #dev {again}")  # an operator, but the line is still mallory's
    boss.expect(rf"REDACT #dev {again}")
    boss.sync()
    mallory.sync()
    assert files.fetch(body["url"])[0] == 200 and files.disk() == on_disk
    boss.close()
    mallory.close()


def test_deleting_a_message_without_a_file_url_deletes_nothing(files: Files) -> None:
    watcher = in_room(files, "watcher")
    ticket, ws = browser_in_room(files)
    _, _, body = files.upload(b"kept", ticket, "kept.txt")
    on_disk = files.disk()
    ws.send("PRIVMSG #dev :just words, and /files/ on its own")
    msgid = said(watcher, r":webby!\S+ PRIVMSG #dev :just words")
    ws.send(f"REDACT #dev {msgid}")
    watcher.expect(rf"REDACT #dev {msgid}")
    watcher.sync()
    assert files.disk() == on_disk and files.fetch(body["url"])[2] == b"kept"
    watcher.close()


def test_an_accounts_basic_upload_goes_with_its_private_message(make_files: Callable[..., Files],
                                                                 tmp_path: Path) -> None:
    files = make_files({"db_path": str(tmp_path / "lobby.db")})
    assert files.server.accounts is not None
    for name in ("alice", "bob"):
        files.server.accounts.create(name, hash_password(f"{name} password"))
    auth = "Basic " + base64.b64encode(b"alice:alice password").decode()
    status, _, body = files.upload(b"for bob", None, extra={"Authorization": auth})
    assert status == 201
    alice, bob = (sasl_client(files, name) for name in ("alice", "bob"))
    alice.send(f"PRIVMSG bob :{body['url']}")
    msgid = said(bob, r":alice!\S+ PRIVMSG bob :")
    alice.send(f"REDACT bob {msgid}")
    bob.expect(rf":alice!\S+ REDACT bob {msgid}")
    wait_until(lambda: files.fetch(body["url"])[0] == 404)
    assert files.disk() == []
    for c in (alice, bob):
        c.sync()  # nothing left in flight to a client that hangs up (see the report on backend/net)
        c.close()


def sasl_client(files: Files, name: str) -> IrcClient:
    """An IRC client signed in to account name (password `<name> password`) with SASL PLAIN."""
    c = IrcClient(files.server.address)
    c.send(f"CAP REQ :sasl {TAGS}")
    c.expect(r"CAP \S+ ACK")
    c.send("AUTHENTICATE PLAIN")
    c.expect(r"AUTHENTICATE \+")
    c.send("AUTHENTICATE " + base64.b64encode(f"\0{name}\0{name} password".encode()).decode())
    c.expect(r" 903 ")
    c.send(f"NICK {name}")
    c.send(f"USER {name} 0 * :{name}")
    c.send("CAP END")
    c.expect(r" 001 ")
    return c


def test_the_relay_follows_its_users_nick() -> None:
    who = Uploader(account="acc")
    follow(who, [b"@time=x :lobby 001 webby :Welcome", b":webby!u@h PRIVMSG #a :NICK x"])
    assert who.nick == "webby"
    follow(who, [b":other!u@h NICK :mallory", b":WEBBY!u@h NICK :renamed"])
    assert who.nick == "renamed" and who.names() == ["renamed", "acc"]


def test_ranges_revalidation_and_head_still_work(files: Files) -> None:
    ticket, _ = files.ticket()
    data = os.urandom(5000)
    _, _, body = files.upload(data, ticket, "r.bin")
    path = urlsplit(body["url"]).path
    status, headers, got = files.request("GET", path, headers={"Range": "bytes=100-199"})
    assert status == 206 and got == data[100:200] and headers["content-range"] == "bytes 100-199/5000"
    status, _, got = files.request("GET", path, headers={"If-None-Match": headers["etag"]})
    assert status == 304 and got == b""
    status, headers, got = files.request("HEAD", path)
    assert status == 200 and got == b"" and headers["content-length"] == "5000"


class Forgotten:
    """Attachments that record what they were asked to forget."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def forget(self, text: str, author: str) -> None:
        self.calls.append((text, author))


def test_a_redact_from_another_node_forgets_the_files_of_this_nodes_copy(tmp_path: Path) -> None:
    history = History(str(tmp_path / "node.db"))
    history.open(index=False)
    try:
        chat = Chat(history=history)
        attachments = Forgotten()
        chat.attachments = attachments
        mirror = Mirror(chat, "here", on_sync=lambda: None)
        history.add("#lobby", "m1", time.time(), "bob!b@there", "PRIVMSG", "see http://h/files/x")
        history.add("#lobby", "m2", time.time(), "bob!b@there", "PRIVMSG", "not this one")
        redact = Envelope(Message("REDACT", ("#lobby", "m1"), "carol!c@there"))
        mirror.apply(json.loads(payload("there", "redact", redact, key="#lobby", msgids=["m1"])))
        assert attachments.calls == [("see http://h/files/x", "bob")]
        assert [row.msgid for row in history.around("#lobby", Ref(msgid="m2"), 10)] == ["m2"]
        # An unreact (no REDACT line) takes no file with it, and a msgid not kept here asks nothing.
        mirror.apply(json.loads(payload("there", "redact", None, key="#lobby", msgids=["m2"])))
        mirror.apply(json.loads(payload("there", "redact", redact, key="#lobby", msgids=["gone"])))
        assert attachments.calls == [("see http://h/files/x", "bob")]
    finally:
        history.close()
