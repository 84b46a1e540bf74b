"""Multiclient (as Ergo's): one account signed in from several connections at once is one user.

A connection that signs in (SASL, before registration completes) to the account of a user
who is online under the nick it asks for attaches to that user instead of being refused the
nick: it gets the welcome with the shared nick and the user's rooms (JOIN, topic, names, for
itself alone), and from then on the user is a SharedUser (core/client.py) in the hub:

- per user (UserState, shared): nick, ident, real name, account, away, modes, rooms;
- per connection (Client): capabilities, labels, batches, MONITOR list, its outbox.

What reaches the user reaches every connection, each rendered for its own capabilities;
what one connection says is echoed to the others (echo-message for itself, as before);
JOIN, PART and NICK by one are the user's. One connection leaving is seen by nobody while
another remains; the last one's QUIT is the user's.
"""

from __future__ import annotations

from ..irc import Message, fold
from ..irc import numerics as n
from .chat import Chat
from .client import Client
from .replay import replay_on_join
from .rooms import send_names, send_topic


def attachable(chat: Chat, client: Client) -> Client | None:
    """The user client may attach to: online here under client's nick, signed in to client's account."""
    if not chat.config.multiclient or client.account is None:
        return None
    holder = chat.hub.find(client.nick)
    if not isinstance(holder, Client) or not holder.registered or holder.account is None:
        return None
    return holder if fold(holder.account) == fold(client.account) else None


def shows_in_use(chat: Chat, client: Client, nick: str) -> bool:
    """Whether NICK before registration should be refused as in use; a signed-in user's nick is
    left for registration to decide (the connection may yet sign in to that account and attach)."""
    holder = chat.hub.find(nick)
    if holder is None:
        return False
    return not (chat.config.multiclient and isinstance(holder, Client) and holder.account is not None)


def rejoin(chat: Chat, client: Client) -> None:
    """The user's rooms, for a connection that just attached: JOIN, topic, names and recent lines."""
    for name in chat.hub.rooms_of(client):
        view = chat.hub.room(name, client)
        if view is None:
            continue
        extended = client.has("extended-join")
        params = (view.name, client.account or "*", client.realname) if extended else (view.name,)
        client.send(Message("JOIN", params, client.prefix))
        if view.topic:
            send_topic(client, view.name, view.topic, view.topic_setter, view.topic_time)
        if not client.has("no-implicit-names"):
            send_names(client, view)
        replay_on_join(client, view.name, chat.recent(client, view.name))
    if client.away:
        client.send_numeric(n.RPL_NOWAWAY, "You have been marked as being away")
