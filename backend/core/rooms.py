"""Room commands: JOIN, PART, TOPIC, NAMES, LIST, and the topic and names replies."""

from __future__ import annotations

from ..irc import MAX_LINE_BYTES, IrcError, Message, fold, is_valid_channel
from ..irc import numerics as n
from .chat import Chat
from .client import Client
from .envelope import Envelope
from .events import Joined, Parted, TopicChanged
from .replay import replay_on_join

TOPIC_MAX = 390


def handle_join(chat: Chat, client: Client, msg: Message) -> None:
    """JOIN <#room>{,<#room>}: enter rooms, creating them on first join. JOIN 0 leaves all."""
    if msg.params[0] == "0":
        for name in chat.hub.rooms_of(client):
            leave_room(chat, client, name, "Left all channels")
        return
    for name in msg.params[0].split(","):
        try:
            enter_room(chat, client, name)
        except IrcError as err:
            client.send_numeric(err.numeric, *err.params)


def enter_room(chat: Chat, client: Client, name: str) -> None:
    """Join one room: everyone in it sees the JOIN; the joiner gets its topic, names and recent history."""
    if not is_valid_channel(name):
        raise IrcError(n.ERR_NOSUCHCHANNEL, name or "*", "Invalid channel name: use # then no spaces or commas")
    hub = chat.hub
    if len(hub.rooms_of(client)) >= chat.config.max_rooms_per_user:
        raise IrcError(n.ERR_TOOMANYCHANNELS, name, "You have joined too many channels")
    # From the moment others can see the joiner, lines said in the room reach them live;
    # the replay must not show those again.
    client.joining = set()
    try:
        result = hub.join(client, name)
        if result is None:
            return
        view, members = result
        envelope = Envelope(Message("JOIN", (view.name,), client.prefix))
        chat.publish(Joined(client, view.name, envelope), members)
        send_topic(client, view.name, view.topic, view.topic_setter, view.topic_time)
        send_names(client, view.name, view.nicks)
        replay_on_join(client, view.name, chat.recent(client, view.name))
    finally:
        client.joining = None


def send_topic(client: Client, room: str, topic: str, setter: str, when: float) -> None:
    """332 and 333 for a room with a topic, 331 for one without."""
    if not topic:
        client.send_numeric(n.RPL_NOTOPIC, room, "No topic is set")
        return
    client.send_numeric(n.RPL_TOPIC, room, topic)
    client.send_numeric(n.RPL_TOPICWHOTIME, room, setter, str(int(when)))


def send_names(client: Client, room: str, nicks: tuple[str, ...] | list[str]) -> None:
    """353 lines packed to fit the line limit, then 366."""
    head = f":{client.server_name} {n.RPL_NAMREPLY} {client.nick} = {room} :"
    room_budget = MAX_LINE_BYTES - 2 - len(head.encode("utf-8"))
    line: list[str] = []
    size = 0
    for nick in nicks:
        cost = len(nick.encode("utf-8")) + 1
        if line and size + cost > room_budget:
            client.send_numeric(n.RPL_NAMREPLY, "=", room, " ".join(line))
            line, size = [], 0
        line.append(nick)
        size += cost
    if line:
        client.send_numeric(n.RPL_NAMREPLY, "=", room, " ".join(line))
    client.send_numeric(n.RPL_ENDOFNAMES, room, "End of /NAMES list")


def handle_part(chat: Chat, client: Client, msg: Message) -> None:
    """PART <#room>{,<#room>} [reason]."""
    for name in msg.params[0].split(","):
        try:
            leave_room(chat, client, name, msg.param(1))
        except IrcError as err:
            client.send_numeric(err.numeric, *err.params)


def leave_room(chat: Chat, client: Client, name: str, reason: str) -> None:
    """Leave one room; its members, and the leaver, see the PART."""
    room, told = chat.hub.part(client, name)
    params = (room, reason) if reason else (room,)
    envelope = Envelope(Message("PART", params, client.prefix))
    chat.publish(Parted(client, room, envelope), told)


def handle_topic(chat: Chat, client: Client, msg: Message) -> None:
    """TOPIC <#room> [text]: show the topic, or set it (any member may)."""
    name = msg.params[0]
    if len(msg.params) == 1:
        view = chat.hub.room(name)
        if view is None:
            raise IrcError(n.ERR_NOSUCHCHANNEL, name, "No such channel")
        send_topic(client, view.name, view.topic, view.topic_setter, view.topic_time)
        return
    text = msg.params[1][:TOPIC_MAX]
    room, members = chat.hub.set_topic(client, name, text)
    envelope = Envelope(Message("TOPIC", (room, text), client.prefix))
    chat.store(room, envelope)
    chat.publish(TopicChanged(room, envelope), members)


def handle_names(chat: Chat, client: Client, msg: Message) -> None:
    """NAMES [#room{,#room}]: who is in each room."""
    if not msg.params or not msg.params[0]:
        client.send_numeric(n.RPL_ENDOFNAMES, "*", "End of /NAMES list")
        return
    for name in msg.params[0].split(","):
        view = chat.hub.room(name)
        send_names(client, view.name if view else name, view.nicks if view else ())


def handle_list(chat: Chat, client: Client, msg: Message) -> None:
    """LIST: every room with its member count and topic."""
    client.send_numeric(n.RPL_LISTSTART, "Channel", "Users  Name")
    wanted = {fold(x) for x in msg.param(0).split(",") if x}
    for view in chat.hub.rooms():
        if not wanted or fold(view.name) in wanted:
            client.send_numeric(n.RPL_LIST, view.name, str(len(view.nicks)), view.topic)
    client.send_numeric(n.RPL_LISTEND, "End of /LIST")
