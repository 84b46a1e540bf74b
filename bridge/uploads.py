"""Uploads: POST /upload stores a file under the files directory, GET /files/<name> serves it.

The upload side follows soju's filehost convention (`draft/FILEHOST`, now
`soju.im/FILEHOST`): the body is the file itself, Content-Type and
Content-Disposition say what it is and what it was called, and a success is
`201 Created` with the file's URL in Location. OPTIONS on /upload says what is
accepted.

Who may upload: someone in the chat. A browser's relay gets a ticket when its
connection is registered (the server's 001) and passes it to the page in a
`NOTE * LOBBY_UPLOAD <ticket> <max-bytes>` line; the page sends it back as
`Authorization: Bearer <ticket>`. The ticket dies with the WebSocket. An IRC
client with an account uses HTTP Basic with the account's name and password.
Nothing else is accepted (401 without credentials, 403 with wrong ones), and
every attempt from an address draws on that address's budget first (429), so
that password guessing is as slow as uploading.

Names are never trusted: a file is stored under a random name (with the
extension of an image type its first bytes prove), the name it came with is
kept, sanitised, for Content-Disposition only. Served files carry nosniff, a
CSP that allows nothing (and sandboxes the document, should a browser render
one), and are inline only for PNG, JPEG, GIF and WebP verified by magic bytes;
everything else, SVG and HTML included, is an attachment of type
application/octet-stream.

Each file's side file records who uploaded it: the nick of the page's user (the relay keeps it
current, see follow()) and the account, if any, or the account of HTTP Basic. When a message is
deleted (REDACT), the chat calls FileStore.forget with its text and author: the files of ours it
names that the same person uploaded are deleted, so re-posting someone else's URL and deleting
that line takes nothing with it.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from flask import Blueprint, Flask, Response, current_app, jsonify, request, send_file
from werkzeug.http import parse_options_header

from backend.core.chat import Chat
from backend.core.passwords import check_password, hash_password
from backend.irc import fold

log = logging.getLogger("lobby.uploads")

bp = Blueprint("uploads", __name__)

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
QUOTA_BYTES = 1024 * 1024 * 1024
# Per address: this many uploads at once, then one more every RATE_SECONDS.
RATE_BURST = 10
RATE_SECONDS = 6.0
# Per address, bytes a day (a bucket that refills over 24 hours): the per-person quota, as
# far as a chat without mandatory accounts can tell people apart.
DAILY_BYTES = 200 * 1024 * 1024
# A whole upload (its body) must arrive within this many seconds: a client that
# trickles bytes can't hold a thread for long.
UPLOAD_SECONDS = 300.0
CHUNK_BYTES = 64 * 1024
FILENAME_MAX = 120
TICKET_CODE = "LOBBY_UPLOAD"

# The image types shown inline, by their first bytes; the extension goes in the URL so that
# IRC clients that preview images by extension recognise them.
IMAGE_TYPES: dict[str, tuple[str, str]] = {  # extension -> (MIME type, description)
    "png": ("image/png", "PNG"),
    "jpg": ("image/jpeg", "JPEG"),
    "gif": ("image/gif", "GIF"),
    "webp": ("image/webp", "WebP"),
}
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{22}(?:\.(?:png|jpg|gif|webp))?$")
FILE_CSP = "default-src 'none'; sandbox"
# Our files named in a message's text: an http(s) URL whose path is /files/<name>.
FILE_URL = re.compile(r"https?://[^\s/]+/files/([A-Za-z0-9_-]{22}(?:\.(?:png|jpg|gif|webp))?)(?![A-Za-z0-9_.-])")


def sniff_image(head: bytes) -> str | None:
    """The extension of an image type whose magic bytes start head, or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if len(head) >= 12 and head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    return None


def sanitise_filename(raw: str | None) -> str:
    """A name fit to show and to put in Content-Disposition: no path, no controls, bounded.

    Only the last path component is kept; control and format characters (NUL,
    bidirectional overrides such as U+202E) go; leading dots go (no hidden files);
    a name too long keeps its extension.
    """
    name = unicodedata.normalize("NFC", raw or "")
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))
    name = " ".join(name.split()).lstrip(". ").rstrip(". ")
    if len(name) > FILENAME_MAX:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[: FILENAME_MAX - len(ext) - 1].rstrip() + "." + ext
        else:
            name = name[:FILENAME_MAX].rstrip()
    return name or "file"


def content_disposition(kind: str, filename: str) -> str:
    """`inline` or `attachment` with the name in ASCII (filename=) and in UTF-8 (filename*=, RFC 6266)."""
    ascii_name = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\%;' else "_" for ch in filename)
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _source_and_words(line: bytes) -> tuple[bytes, list[bytes]]:
    """A chat server's line without its tags: its source (b"" if none) and the first words after it."""
    words = line.split(b" ", 4)
    while words and words[0][:1] == b"@":
        words = words[1:]
    if words and words[0][:1] == b":":
        return words[0], words[1:]
    return b"", words


def is_welcome(line: bytes) -> bool:
    """Whether a line from the chat server is its 001 (registration done), tags and source aside."""
    return _source_and_words(line)[1][:1] == [b"001"]


def follow(uploader: Uploader, lines: list[bytes]) -> None:
    """Keep a page user's nick current from the lines the chat server sends them: the welcome (001)
    names it, and their own NICK changes it (`:<current>!... NICK <new>`)."""
    for line in lines:
        source, words = _source_and_words(line)
        if len(words) < 2:
            continue
        new = words[1].decode("utf-8", errors="replace").lstrip(":")
        if words[0] == b"001":
            uploader.nick = new
        elif words[0] == b"NICK" and uploader.nick is not None and new:
            nick = source[1:].split(b"!", 1)[0].decode("utf-8", errors="replace")
            if fold(nick) == fold(uploader.nick):
                uploader.nick = new


def ticket_line(ticket: str, max_bytes: int) -> str:
    """The line that hands a browser its upload ticket (a standard-replies NOTE the page reads)."""
    return f":lobby-web NOTE * {TICKET_CODE} {ticket} {max_bytes} :You may upload files to POST /upload"


@dataclass
class Uploader:
    """Who uploads: a page user's nick (kept current by their relay) and account, or an account."""

    nick: str | None = None
    account: str | None = None

    def names(self) -> list[str]:
        """The names a message's author may go by to be this uploader."""
        return [name for name in (self.nick, self.account) if name]


class TicketBook:
    """The upload tickets of live relays, kept by their hash (a lookup leaks nothing of a ticket)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tickets: dict[bytes, Uploader] = {}

    @staticmethod
    def _key(ticket: str) -> bytes:
        return hashlib.sha256(ticket.encode("utf-8", errors="replace")).digest()

    def issue(self, uploader: Uploader | None = None) -> str:
        """A new ticket for uploader (whom its relay keeps current), valid until revoked."""
        ticket = secrets.token_urlsafe(24)
        with self._lock:
            self._tickets[self._key(ticket)] = uploader or Uploader()
        return ticket

    def revoke(self, ticket: str) -> None:
        """The relay has ended: its ticket no longer works."""
        with self._lock:
            self._tickets.pop(self._key(ticket), None)

    def valid(self, ticket: str) -> bool:
        """Whether ticket belongs to a live relay."""
        return self.holder(ticket) is not None

    def holder(self, ticket: str) -> Uploader | None:
        """Who a live ticket belongs to, or None."""
        with self._lock:
            return self._tickets.get(self._key(ticket))


class RateLimiter:
    """A token bucket per address: burst attempts at once, then one every `seconds`."""

    def __init__(self, burst: int, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = max(1, burst)
        self.seconds = max(0.001, seconds)
        self.clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, when)

    def allow(self, address: str, cost: float = 1.0) -> bool:
        """Take cost tokens for address; False (and nothing taken) when it hasn't that many."""
        now = self.clock()
        with self._lock:
            tokens, when = self._buckets.get(address, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - when) / self.seconds)
            if len(self._buckets) > 10_000:
                self._forget_full(now)
            if tokens < cost:
                self._buckets[address] = (tokens, now)
                return False
            self._buckets[address] = (tokens - cost, now)
            return True

    def _forget_full(self, now: float) -> None:
        """Drop addresses whose bucket has filled up again: they are as good as new."""
        full = [a for a, (t, w) in self._buckets.items() if t + (now - w) / self.seconds >= self.burst]
        for address in full:
            del self._buckets[address]


class TooBig(Exception):
    """More bytes than an upload may have."""


class OverQuota(Exception):
    """The files directory has no room left under its quota."""


class Incomplete(Exception):
    """The body ended (or stalled) before its Content-Length."""


@dataclass
class Stored:
    """A stored file's public name and what is known about it."""

    name: str
    filename: str
    size: int
    image: str | None  # the extension of a verified image type, or None

    @property
    def mimetype(self) -> str:
        return IMAGE_TYPES[self.image][0] if self.image else "application/octet-stream"


@dataclass
class FileStore:
    """The files directory: random names, a JSON side file per upload, and the total under a quota."""

    root: Path
    max_bytes: int = MAX_UPLOAD_BYTES
    quota_bytes: int = QUOTA_BYTES
    used: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open(self) -> None:
        """Make the directory if need be, drop unfinished uploads, and count what is there."""
        self.root.mkdir(parents=True, exist_ok=True)
        used = 0
        for entry in self.root.iterdir():
            if entry.name.endswith(".part"):
                with contextlib.suppress(OSError):
                    entry.unlink()
            elif entry.is_file():
                used += entry.stat().st_size
        self.used = used

    def _reserve(self, size: int) -> None:
        with self._lock:
            if self.used + size > self.quota_bytes:
                raise OverQuota
            self.used += size

    def _release(self, size: int) -> None:
        with self._lock:
            self.used = max(0, self.used - size)

    def save(self, stream: Any, length: int, filename: str, deadline: float,
             uploader: Uploader | None = None) -> Stored:
        """Copy length bytes of stream to a new file, noting who uploaded it; TooBig, OverQuota or Incomplete
        leave nothing behind."""
        if length > self.max_bytes:
            raise TooBig
        self._reserve(length)
        token = secrets.token_urlsafe(16)  # 22 characters of [A-Za-z0-9_-]
        part = self.root / f".{token}.part"
        done = False
        try:
            got, head = 0, b""
            with open(part, "xb") as out:
                while got < length:
                    if time.monotonic() > deadline:
                        raise Incomplete
                    chunk = stream.read(min(CHUNK_BYTES, length - got))
                    if not chunk:
                        raise Incomplete
                    if len(head) < 16:
                        head += chunk[: 16 - len(head)]
                    out.write(chunk)
                    got += len(chunk)
            image = sniff_image(head)
            name = f"{token}.{image}" if image else token
            stored = Stored(name, filename, length, image)
            who = uploader or Uploader()
            meta = json.dumps({"filename": filename, "size": length, "image": image, "at": time.time(),
                               "nick": who.nick, "account": who.account}).encode()
            self._reserve(len(meta))
            (self.root / f"{token}.json").write_bytes(meta)
            os.replace(part, self.root / name)
            done = True
            return stored
        finally:
            if not done:
                with contextlib.suppress(OSError):
                    part.unlink()
                self._release(length)

    def find(self, name: str) -> tuple[Path, Stored] | None:
        """A stored file by its public name; None for anything else (a traversal attempt included)."""
        if not NAME_PATTERN.fullmatch(name):
            return None
        token, _, image = name.partition(".")
        path = self.root / name
        try:
            meta = json.loads((self.root / f"{token}.json").read_bytes())
        except (OSError, ValueError):
            return None
        if not path.is_file() or (meta.get("image") or "") != image:
            return None
        return path, Stored(name, sanitise_filename(str(meta.get("filename", ""))), int(meta.get("size", 0)),
                            image or None)


    def delete(self, name: str) -> bool:
        """Delete a stored file and its side file (their room back under the quota); False if none."""
        if not NAME_PATTERN.fullmatch(name):
            return False
        token = name.partition(".")[0]
        freed, found = 0, False
        for path in (self.root / name, self.root / f"{token}.json"):
            with contextlib.suppress(FileNotFoundError):
                size = path.stat().st_size
                path.unlink()
                freed += size
                found = True
        self._release(freed)
        return found

    def uploader(self, name: str) -> Uploader | None:
        """Who uploaded a stored file, as its side file says; None for no such file."""
        if not NAME_PATTERN.fullmatch(name):
            return None
        try:
            meta = json.loads((self.root / f"{name.partition('.')[0]}.json").read_bytes())
        except (OSError, ValueError):
            return None
        nick, account = meta.get("nick"), meta.get("account")
        return Uploader(nick if isinstance(nick, str) else None, account if isinstance(account, str) else None)

    def forget(self, text: str, author: str) -> None:
        """A message by author was deleted: delete the files of ours its text names that author uploaded."""
        for name in dict.fromkeys(FILE_URL.findall(text)):
            who = self.uploader(name)
            if who is None or fold(author) not in {fold(n) for n in who.names()}:
                continue  # not ours, or someone else's file re-posted: it stays
            if self.delete(name):
                log.info("deleted %s with the message that named it", name)


class AccountLookup(Protocol):
    """What Basic authentication needs of the accounts store."""

    def password_hash(self, name: str) -> str | None:
        """The account's password hash, or None."""
        ...

    def display_name(self, name: str) -> str | None:
        """The account's name as it was created."""
        ...


def setup(app: Flask) -> None:
    """Register the routes; with a files directory configured, open it and turn uploads on."""
    app.register_blueprint(bp)
    root = app.config.get("LOBBY_FILES_DIR")
    if not root:
        return
    store = FileStore(Path(root), int(app.config["LOBBY_MAX_UPLOAD_BYTES"]),
                      int(app.config["LOBBY_UPLOAD_QUOTA_BYTES"]))
    store.open()
    app.extensions["lobby.files"] = store
    chat = app.config.get("LOBBY_CHAT")
    if isinstance(chat, Chat):
        chat.attachments = store  # a deleted message's files go with it (core/redaction.py)
    app.extensions["lobby.upload_tickets"] = TicketBook()
    app.extensions["lobby.upload_rate"] = RateLimiter(int(app.config["LOBBY_UPLOAD_BURST"]),
                                                      float(app.config["LOBBY_UPLOAD_RATE_SECONDS"]))
    daily = max(1, int(app.config["LOBBY_UPLOAD_DAILY_BYTES"]))
    app.extensions["lobby.upload_bytes"] = RateLimiter(daily, 86400.0 / daily)


def tickets() -> TicketBook | None:
    """The app's ticket book, or None when uploads are off (for the relay)."""
    book = current_app.extensions.get("lobby.upload_tickets")
    return book if isinstance(book, TicketBook) else None


def max_upload_bytes() -> int:
    """The largest upload the app takes."""
    return int(current_app.config["LOBBY_MAX_UPLOAD_BYTES"])


def _store() -> FileStore | None:
    store = current_app.extensions.get("lobby.files")
    return store if isinstance(store, FileStore) else None


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """A refusal as JSON, after reading (a bounded amount of) the body the client is still sending.

    werkzeug closes the connection after every response: closing with unread bytes
    would reset it, and the client would see a broken connection, not our answer.
    """
    _drain()
    response = jsonify(error=message, status=status)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _drain() -> None:
    length = request.content_length or 0
    if length <= 0 or length > 4 * max_upload_bytes():
        return  # more than that is not worth reading: the client gets a reset, and deserves it
    deadline = time.monotonic() + 10.0
    stream = request.stream
    with contextlib.suppress(OSError, ValueError):
        while time.monotonic() < deadline and stream.read(CHUNK_BYTES):
            pass


def _authorised() -> Response | Uploader:
    """Who uploads, when the request carries a live ticket or an account's name and password; else a
    refusal."""
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="lobby", Basic realm="lobby", charset="UTF-8"'}
    if not credentials:
        return _error(401, "Uploading needs a chat connection (the page's ticket) or an account.", challenge)
    if scheme.lower() == "bearer":
        book = tickets()
        holder = book.holder(credentials.strip()) if book is not None else None
        if holder is not None:
            return holder
        return _error(403, "That upload ticket is not valid (it ends with its chat connection).")
    if scheme.lower() == "basic":
        accounts: AccountLookup | None = current_app.config.get("LOBBY_ACCOUNTS")
        try:
            name, _, password = base64.b64decode(credentials.strip(), validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return _error(401, "Malformed Basic credentials.", challenge)
        stored = accounts.password_hash(name) if accounts is not None and name else None
        # A name that has no account costs the same hash as one that has: timing tells nothing.
        if check_password(password, stored or _decoy_hash()) and stored is not None:
            assert accounts is not None
            return Uploader(None, accounts.display_name(name) or name)
        return _error(403, "Wrong account name or password.")
    return _error(401, "Use Bearer (the page's ticket) or Basic (an account).", challenge)


@functools.cache
def _decoy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


@bp.route("/upload", methods=["OPTIONS"], provide_automatic_options=False)
def upload_options() -> Response:
    """What /upload takes (the filehost convention asks servers to answer OPTIONS)."""
    if _store() is None:
        return _error(404, "Uploads are off on this server.")
    response = Response(status=204)
    response.headers["Allow"] = "OPTIONS, POST"
    response.headers["Accept-Post"] = "*/*"
    return response


@bp.post("/upload")
def upload() -> Response:
    """Store the request body as a file; 201 with its URL in Location (and in the JSON body)."""
    store = _store()
    if store is None:
        return _error(404, "Uploads are off on this server.")
    limiter: RateLimiter = current_app.extensions["lobby.upload_rate"]
    address = request.remote_addr or "?"
    if not limiter.allow(address):
        return _error(429, "Too many uploads from your address: wait a minute.", {"Retry-After": "60"})
    uploader = _authorised()
    if isinstance(uploader, Response):
        return uploader
    length = request.content_length
    if request.headers.get("Transfer-Encoding") or length is None:
        return _error(411, "Send the file with a Content-Length.")
    if length <= 0:
        return _error(400, "The file is empty.")
    if length > store.max_bytes:
        return _error(413, f"The file is too large: at most {store.max_bytes // (1024 * 1024)} MB.")
    daily: RateLimiter = current_app.extensions["lobby.upload_bytes"]
    if not daily.allow(address, float(length)):
        return _error(429, "You have sent a lot of files today: try again tomorrow.", {"Retry-After": "3600"})
    _, options = parse_options_header(request.headers.get("Content-Disposition", ""))
    filename = sanitise_filename(options.get("filename"))
    deadline = time.monotonic() + float(current_app.config["LOBBY_UPLOAD_SECONDS"])
    try:
        stored = store.save(request.stream, length, filename, deadline, Uploader(uploader.nick, uploader.account))
    except OverQuota:
        return _error(507, "The server has no room for more files.")
    except TooBig:
        return _error(413, "The file is too large.")
    except Incomplete:
        return _error(400, "The upload ended before the whole file arrived.")
    except OSError as err:
        log.error("cannot store an upload in %s: %s", store.root, err)
        return _error(500, "The server could not store the file.")
    url = request.host_url.rstrip("/") + "/files/" + stored.name
    log.info("stored an upload of %d bytes from %s as %s", stored.size, address, stored.name)
    response = jsonify(url=url, name=stored.filename, size=stored.size, type=stored.mimetype)
    response.status_code = 201
    response.headers["Location"] = url
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/files/<path:name>")
def serve(name: str) -> Response:
    """A stored file, with headers that keep it from ever acting as a page of this site."""
    store = _store()
    found = store.find(name) if store is not None else None
    if found is None:
        return _error(404, "No such file.")
    path, stored = found
    response = send_file(path, mimetype=stored.mimetype, conditional=True, etag=True, max_age=86400)
    response.headers["Content-Disposition"] = content_disposition("inline" if stored.image else "attachment",
                                                                  stored.filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = FILE_CSP
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    _close_when_sent(response)
    return response


def _close_when_sent(response: Response) -> None:
    """Close a file's body as soon as it has been sent (or at once when none of it is).

    werkzeug's server closes a response body only after reading what the client may still send,
    and that read raises when the browser has already gone (an image it stopped wanting): the
    file would stay open until the garbage collector finds it.
    """
    body = response.response
    if response.status_code == 304 or request.method == "HEAD":
        response.close()
        response.response = []
        return

    def chunks() -> Iterator[bytes]:
        try:
            for chunk in body:
                yield chunk if isinstance(chunk, bytes) else chunk.encode()
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    response.response = chunks()
