"""Who hears of a user's changes that are not said in a room: AWAY (away-notify) and SETNAME (setname).

Those who share a room with the user and negotiated the capability, and, with
extended-monitor, those who MONITOR them. The cluster's mirror asks the same
questions for users of other nodes, so both deliver alike.
"""

from __future__ import annotations

from .chat import Chat
from .client import Client
from .hub import Member


def peers_with(chat: Chat, user: Member, cap: str) -> list[Client]:
    """This node's clients who share a room with user and negotiated cap."""
    return [peer for peer in chat.hub.peers(user) if isinstance(peer, Client) and peer.has(cap)]


def told_of_change(chat: Chat, user: Member, cap: str) -> list[Client]:
    """Who must see user's AWAY (cap away-notify) or SETNAME (cap setname), each once."""
    told = [*peers_with(chat, user, cap), *chat.monitors.extended(user, cap)]
    if isinstance(user, Client) and user.has(cap) and cap == "setname":
        told.append(user)  # setname: the user's own client is told it took effect
    return list(dict.fromkeys(told))
