"""Who hears of a user's changes that are not said in a room: AWAY (away-notify) and SETNAME (setname).

Those who share a room with the user and negotiated the capability, and, with
extended-monitor, those who MONITOR them. The cluster's mirror asks the same
questions for users of other nodes, so both deliver alike.
"""

from __future__ import annotations

from .chat import Chat
from .client import Client, connections_with
from .hub import Member


def peers_with(chat: Chat, user: Member, cap: str) -> list[Client]:
    """This node's connections (each of a multiclient user's) that share a room with user and negotiated cap."""
    return connections_with(chat.hub.peers(user), cap)


def told_of_change(chat: Chat, user: Member, cap: str) -> list[Client]:
    """Who must see user's AWAY (cap away-notify) or SETNAME (cap setname), each once."""
    told = [*peers_with(chat, user, cap), *chat.monitors.extended(user, cap)]
    if isinstance(user, Client) and cap == "setname":
        told += connections_with((user.member,), cap)  # setname: the user's own clients are told it took effect
    return list(dict.fromkeys(told))
