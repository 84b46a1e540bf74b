"""The web side of Lobby: a Flask app that serves the chat page and bridges WebSockets to IRC.

create_app() builds the app (Flask's app-factory shape); the page routes live in
pages.py and the /ws relay in relay.py; web.py runs the app on a threaded WSGI
server that our own code starts and stops. The app knows the chat server only by
its address, the WEBIRC secret and a hub to count users for /healthz, all in
app.config; config_for() fills those in from a running ChatServer.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, current_app, request
from werkzeug.middleware.proxy_fix import ProxyFix

from . import hosts, pages, relay, session, uploads, web

if TYPE_CHECKING:
    from backend.node import ChatServer

log = logging.getLogger("lobby.web")

WEB_DIR = Path(__file__).resolve().parent.parent / "web"

# The page loads nothing but its own scripts, styles and WebSocket: no inline
# script or style anywhere, so these can be this strict. Trusted Types make any
# innerHTML assignment throw, so a slip in view code fails loudly, not unsafely.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self' ws: wss:",
    "img-src 'self' data:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
])

DEFAULTS: dict[str, Any] = {
    # Where the relay connects, the WEBIRC secret it proves itself with, and
    # something with user_count() and rooms() for /healthz.
    "LOBBY_CHAT_ADDRESS": ("127.0.0.1", 14900),
    "LOBBY_WEBIRC_PASSWORD": None,
    "LOBBY_HUB": None,
    "LOBBY_NETWORK": "Lobby",
    # Staying signed in (session.py): the accounts, the sign-in tokens and the chat's
    # password-failure guard; without them the page offers guests only.
    "LOBBY_ACCOUNTS": None,
    "LOBBY_TOKENS": None,
    "LOBBY_GUARD": None,
    "LOBBY_REGISTRATION_OPEN": False,
    # --require-accounts: the page offers no way in as a guest.
    "LOBBY_REQUIRE_ACCOUNTS": False,
    # Origins besides the page's own that may open /ws (e.g. "https://chat.example").
    "LOBBY_ALLOWED_ORIGINS": (),
    # Host names besides loopback and the machine's own that requests may name
    # (DNS-rebinding defence, see hosts.py); empty: the LOBBY_ALLOWED_HOSTS
    # environment variable, comma-separated, if set.
    "LOBBY_ALLOWED_HOSTS": (),
    # Where the web server listens; WebServer.start() fills it in.
    "LOBBY_LISTEN_HOST": None,
    # How many reverse proxies in front of us to believe X-Forwarded-* from (0: none).
    "LOBBY_TRUSTED_PROXIES": 0,
    "LOBBY_MAX_FRAME_BYTES": relay.MAX_FRAME_BYTES,
    # Seconds a connection has, in all, to send its request head (WebSocket handshake
    # included); a client trickling bytes to hold a thread is cut off after that.
    "LOBBY_HEAD_TIMEOUT": web.HEAD_TIMEOUT_SECONDS,
    # Uploads (uploads.py): the files directory (None: uploads off), the largest file, the
    # directory's total, per-address attempts (a burst, then one per so many seconds) and bytes
    # a day, how
    # long one upload's body may take, and the accounts store for HTTP Basic.
    "LOBBY_FILES_DIR": None,
    "LOBBY_CHAT": None,
    "LOBBY_MAX_UPLOAD_BYTES": uploads.MAX_UPLOAD_BYTES,
    "LOBBY_UPLOAD_QUOTA_BYTES": uploads.QUOTA_BYTES,
    "LOBBY_UPLOAD_BURST": uploads.RATE_BURST,
    "LOBBY_UPLOAD_RATE_SECONDS": uploads.RATE_SECONDS,
    "LOBBY_UPLOAD_DAILY_BYTES": uploads.DAILY_BYTES,
    "LOBBY_UPLOAD_SECONDS": uploads.UPLOAD_SECONDS,
    # Browsers registering at once, how long the others wait for a turn before a 503,
    # and how long one may keep its turn (relay.Admission).
    "LOBBY_WS_ADMIT": relay.ADMIT_AT_ONCE,
    "LOBBY_WS_ADMIT_WAIT": relay.ADMIT_WAIT_SECONDS,
    "LOBBY_WS_ADMIT_HOLD": relay.ADMIT_HOLD_SECONDS,
    # flask-sock hands these to simple_websocket.Server: subprotocols are picked
    # in the client's order of preference; pings keep idle connections alive
    # through proxies and find vanished peers; big messages close with 1009.
    "SOCK_SERVER_OPTIONS": {
        "subprotocols": relay.SUBPROTOCOLS,
        "ping_interval": relay.PING_INTERVAL,
        "max_message_size": relay.MAX_FRAME_BYTES,
    },
}


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the web app; config overrides DEFAULTS (and any Flask setting)."""
    app = Flask(
        __name__,
        template_folder=str(WEB_DIR / "templates"),
        static_folder=str(WEB_DIR / "static"),
        static_url_path="/static",
    )
    app.config.from_mapping(DEFAULTS)
    if config:
        app.config.from_mapping(config)
    if not app.config["LOBBY_ALLOWED_HOSTS"] and os.environ.get("LOBBY_ALLOWED_HOSTS"):
        app.config["LOBBY_ALLOWED_HOSTS"] = tuple(os.environ["LOBBY_ALLOWED_HOSTS"].split(","))
    app.before_request(check_host)
    app.register_blueprint(pages.bp)
    app.register_blueprint(relay.bp)
    uploads.setup(app)
    app.register_blueprint(session.bp)
    app.extensions["lobby.relays"] = relay.RelayRegistry()
    app.extensions["lobby.admission"] = relay.Admission(int(app.config["LOBBY_WS_ADMIT"]),
                                                        float(app.config["LOBBY_WS_ADMIT_WAIT"]),
                                                        float(app.config["LOBBY_WS_ADMIT_HOLD"]))
    app.after_request(add_security_headers)
    proxies = int(app.config["LOBBY_TRUSTED_PROXIES"])
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)  # type: ignore[method-assign]
    return app


def check_host() -> Response | None:
    """Refuse a request whose Host the server is not reachable as (421), WebSockets included."""
    config = current_app.config
    if int(config["LOBBY_TRUSTED_PROXIES"]) and not config["LOBBY_ALLOWED_HOSTS"]:
        return None  # the reverse proxy chooses which names reach us
    allowed = hosts.allowed_names(config["LOBBY_ALLOWED_HOSTS"], config["LOBBY_ALLOWED_ORIGINS"])
    if hosts.host_allowed(request.host, config["LOBBY_LISTEN_HOST"], allowed):
        return None
    log.info("refused a request for host %r from %s", request.host, request.remote_addr)
    return Response("Misdirected request: this server does not answer to that host name.\n", status=421,
                    mimetype="text/plain", headers={"Cache-Control": "no-store"})


def add_security_headers(response: Response) -> Response:
    """CSP and friends on every response, the page and its assets alike."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    return response


def chat_address_for(host: str, port: int) -> tuple[str, int]:
    """Where the bridge should dial a server bound to host: a wildcard means loopback.

    The server accepts WEBIRC only from loopback, so a server listening on every
    interface is reached through 127.0.0.1 (or ::1), never through a LAN address.
    """
    if host in ("", "0.0.0.0"):
        return ("127.0.0.1", port)
    if host == "::":
        return ("::1", port)
    return (host, port)


def config_for(server: ChatServer) -> dict[str, Any]:
    """The app settings that point the bridge at a started ChatServer."""
    host, port = server.address[0], server.address[1]
    return {
        "LOBBY_CHAT_ADDRESS": chat_address_for(host, port),
        "LOBBY_WEBIRC_PASSWORD": server.config.webirc_password,
        "LOBBY_HUB": server.hub,
        "LOBBY_NETWORK": server.config.network,
        "LOBBY_FILES_DIR": server.config.uploads_dir(),
        # Uploads plug into the chat (Chat.attachments): a deleted message's files go with it.
        "LOBBY_CHAT": server.chat,
        "LOBBY_MAX_UPLOAD_BYTES": server.config.max_upload_bytes,
        "LOBBY_UPLOAD_QUOTA_BYTES": server.config.upload_quota_bytes,
        "LOBBY_UPLOAD_DAILY_BYTES": server.config.upload_daily_bytes,
        "LOBBY_ACCOUNTS": server.accounts,
        "LOBBY_TOKENS": server.tokens,
        "LOBBY_GUARD": server.chat.guard if server.accounts is not None else None,
        "LOBBY_REGISTRATION_OPEN": server.config.registration_open,
        "LOBBY_REQUIRE_ACCOUNTS": server.config.require_accounts,
    }
