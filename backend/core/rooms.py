"""Room commands: JOIN, PART, TOPIC, NAMES, LIST, and the topic and names replies."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..irc import MAX_LINE_BYTES, IrcError, Message, fold, is_valid_channel
from ..irc import numerics as n
from .chat import Chat
from .client import Client, connections_with
from .envelope import Envelope
from .events import Joined, ModeChanged, Parted, TopicChanged
from .hub import RoomView
from .masks import matches
from .replay import replay_on_join

TOPIC_MAX = 390


def handle_join(chat: Chat, client: Client, msg: Message) -> None:
    """JOIN <#room>{,<#room>}: enter rooms, creating them on first join. JOIN 0 leaves all."""
    if msg.params[0] == "0":
        for name in chat.hub.rooms_of(client):
            leave_room(chat, client, name, "Left all channels")
        return
    keys = msg.param(1).split(",")
    for index, name in enumerate(msg.params[0].split(",")):
        try:
            enter_room(chat, client, name, keys[index] if index < len(keys) else "")
        except IrcError as err:
            client.send_numeric(err.numeric, *err.params)


def enter_room(chat: Chat, client: Client, name: str, key: str = "") -> None:
    """Join one room: everyone in it sees the JOIN; the joiner gets its topic, names and recent history."""
    if not is_valid_channel(name):
        raise IrcError(n.ERR_NOSUCHCHANNEL, name or "*", (
            "Invalid channel name: use # then up to 49 visible characters, without spaces, commas, "
            "colons or invisible, control or text-direction characters"))
    hub = chat.hub
    if len(hub.rooms_of(client)) >= chat.config.max_rooms_per_user:
        raise IrcError(n.ERR_TOOMANYCHANNELS, name, "You have joined too many channels")
    # From the moment others can see the joiner, lines said in the room reach them live;
    # the replay must not show those again.
    client.joining = set()
    try:
        made: list[Envelope] = []  # the JOIN welcome() made, for the cluster

        def welcome(view: RoomView) -> tuple[Envelope, Envelope]:
            short = Envelope(Message("JOIN", (view.name,), client.prefix))
            # extended-join: those who asked see the joiner's account and real name in the JOIN.
            long = Envelope(Message("JOIN", (view.name, client.account or "*", client.realname), client.prefix),
                            short.time, short.msgid)
            made.append(short)
            client.echo(long if client.has("extended-join") else short)
            for other in client.others():
                # The user's other connections (multiclient) joined too: each gets the JOIN as the
                # joiner does (the join burst leaves them out), then the room.
                other.deliver(long if other.has("extended-join") else short)
            for conn in (client, *client.others()):
                # Modern: "If the channel has no topic, the server SHOULD NOT send" 331 on JOIN.
                if view.topic:
                    send_topic(conn, view.name, view.topic, view.topic_setter, view.topic_time)
                if not conn.has("no-implicit-names"):
                    send_names(conn, view)
            return short, long

        # The other members are told in batches (core/joinburst.py): in a join storm, one
        # delivery per member per batch rather than per join.
        result = chat.joins.join(client, name, key, "o" in client.modes, client.account, welcome)
        if result is None:
            return
        view, members = result  # members: who sees the joiner (+D and +u may hide them from some)
        envelope = made[0]
        # Not through Chat.publish: its drain would deliver this JOIN from here at once.
        chat.cluster.publish(Joined(client.member, view.name, envelope))
        if client.account is not None and view.size == 1:
            chat.save_room(view.name)  # a room just founded by an account: kept, founder and all
        user = client.member
        if client.account is not None and view.size > 1 and view.status[view.members.index(user)][:1] == "@":
            # The founder came back to a room with people in it: they see the server make them its operator.
            mode = Envelope(Message("MODE", (view.name, "+o", client.nick), chat.config.server_name))
            chat.publish(ModeChanged(view.name, mode), members)
        if client.away:
            # away-notify: "servers SHOULD send an AWAY message ... when a user joins a channel".
            away = Envelope(Message("AWAY", (client.away,), client.prefix))
            chat.joins.drain()  # after the JOIN
            for conn in connections_with((m for m in members if m is not user), "away-notify"):
                conn.deliver(away)
        replay_on_join(client, view.name, chat.recent(client, view.name))
    finally:
        client.joining = None


def show_member(chat: Chat, client: Client, room: str) -> None:
    """A member hidden in a room (+D) spoke there: the others see their JOIN first (and, with
    away-notify, that they are away, as after any JOIN). Nothing if they were not hidden."""
    sight = chat.joins.reveal(client, room)
    if sight is None or not client.away:
        return
    seers = sight.to if sight.to is not None else [m for m in chat.hub.members_of(room) if m is not client.member]
    away = Envelope(Message("AWAY", (client.away,), client.prefix))
    chat.joins.drain()  # after the JOIN
    for conn in connections_with(seers, "away-notify"):
        conn.deliver(away)


def send_topic(client: Client, room: str, topic: str, setter: str, when: float) -> None:
    """332 and 333 for a room with a topic, 331 for one without."""
    if not topic:
        client.send_numeric(n.RPL_NOTOPIC, room, "No topic is set")
        return
    client.send_numeric(n.RPL_TOPIC, room, topic)
    # A topic from the configuration was set by nobody in particular: the server.
    client.send_numeric(n.RPL_TOPICWHOTIME, room, setter or client.server_name, str(int(when)))


def send_names(client: Client, view: RoomView | None, name: str = "") -> None:
    """353 lines packed to fit the line limit, then 366: @ for operators, + for voice (both with
    multi-prefix), nick!user@host with userhost-in-names. A secret room shows outsiders nobody."""
    room = view.name if view is not None else name
    nicks: list[str] = []
    kind = "="
    if view is not None and (not view.secret or view.has(client)):
        nicks = view.names(client.has("multi-prefix"), client.has("userhost-in-names"))
        kind = "@" if view.secret else "="
    head = f":{client.server_name} {n.RPL_NAMREPLY} {client.nick} {kind} {room} :"
    room_budget = MAX_LINE_BYTES - 2 - len(head.encode("utf-8"))
    text = " ".join(nicks)
    if text.isascii():
        # Every join sends the whole room: cut the joined text at spaces rather than adding up
        # each nick's length (a character is a byte here). A line holds at most budget - 1.
        start = 0
        while len(text) - start > room_budget - 1:
            cut = text.rfind(" ", start, start + room_budget)
            if cut <= start:  # one entry longer than a line: it goes alone, as below
                cut = text.find(" ", start + 1)
                cut = len(text) if cut < 0 else cut
            client.send_numeric(n.RPL_NAMREPLY, kind, room, text[start:cut])
            start = cut + 1
        if start < len(text):
            client.send_numeric(n.RPL_NAMREPLY, kind, room, text[start:])
        client.send_numeric(n.RPL_ENDOFNAMES, room, "End of /NAMES list")
        return
    line: list[str] = []
    size = 0
    for nick in nicks:
        cost = len(nick.encode("utf-8")) + 1
        if line and size + cost > room_budget:
            client.send_numeric(n.RPL_NAMREPLY, kind, room, " ".join(line))
            line, size = [], 0
        line.append(nick)
        size += cost
    if line:
        client.send_numeric(n.RPL_NAMREPLY, kind, room, " ".join(line))
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
    chat.publish(Parted(client.member, room, envelope), told, exclude=client)
    client.echo(envelope)


def handle_topic(chat: Chat, client: Client, msg: Message) -> None:
    """TOPIC <#room> [text]: show the topic, or set it (members may; only operators when the room is +t)."""
    name = msg.params[0]
    if len(msg.params) == 1:
        view = chat.hub.room(name)
        if view is None or (view.secret and not view.has(client)):
            raise IrcError(n.ERR_NOSUCHCHANNEL, name, "No such channel")
        send_topic(client, view.name, view.topic, view.topic_setter, view.topic_time)
        return
    text = msg.params[1][:TOPIC_MAX]
    room, members = chat.hub.set_topic(client, name, text, privileged="o" in client.modes)
    show_member(chat, client, room)  # changing the topic is speaking (+D)
    envelope = Envelope(Message("TOPIC", (room, text), client.prefix))
    chat.store(room, envelope)
    chat.publish(TopicChanged(room, envelope), members, exclude=client)
    client.echo(envelope)
    chat.save_room(room)


def handle_names(chat: Chat, client: Client, msg: Message) -> None:
    """NAMES [#room{,#room}]: who is in each room."""
    if not msg.params or not msg.params[0]:
        client.send_numeric(n.RPL_ENDOFNAMES, "*", "End of /NAMES list")
        return
    for name in msg.params[0].split(","):
        send_names(client, chat.hub.room(name, client), name)


def handle_list(chat: Chat, client: Client, msg: Message) -> None:
    """LIST [#room{,#room} | filters]: rooms with their member count and topic (ELIST=CMNTU filters)."""
    client.send_numeric(n.RPL_LISTSTART, "Channel", "Users  Name")
    wanted = ListFilter.parse(msg.param(0))
    now = time.time()
    for view in chat.hub.rooms():
        if wanted.accepts(view, now) and (not view.secret or view.has(client)):
            client.send_numeric(n.RPL_LIST, view.name, str(len(view.nicks)), view.topic)
    client.send_numeric(n.RPL_LISTEND, "End of /LIST")


@dataclass
class ListFilter:
    """LIST's argument: room names, masks (M, and N with !), user counts (U), creation and topic age (C, T)."""

    names: set[str] = field(default_factory=set)
    masks: list[str] = field(default_factory=list)
    not_masks: list[str] = field(default_factory=list)
    more_users: int = -1
    fewer_users: int | None = None
    # (field, "<" or ">", minutes): C<n created less than n minutes ago, T>n topic set more than n ago, ...
    ages: list[tuple[str, str, int]] = field(default_factory=list)

    @classmethod
    def parse(cls, spec: str) -> ListFilter:
        """The filter for a LIST argument; a malformed number leaves its term out."""
        wanted = cls()
        for item in (x for x in spec.split(",") if x):
            try:
                if item[0] == ">":
                    wanted.more_users = int(item[1:])
                elif item[0] == "<":
                    wanted.fewer_users = int(item[1:])
                elif item[:2].upper() in ("C<", "C>", "T<", "T>"):
                    wanted.ages.append((item[0].upper(), item[1], int(item[2:])))
                elif item.startswith("!"):
                    wanted.not_masks.append(item[1:])
                elif "*" in item or "?" in item:
                    wanted.masks.append(item)
                else:
                    wanted.names.add(fold(item))
            except ValueError:
                continue
        return wanted

    def accepts(self, view: RoomView, now: float) -> bool:
        """Whether a room passes every term."""
        users = len(view.nicks)
        if self.names and fold(view.name) not in self.names:
            return False
        if users <= self.more_users or (self.fewer_users is not None and users >= self.fewer_users):
            return False
        if any(not matches(mask, view.name) for mask in self.masks):
            return False
        if any(matches(mask, view.name) for mask in self.not_masks):
            return False
        for kind, op, minutes in self.ages:
            when = view.created if kind == "C" else view.topic_time
            if not when:
                return False
            age = now - when
            if (op == "<" and age >= minutes * 60) or (op == ">" and age <= minutes * 60):
                return False
        return True
