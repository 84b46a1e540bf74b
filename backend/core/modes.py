"""MODE: room modes (core/room.py has their rules) and user modes +i (invisible), +B (bot), +w (wallops).

A server operator's +o is given by OPER, never by MODE; a user may drop it with MODE nick -o.
"""

from __future__ import annotations

from ..irc import IrcError, Message, fold
from ..irc import numerics as n
from .chat import Chat
from .client import Client
from .envelope import Envelope
from .events import ModeChanged
from .hub import Change, Member
from .joinburst import tell_sights
from .room import FLAG_MODES, LIST_MODES, STATUS_MODES

USER_MODES = frozenset("iBw")
# At most this many changes that take a parameter in one MODE (ISUPPORT MODES).
MODES_MAX = 6


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
        elif letter == "o" and not adding and "o" in client.modes:
            client.modes.discard("o")
            changed.append((False, "o"))
        elif letter not in USER_MODES:
            unknown = True
        elif adding != (letter in client.modes):
            (client.modes.add if adding else client.modes.discard)(letter)
            changed.append((adding, letter))
    if unknown:
        client.send_numeric(n.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
    return modestring(changed)


def modestring(changes: list[tuple[bool, str]]) -> str:
    """(adding, letter) pairs as a MODE string: a sign only where it changes, "+iB-w"."""
    out = ""
    sign = ""
    for adding, letter in changes:
        want = "+" if adding else "-"
        out += (want if want != sign else "") + letter
        sign = want
    return out


def _room_mode(chat: Chat, client: Client, msg: Message) -> None:
    """MODE #room: 324/329; MODE #room b|q: the list; MODE #room <changes> <args>: change, as an operator."""
    target = msg.params[0]
    view = chat.hub.room(target, asker=client)
    if view is None:
        raise IrcError(n.ERR_NOSUCHCHANNEL, target, "No such channel")
    if len(msg.params) == 1:
        client.send_numeric(n.RPL_CHANNELMODEIS, view.name, *view.modes)
        client.send_numeric(n.RPL_CREATIONTIME, view.name, str(int(view.created)))
        return
    changes, queries, unknown = parse_changes(msg.params[1], list(msg.params[2:]))
    for letter in unknown:
        client.send_numeric(n.ERR_UNKNOWNMODE, letter, "is an unknown mode character to me")
    for letter in queries:
        send_list(chat, client, view.name, letter)
    if not changes:
        return
    # Members a change brings into sight (+D, +u) have their JOINs queued before the MODE line;
    # those it takes out of sight are owed a PART after it.
    name, applied, refused, members, parts = chat.joins.change_modes(
        client, view.name, changes, privileged=is_oper(client))
    for err in refused:
        client.send_numeric(err.numeric, *err.params)
    if applied:
        publish_modes(chat, client.prefix, name, applied, members)
    tell_sights(chat.hub, name, parts)


def parse_changes(modestring: str, args: list[str]) -> tuple[list[Change], list[str], list[str]]:
    """A mode string and its arguments as (changes, list queries, unknown letters); at most MODES changes."""
    changes: list[Change] = []
    queries: list[str] = []
    unknown: list[str] = []
    adding = True
    for letter in modestring:
        if letter in "+-":
            adding = letter == "+"
            continue
        if letter in LIST_MODES:
            if not args:
                if letter not in queries:
                    queries.append(letter)
                continue
            changes.append(Change(adding, letter, args.pop(0)))
        elif letter in STATUS_MODES or letter == "k" or (letter == "l" and adding):
            if not args:
                if letter == "k" and not adding:
                    changes.append(Change(False, "k"))
                continue  # a change that needs a parameter and has none is left out, as Ergo does
            changes.append(Change(adding, letter, args.pop(0)))
        elif letter == "l" or letter in FLAG_MODES:
            changes.append(Change(adding, letter))
        elif letter not in unknown:
            unknown.append(letter)
        if len(changes) >= MODES_MAX:
            break
    return changes, queries, unknown


def send_list(chat: Chat, client: Client, room: str, letter: str) -> None:
    """367/368 for bans, 728/729 for quiets."""
    name, entries = chat.hub.entries(room, letter)
    for entry in entries:
        if letter == "b":
            client.send_numeric(n.RPL_BANLIST, name, entry.mask, entry.setter, str(int(entry.time)))
        else:
            client.send_numeric(n.RPL_QUIETLIST, name, "q", entry.mask, entry.setter, str(int(entry.time)))
    if letter == "b":
        client.send_numeric(n.RPL_ENDOFBANLIST, name, "End of channel ban list")
    else:
        client.send_numeric(n.RPL_ENDOFQUIETLIST, name, "q", "End of channel quiet list")


def publish_modes(chat: Chat, source: str, room: str, applied: list[Change], members: list[Member]) -> None:
    """Tell the room what changed, as one MODE line per MODES changes; keep the room's settings."""
    for start in range(0, len(applied), MODES_MAX):
        chunk = applied[start : start + MODES_MAX]
        letters = modestring([(change.adding, change.letter) for change in chunk])
        args = [change.arg for change in chunk if change.arg]
        envelope = Envelope(Message("MODE", (room, letters, *args), source))
        chat.publish(ModeChanged(room, envelope), members)
    chat.save_room(room)


def is_oper(client: Client) -> bool:
    """Whether client is a server operator (OPER): it may run any room."""
    return "o" in client.modes
