"""The terminal client's slash commands: one table, one short function per command.

run_input() takes a line the user typed: text is said in the current room,
"/name args" runs the command from COMMANDS, "//text" says "/text".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from backend.irc.describe import Kind, is_channel

from .chat import ChatClient


@dataclass(frozen=True)
class Command:
    """A slash command: what it does, how it is typed, and one line of help."""

    run: Callable[[ChatClient, str], bool]  # False means the user has quit
    usage: str
    help: str


def run_input(client: ChatClient, text: str) -> bool:
    """Act on one line of input; return False once the user has quit."""
    if not text.strip():
        return True
    if text.startswith("//"):
        client.say(text[1:])
        return True
    if not text.startswith("/"):
        client.say(text)
        return True
    name, _, arg = text[1:].partition(" ")
    command = COMMANDS.get(name.lower())
    if command is None:
        client.note(f"unknown command /{name} — type /help for the list", Kind.ERROR)
        return True
    return command.run(client, arg.strip())


def _usage(client: ChatClient, name: str) -> bool:
    client.note(f"usage: {COMMANDS[name].usage}", Kind.ERROR)
    return True


def do_help(client: ChatClient, arg: str) -> bool:
    """/help: every command with its one line of help."""
    client.note("Type a line to say it in the current room. Commands:")
    for command in COMMANDS.values():
        client.note(f"  {command.usage:<20} {command.help}")
    return True


def do_nick(client: ChatClient, arg: str) -> bool:
    """/nick NEW."""
    if not arg or " " in arg:
        return _usage(client, "nick")
    client.change_nick(arg)
    return True


def do_me(client: ChatClient, arg: str) -> bool:
    """/me ACTION."""
    if not arg:
        return _usage(client, "me")
    client.say(arg, action=True)
    return True


def do_msg(client: ChatClient, arg: str) -> bool:
    """/msg NICK TEXT."""
    nick, _, text = arg.partition(" ")
    if not nick or not text.strip():
        return _usage(client, "msg")
    client.message(nick, text.strip())
    return True


def do_join(client: ChatClient, arg: str) -> bool:
    """/join #room (the # may be left out)."""
    if not arg or " " in arg:
        return _usage(client, "join")
    client.join(arg if is_channel(arg) else "#" + arg)
    return True


def do_part(client: ChatClient, arg: str) -> bool:
    """/part [#room] [reason]."""
    room, _, reason = arg.partition(" ")
    if room and not is_channel(room):
        room, reason = "", arg
    client.part(room or None, reason.strip())
    return True


def do_topic(client: ChatClient, arg: str) -> bool:
    """/topic [TEXT]."""
    client.topic(arg or None)
    return True


def do_who(client: ChatClient, arg: str) -> bool:
    """/who."""
    client.who()
    return True


def do_quit(client: ChatClient, arg: str) -> bool:
    """/quit [MESSAGE]."""
    client.quit(arg)
    return False


COMMANDS: dict[str, Command] = {
    "help": Command(do_help, "/help", "this list"),
    "nick": Command(do_nick, "/nick NEW", "change your name"),
    "me": Command(do_me, "/me ACTION", "say what you do: * alice waves"),
    "msg": Command(do_msg, "/msg NICK TEXT", "a private message to one person"),
    "join": Command(do_join, "/join #room", "join a room (or switch to it) and talk there"),
    "part": Command(do_part, "/part [#room]", "leave the current room (or the one named)"),
    "topic": Command(do_topic, "/topic [TEXT]", "show the room's topic, or set it"),
    "who": Command(do_who, "/who", "who is in the room"),
    "quit": Command(do_quit, "/quit [MESSAGE]", "leave the chat"),
}
