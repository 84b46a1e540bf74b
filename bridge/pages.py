"""Page routes: the chat page itself and a health check. No chat logic lives here."""

from __future__ import annotations

from typing import Any, Protocol

from flask import Blueprint, Response, current_app, jsonify, render_template

bp = Blueprint("pages", __name__)


class HubStats(Protocol):
    """What /healthz needs of the chat server's hub."""

    def user_count(self) -> int:
        """How many registered users are online."""
        ...

    def rooms(self) -> list[Any]:
        """Every room (only the count is used)."""
        ...


@bp.get("/")
def index() -> str:
    """The chat page; everything dynamic happens in its scripts, over /ws."""
    return render_template("index.html", network=current_app.config.get("LOBBY_NETWORK", "Lobby"))


@bp.get("/healthz")
def healthz() -> Response:
    """JSON for monitors: status, users online and room count, from the live hub."""
    hub: HubStats | None = current_app.config.get("LOBBY_HUB")
    if hub is None:
        response = jsonify(status="ok", users=0, rooms=0)
    else:
        response = jsonify(status="ok", users=hub.user_count(), rooms=len(hub.rooms()))
    response.headers["Cache-Control"] = "no-store"
    return response
