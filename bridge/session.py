"""Staying signed in on the page: /api/session and the cookie that names a sign-in token.

POST /api/session {account, password} checks the password (slowed down after failures by
the chat's own FailureGuard, per address and per account) and sets the `lobby_session`
cookie to a new random token, which the server keeps only hashed (store/tokens.py).
GET /api/session says who the cookie signs in (401 for nobody); DELETE revokes its token
and clears the cookie. The relay reads the cookie at the WebSocket handshake
(signed_in_account) and names the account on its WEBIRC line, which only the bridge can
send: the chat server then treats the connection as signed in, exactly as after SASL.

Cross-site requests: the cookie is SameSite=Strict and HttpOnly, a POST or DELETE must be
JSON (a cross-site form can't send that without a CORS preflight, which we never answer)
and must come from the page's own origin when the browser names one. Tokens and passwords
are never logged.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, request

from backend.core.guard import FailureGuard
from backend.core.passwords import check_password, hash_password
from backend.core.ports import AccountStore, TokenStore
from backend.irc import fold

log = logging.getLogger("lobby.session")

bp = Blueprint("session", __name__)

COOKIE = "lobby_session"
# "Until you sign out": as long as browsers keep a cookie (Chromium caps it at 400 days).
COOKIE_MAX_AGE = 400 * 24 * 3600
BODY_MAX = 4096
FIELD_MAX = 300
# Checked instead when there is no such account, so that its answer takes as long as a wrong password's.
_NO_ACCOUNT = hash_password("no such account")


def _config(name: str) -> Any:
    return current_app.config.get(name)


def _answer(status: int, **body: Any) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def same_origin(origin: str | None, host: str, scheme: str, extra: tuple[str, ...] = ()) -> bool:
    """Whether a request's Origin is the page's own (or listed); a missing one is a non-browser client."""
    if origin is None or origin in extra:
        return True
    parts = urlsplit(origin)
    return parts.scheme == scheme and parts.netloc.lower() == host.lower()


@bp.before_request
def refuse_cross_site() -> Response | None:
    """A POST or DELETE must be JSON from the page's own origin (403 otherwise)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    extra = tuple(_config("LOBBY_ALLOWED_ORIGINS") or ())
    if not same_origin(request.headers.get("Origin"), request.host, request.scheme, extra):
        log.info("refused a cross-origin %s /api/session from %r", request.method, request.headers.get("Origin"))
        return _answer(403, error="cross-origin request refused")
    if request.mimetype != "application/json":
        return _answer(415, error="send JSON (Content-Type: application/json)")
    return None


def _stores() -> tuple[AccountStore, TokenStore, FailureGuard] | None:
    accounts, tokens, guard = _config("LOBBY_ACCOUNTS"), _config("LOBBY_TOKENS"), _config("LOBBY_GUARD")
    if accounts is None or tokens is None or guard is None:
        return None
    return accounts, tokens, guard


def _about() -> dict[str, Any]:
    """What the page needs to know to offer sign-in at all."""
    return {"accounts": _stores() is not None, "registration": bool(_config("LOBBY_REGISTRATION_OPEN")),
            "guests": not _config("LOBBY_REQUIRE_ACCOUNTS")}


def signed_in_account() -> str | None:
    """The account the request's cookie signs in to (as it was made), or None: a guest."""
    stores = _stores()
    token = request.cookies.get(COOKIE, "")
    if stores is None or not token:
        return None
    accounts, tokens, _ = stores
    account = tokens.account(token)
    return accounts.display_name(account) if account is not None else None


@bp.get("/api/session")
def who() -> Response:
    """{account} for a signed-in browser; 401 for a guest. Either says whether accounts exist here."""
    account = signed_in_account()
    if account is None:
        return _answer(401, account=None, **_about())
    return _answer(200, account=account, **_about())


@bp.post("/api/session")
def sign_in() -> Response:
    """Check account and password; on success set the cookie to a new token (200 {account})."""
    stores = _stores()
    if stores is None:
        return _answer(404, error="this server keeps no accounts")
    accounts, tokens, guard = stores
    if (request.content_length or 0) > BODY_MAX:
        return _answer(413, error="too large")
    body = request.get_json(silent=True)
    account = body.get("account") if isinstance(body, dict) else None
    password = body.get("password") if isinstance(body, dict) else None
    if not isinstance(account, str) or not isinstance(password, str) or not account or not password \
            or len(account) > FIELD_MAX or len(password) > FIELD_MAX:
        return _answer(400, error="send {account, password}")
    keys = (request.remote_addr or "?", f"account:{fold(account)}")
    wait = max(guard.admit(key) for key in keys)
    if wait > 0:
        response = _answer(429, error="too many wrong passwords: wait, then try again", retry_after=round(wait, 1))
        response.headers["Retry-After"] = str(max(1, round(wait)))
        return response
    stored = accounts.password_hash(account)
    right = check_password(password, stored if stored is not None else _NO_ACCOUNT)
    if stored is None or not right:
        for key in keys:
            guard.failed(key)
        log.warning("failed page sign-in to account %r from %s", account, keys[0])
        return _answer(401, error="wrong account or password")
    for key in keys:
        guard.succeeded(key)
    name = accounts.display_name(account) or account
    token = tokens.issue(name, request.headers.get("User-Agent", ""))
    if not token:
        return _answer(503, error="sign-in is not available right now")
    response = _answer(200, account=name)
    response.set_cookie(COOKIE, token, max_age=COOKIE_MAX_AGE, path="/", httponly=True, samesite="Strict",
                        secure=request.is_secure)
    return response


@bp.delete("/api/session")
def sign_out() -> Response:
    """Revoke the cookie's token (if any) and clear the cookie."""
    stores = _stores()
    token = request.cookies.get(COOKIE, "")
    if stores is not None and token:
        stores[1].revoke(token)
    response = _answer(200, account=None)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Strict", secure=request.is_secure)
    return response
