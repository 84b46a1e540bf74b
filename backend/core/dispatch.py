"""The command table: each IRC command once, with its minimum parameters and whether it needs registration.

dispatch() checks both before the handler runs (Ergo's shape). Handlers raise IrcError to
answer with a numeric; dispatch() turns it into the reply.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..irc import IrcError, Message
from ..irc import numerics as n
from .accounts import handle_authenticate, handle_register
from .chat import Chat
from .chathistory import handle_chathistory
from .client import Client
from .identity import handle_away, handle_nick, handle_ping, handle_pong, handle_quit, handle_setname
from .klines import handle_kline, handle_unkline
from .labels import labelled
from .messages import handle_privmsg, handle_tagmsg
from .moderation import handle_invite, handle_kick, handle_kill, handle_oper, handle_wallops
from .modes import handle_mode
from .multiline import collect, handle_batch
from .queries import (
    handle_ison,
    handle_monitor_command,
    handle_motd,
    handle_userhost,
    handle_who,
    handle_whois,
)
from .redaction import handle_redact
from .registration import handle_cap, handle_pass, handle_user, handle_webirc
from .rooms import handle_join, handle_list, handle_names, handle_part, handle_topic
from .search import handle_search
from .server_info import handle_admin, handle_info, handle_lusers, handle_time, handle_version

Handler = Callable[[Chat, Client, Message], None]


@dataclass(frozen=True)
class Command:
    """A command's handler and the checks made before it runs."""

    handler: Handler
    min_params: int = 0
    needs_registration: bool = True


def dispatch(chat: Chat, client: Client, msg: Message) -> None:
    """Run the handler for msg, answering problems with numerics, never raising IrcError.

    A command carrying a `label` tag from a client with labeled-response gets its replies
    labelled (core/labels.py).
    """
    label = msg.tags.get("label")
    if label and client.has("labeled-response") and client.has("batch"):
        with labelled(client, label):
            _run(chat, client, msg)
    else:
        _run(chat, client, msg)


def _run(chat: Chat, client: Client, msg: Message) -> None:
    if "batch" in msg.tags and client.batches and collect(client, msg):
        return  # a line of a multiline message: sent when its batch ends
    command = COMMANDS.get(msg.command)
    try:
        if command is None:
            if not client.registered:
                raise IrcError(n.ERR_NOTREGISTERED, "You have not registered")
            raise IrcError(n.ERR_UNKNOWNCOMMAND, msg.command, "Unknown command")
        if command.needs_registration and not client.registered:
            raise IrcError(n.ERR_NOTREGISTERED, "You have not registered")
        if len(msg.params) < command.min_params or (command.min_params and not msg.params[0]):
            raise IrcError(n.ERR_NEEDMOREPARAMS, msg.command, "Not enough parameters")
        command.handler(chat, client, msg)
    except IrcError as err:
        client.send_numeric(err.numeric, *err.params)


COMMANDS: dict[str, Command] = {
    "CAP": Command(handle_cap, 1, needs_registration=False),
    "AUTHENTICATE": Command(handle_authenticate, 1, needs_registration=False),
    "REGISTER": Command(handle_register, 3, needs_registration=False),
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
    "USERHOST": Command(handle_userhost, 1),
    "MONITOR": Command(handle_monitor_command, 1),
    "MODE": Command(handle_mode, 1),
    "MOTD": Command(handle_motd),
    "LUSERS": Command(handle_lusers),
    "VERSION": Command(handle_version),
    "TIME": Command(handle_time),
    "INFO": Command(handle_info),
    "ADMIN": Command(handle_admin),
    "AWAY": Command(handle_away),
    "SETNAME": Command(handle_setname, 1),
    "CHATHISTORY": Command(handle_chathistory, 3),
    "SEARCH": Command(handle_search, 1),
    "PRIVMSG": Command(handle_privmsg),
    "NOTICE": Command(handle_privmsg),
    "TAGMSG": Command(handle_tagmsg, 1),
    "BATCH": Command(handle_batch, 1),
    "KICK": Command(handle_kick, 2),
    "INVITE": Command(handle_invite, 2),
    "OPER": Command(handle_oper, 2),
    "KILL": Command(handle_kill, 2),
    "WALLOPS": Command(handle_wallops, 1),
    "REDACT": Command(handle_redact, 2),
    "KLINE": Command(handle_kline, 1),
    "UNKLINE": Command(handle_unkline, 1),
}
