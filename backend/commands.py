"""The command table and the handlers for a registered user's commands.

Each command is declared once with its minimum parameter count and whether it
needs a registered connection; dispatch() checks both before the handler runs
(Ergo's shape). Handlers raise IrcError to answer with a numeric.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import numerics as n
from .chathistory import handle_chathistory
from .cluster import RemoteUser
from .envelope import Envelope
from .numerics import IrcError
from .protocol import MAX_LINE_BYTES, Message, fold, is_valid_channel
from .registration import (
    TOPIC_MAX,
    handle_cap,
    handle_pass,
    handle_user,
    handle_webirc,
    send_motd,
    try_register,
    validate_nick,
)

if TYPE_CHECKING:
    from .session import Session

Handler = Callable[["Session", Message], None]
MAX_TARGETS = 4


@dataclass(frozen=True)
class Command:
    """A command's handler and the checks made before it runs."""

    handler: Handler
    min_params: int = 0
    needs_registration: bool = True


def dispatch(session: Session, msg: Message) -> None:
    """Run the handler for msg, answering problems with numerics, never raising."""
    command = COMMANDS.get(msg.command)
    try:
        if command is None:
            if not session.registered:
                raise IrcError(n.ERR_NOTREGISTERED, "You have not registered")
            raise IrcError(n.ERR_UNKNOWNCOMMAND, msg.command, "Unknown command")
        if command.needs_registration and not session.registered:
            raise IrcError(n.ERR_NOTREGISTERED, "You have not registered")
        if len(msg.params) < command.min_params or (command.min_params and not msg.params[0]):
            raise IrcError(n.ERR_NEEDMOREPARAMS, msg.command, "Not enough parameters")
        command.handler(session, msg)
    except IrcError as err:
        session.send_numeric(err.numeric, *err.params)


# -- identity -----------------------------------------------------------------


def handle_nick(session: Session, msg: Message) -> None:
    """NICK <nick>: choose a nick before registration or change it after."""
    if not msg.params or not msg.params[0]:
        raise IrcError(n.ERR_NONICKNAMEGIVEN, "No nickname given")
    nick = msg.params[0]
    validate_nick(nick)
    hub = session.server.hub
    if not session.registered:
        holder = hub.find(nick)
        if holder is not None:
            raise IrcError(n.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
        session.nick = nick
        try_register(session)
        return
    if nick == session.nick:
        return
    old_nick, old_prefix = session.nick, session.prefix
    backplane = hub.backplane
    # The cluster-wide claim comes first (a Redis call, so outside the hub's lock).
    claimed = backplane.claim(nick) if backplane is not None and fold(nick) != fold(old_nick) else False
    try:
        told = hub.rename(session, nick)
    except IrcError:
        if claimed and backplane is not None:
            backplane.release(nick)
        raise
    envelope = Envelope(Message("NICK", (nick,), old_prefix))
    for member in told:
        member.deliver(envelope)
    if backplane is not None:
        backplane.renamed(old_nick, session, hub.rooms_of(session), envelope)


def handle_quit(session: Session, msg: Message) -> None:
    """QUIT [reason]: leave; everyone who shared a room sees the reason."""
    reason = msg.param(0)
    session.quit_reason = f"Quit: {reason}" if reason else "Quit"
    session.kill(session.quit_reason)


def handle_ping(session: Session, msg: Message) -> None:
    """PING <token>: answer PONG with the same token."""
    server = session.server.config.server_name
    session.send(Message("PONG", (server, msg.params[0]), server))


def handle_pong(session: Session, msg: Message) -> None:
    """PONG: the client is alive; any line proves that, so just clear the pending ping."""
    session.ping_sent = None


def handle_away(session: Session, msg: Message) -> None:
    """AWAY [message]: set or clear the away message."""
    text = msg.param(0)
    session.away = text or None
    if session.server.hub.backplane is not None:
        session.server.hub.backplane.away(session)
    if text:
        session.send_numeric(n.RPL_NOWAWAY, "You have been marked as being away")
    else:
        session.send_numeric(n.RPL_UNAWAY, "You are no longer marked as being away")


# -- rooms ----------------------------------------------------------------------


def handle_join(session: Session, msg: Message) -> None:
    """JOIN <#room>{,<#room>}: enter rooms, creating them on first join. JOIN 0 leaves all."""
    if msg.params[0] == "0":
        for name in session.server.hub.rooms_of(session):
            part(session, name, "Left all channels")
        return
    for name in msg.params[0].split(","):
        try:
            join(session, name)
        except IrcError as err:
            session.send_numeric(err.numeric, *err.params)


def join(session: Session, name: str) -> None:
    """Join one room and send the joiner its topic and names."""
    if not is_valid_channel(name):
        raise IrcError(n.ERR_NOSUCHCHANNEL, name or "*", "Invalid channel name: use # then no spaces or commas")
    server = session.server
    hub = server.hub
    if len(hub.rooms_of(session)) >= server.config.max_rooms_per_user:
        raise IrcError(n.ERR_TOOMANYCHANNELS, name, "You have joined too many channels")
    # From the moment others can see the joiner, lines said in the room reach them live;
    # the replay must not show those again.
    session.joining = set()
    try:
        result = hub.join(session, name)
        if result is None:
            return
        view, members = result
        envelope = Envelope(Message("JOIN", (view.name,), session.prefix))
        for member in members:
            member.deliver(envelope)
        if hub.backplane is not None:
            hub.backplane.joined(session, view.name, envelope)
        send_topic(session, view.name, view.topic, view.topic_setter, view.topic_time)
        send_names(session, view.name, view.nicks)
        server.on_join(session, view.name)
    finally:
        session.joining = None


def send_topic(session: Session, room: str, topic: str, setter: str, when: float) -> None:
    """332 and 333 for a room with a topic, 331 for one without."""
    if not topic:
        session.send_numeric(n.RPL_NOTOPIC, room, "No topic is set")
        return
    session.send_numeric(n.RPL_TOPIC, room, topic)
    session.send_numeric(n.RPL_TOPICWHOTIME, room, setter, str(int(when)))


def send_names(session: Session, room: str, nicks: tuple[str, ...] | list[str]) -> None:
    """353 lines packed to fit the line limit, then 366."""
    head = f":{session.server.config.server_name} {n.RPL_NAMREPLY} {session.nick} = {room} :"
    room_budget = MAX_LINE_BYTES - 2 - len(head.encode("utf-8"))
    line: list[str] = []
    size = 0
    for nick in nicks:
        cost = len(nick.encode("utf-8")) + 1
        if line and size + cost > room_budget:
            session.send_numeric(n.RPL_NAMREPLY, "=", room, " ".join(line))
            line, size = [], 0
        line.append(nick)
        size += cost
    if line:
        session.send_numeric(n.RPL_NAMREPLY, "=", room, " ".join(line))
    session.send_numeric(n.RPL_ENDOFNAMES, room, "End of /NAMES list")


def handle_part(session: Session, msg: Message) -> None:
    """PART <#room>{,<#room>} [reason]."""
    for name in msg.params[0].split(","):
        try:
            part(session, name, msg.param(1))
        except IrcError as err:
            session.send_numeric(err.numeric, *err.params)


def part(session: Session, name: str, reason: str) -> None:
    """Leave one room; its members, and the leaver, see the PART."""
    hub = session.server.hub
    room, told = hub.part(session, name)
    params = (room, reason) if reason else (room,)
    envelope = Envelope(Message("PART", params, session.prefix))
    for member in told:
        member.deliver(envelope)
    if hub.backplane is not None:
        hub.backplane.parted(session, room, envelope)


def handle_topic(session: Session, msg: Message) -> None:
    """TOPIC <#room> [text]: show the topic, or set it (any member may)."""
    hub = session.server.hub
    name = msg.params[0]
    if len(msg.params) == 1:
        view = hub.room(name)
        if view is None:
            raise IrcError(n.ERR_NOSUCHCHANNEL, name, "No such channel")
        send_topic(session, view.name, view.topic, view.topic_setter, view.topic_time)
        return
    text = msg.params[1][:TOPIC_MAX]
    room, members = hub.set_topic(session, name, text)
    envelope = Envelope(Message("TOPIC", (room, text), session.prefix))
    session.server.on_room_event(room, envelope)  # stored first, as in send_message
    for member in members:
        member.deliver(envelope)
    if hub.backplane is not None:
        hub.backplane.topic(room, envelope)


def handle_names(session: Session, msg: Message) -> None:
    """NAMES [#room{,#room}]: who is in each room."""
    if not msg.params or not msg.params[0]:
        session.send_numeric(n.RPL_ENDOFNAMES, "*", "End of /NAMES list")
        return
    for name in msg.params[0].split(","):
        view = session.server.hub.room(name)
        send_names(session, view.name if view else name, view.nicks if view else ())


def handle_list(session: Session, msg: Message) -> None:
    """LIST: every room with its member count and topic."""
    session.send_numeric(n.RPL_LISTSTART, "Channel", "Users  Name")
    wanted = {fold(x) for x in msg.param(0).split(",") if x}
    for view in session.server.hub.rooms():
        if not wanted or fold(view.name) in wanted:
            session.send_numeric(n.RPL_LIST, view.name, str(len(view.nicks)), view.topic)
    session.send_numeric(n.RPL_LISTEND, "End of /LIST")


def handle_who(session: Session, msg: Message) -> None:
    """WHO <#room|nick>: a 352 line per matching user, then 315."""
    mask = msg.params[0]
    hub = session.server.hub
    server = session.server.config.server_name
    if mask.startswith("#"):
        view = hub.room(mask)
        channel = view.name if view else mask
        users = hub.members_of(mask)
    else:
        found = hub.find(mask)
        users = [found] if found else []
        channel = "*"
    for user in users:
        flags = "G" if getattr(user, "away", None) else "H"
        session.send_numeric(
            n.RPL_WHOREPLY, channel, getattr(user, "user", user.nick), getattr(user, "host", server),
            server, user.nick, flags, f"0 {getattr(user, 'realname', '')}",
        )
    session.send_numeric(n.RPL_ENDOFWHO, mask, "End of /WHO list")


def handle_whois(session: Session, msg: Message) -> None:
    """WHOIS <nick>: who a user is and which rooms they are in."""
    nick = msg.params[-1]
    hub = session.server.hub
    user = hub.find(nick)
    if user is None:
        raise IrcError(n.ERR_NOSUCHNICK, nick, "No such nick")
    cfg = session.server.config
    session.send_numeric(n.RPL_WHOISUSER, user.nick, getattr(user, "user", ""), getattr(user, "host", ""),
                         "*", getattr(user, "realname", ""))
    rooms = hub.rooms_of(user)
    if rooms:
        session.send_numeric(n.RPL_WHOISCHANNELS, user.nick, " ".join(rooms))
    session.send_numeric(n.RPL_WHOISSERVER, user.nick, cfg.server_name, cfg.network)
    away = getattr(user, "away", None)
    if away:
        session.send_numeric(n.RPL_AWAY, user.nick, away)
    session.send_numeric(n.RPL_ENDOFWHOIS, user.nick, "End of /WHOIS list")


def handle_ison(session: Session, msg: Message) -> None:
    """ISON <nick>...: which of these nicks are online."""
    hub = session.server.hub
    online = [u.nick for nick in " ".join(msg.params).split() if (u := hub.find(nick))]
    session.send_numeric(n.RPL_ISON, " ".join(online))


def handle_mode(session: Session, msg: Message) -> None:
    """MODE: rooms and users have no modes to change here; queries get the empty answer."""
    target = msg.params[0]
    hub = session.server.hub
    if target.startswith("#"):
        view = hub.room(target)
        if view is None:
            raise IrcError(n.ERR_NOSUCHCHANNEL, target, "No such channel")
        if len(msg.params) > 1 and msg.params[1] not in ("b", "+b"):
            raise IrcError(n.ERR_CHANOPRIVSNEEDED, view.name, "Channel modes cannot be changed here")
        if len(msg.params) > 1:
            session.send_numeric(n.RPL_ENDOFBANLIST, view.name, "End of channel ban list")
            return
        session.send_numeric(n.RPL_CHANNELMODEIS, view.name, "+")
        session.send_numeric(n.RPL_CREATIONTIME, view.name, str(int(view.created)))
        return
    if fold(target) != fold(session.nick):
        raise IrcError(n.ERR_USERSDONTMATCH, "Cannot change mode for other users")
    if len(msg.params) > 1:
        raise IrcError(n.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
    session.send_numeric(n.RPL_UMODEIS, "+")


def handle_motd(session: Session, msg: Message) -> None:
    """MOTD: the message of the day again."""
    send_motd(session)


# -- messages -------------------------------------------------------------------


def handle_privmsg(session: Session, msg: Message) -> None:
    """PRIVMSG/NOTICE <target>{,<target>} <text>: to a room's members or one user."""
    if not msg.params or not msg.params[0]:
        raise IrcError(n.ERR_NORECIPIENT, f"No recipient given ({msg.command})")
    if len(msg.params) < 2 or not msg.params[1]:
        raise IrcError(n.ERR_NOTEXTTOSEND, "No text to send")
    targets = msg.params[0].split(",")
    if len(targets) > MAX_TARGETS:
        raise IrcError(n.ERR_TOOMANYTARGETS, msg.params[0], f"Too many targets (at most {MAX_TARGETS})")
    client_tags = {k: v for k, v in msg.tags.items() if k.startswith("+")}
    for target in targets:
        try:
            send_message(session, msg.command, target, msg.params[1], client_tags)
        except IrcError as err:
            session.send_numeric(err.numeric, *err.params)


def send_message(session: Session, command: str, target: str, text: str, tags: dict[str, str]) -> None:
    """Deliver one PRIVMSG/NOTICE to a room or a nick."""
    server = session.server
    echo = "echo-message" in session.caps
    if target.startswith("#"):
        try:
            room = server.hub.require_member(session, target)
        except IrcError as err:
            if err.numeric != n.ERR_NOTONCHANNEL:
                raise
            raise IrcError(n.ERR_CANNOTSENDTOCHAN, target, "Cannot send to channel (join it first)") from None
        envelope = Envelope(Message(command, (room, text), session.prefix, tags))
        # Stored first: someone joining meanwhile either is among those it is delivered to
        # or reads it in the replay (the history thread takes the store before their read).
        server.on_room_event(room, envelope)
        server.hub.publish(room, envelope, exclude=None if echo else session)
        return
    user = server.hub.find(target)
    if user is None:
        raise IrcError(n.ERR_NOSUCHNICK, target, "No such nick")
    envelope = Envelope(Message(command, (user.nick, text), session.prefix, tags))
    if isinstance(user, RemoteUser) and server.hub.backplane is not None:
        server.hub.backplane.private(user, envelope)
    else:
        user.deliver(envelope)
    if echo and user is not session:
        session.deliver(envelope)
    away = getattr(user, "away", None)
    if away and command == "PRIVMSG":
        session.send_numeric(n.RPL_AWAY, user.nick, away)


COMMANDS: dict[str, Command] = {
    "CAP": Command(handle_cap, 1, needs_registration=False),
    "WEBIRC": Command(handle_webirc, 4, needs_registration=False),
    "PASS": Command(handle_pass, 1, needs_registration=False),
    "NICK": Command(handle_nick, 0, needs_registration=False),
    "USER": Command(handle_user, 4, needs_registration=False),
    "PING": Command(handle_ping, 1, needs_registration=False),
    "PONG": Command(handle_pong, 0, needs_registration=False),
    "QUIT": Command(handle_quit, 0, needs_registration=False),
    "JOIN": Command(handle_join, 1),
    "PART": Command(handle_part, 1),
    "TOPIC": Command(handle_topic, 1),
    "NAMES": Command(handle_names),
    "LIST": Command(handle_list),
    "WHO": Command(handle_who, 1),
    "WHOIS": Command(handle_whois, 1),
    "ISON": Command(handle_ison, 1),
    "MODE": Command(handle_mode, 1),
    "MOTD": Command(handle_motd),
    "AWAY": Command(handle_away),
    "CHATHISTORY": Command(handle_chathistory, 3),
    "PRIVMSG": Command(handle_privmsg),
    "NOTICE": Command(handle_privmsg),
}
