"""MODE: room modes (none can be set yet; queries are answered) and user modes +i (invisible) and +B (bot)."""

from __future__ import annotations

from ..irc import IrcError, Message, fold
from ..irc import numerics as n
from .chat import Chat
from .client import Client

USER_MODES = frozenset("iB")


def handle_mode(chat: Chat, client: Client, msg: Message) -> None:
    """MODE <#room|nick> [changes]."""
    target = msg.params[0]
    if target.startswith("#"):
        _room_mode(chat, client, msg)
        return
    if fold(target) != fold(client.nick):
        if chat.hub.find(target) is None:
            raise IrcError(n.ERR_NOSUCHNICK, target, "No such nick")
        raise IrcError(n.ERR_USERSDONTMATCH, "Cannot change mode for other users")
    if len(msg.params) == 1:
        client.send_numeric(n.RPL_UMODEIS, "+" + "".join(sorted(client.modes)))
        return
    was_invisible = "i" in client.modes
    applied = _apply_user_modes(client, msg.params[1])
    chat.count(invisible=("i" in client.modes) - was_invisible)
    if applied:
        client.send(Message("MODE", (client.nick, applied), client.prefix))


def _apply_user_modes(client: Client, changes: str) -> str:
    """Apply +i/-i/+B/-B; answer 501 once for unknown letters; return the modes that changed."""
    adding = True
    changed: list[tuple[bool, str]] = []
    unknown = False
    for letter in changes:
        if letter in "+-":
            adding = letter == "+"
        elif letter not in USER_MODES:
            unknown = True
        elif adding != (letter in client.modes):
            (client.modes.add if adding else client.modes.discard)(letter)
            changed.append((adding, letter))
    if unknown:
        client.send_numeric(n.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
    out = ""
    sign = ""
    for add, letter in changed:
        want = "+" if add else "-"
        if want != sign:
            out += want
            sign = want
        out += letter
    return out


def _room_mode(chat: Chat, client: Client, msg: Message) -> None:
    target = msg.params[0]
    view = chat.hub.room(target)
    if view is None:
        raise IrcError(n.ERR_NOSUCHCHANNEL, target, "No such channel")
    if len(msg.params) == 1:
        client.send_numeric(n.RPL_CHANNELMODEIS, view.name, "+")
        client.send_numeric(n.RPL_CREATIONTIME, view.name, str(int(view.created)))
        return
    if msg.params[1] in ("b", "+b"):
        client.send_numeric(n.RPL_ENDOFBANLIST, view.name, "End of channel ban list")
        return
    raise IrcError(n.ERR_CHANOPRIVSNEEDED, view.name, "Channel modes cannot be changed here")
