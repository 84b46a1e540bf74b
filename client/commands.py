"""The terminal client's slash commands: one table, one short function per command.

run_input() takes a line the user typed: text is said in the current room,
"/name args" runs the command from COMMANDS, "//text" says "/text".

Commands that run a room (/op, /kick, /ban, ...) act on the current room and are sent
whatever the user's status: the server decides, and its refusal is shown as a sentence
(describe.py). /help lists them only to an operator of the room or a server operator.
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
    # "chat": for everyone; "room": for who runs the current room; "server": becoming a server operator.
    group: str = "chat"


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
    """/help: the commands that apply to the user, grouped; room moderation only for operators."""
    operator = client.is_operator()
    commands = list(dict.fromkeys(COMMANDS.values()))  # aliases (/mute) share their command's line
    client.note("Type a line to say it in the current room. Commands:")
    for command in commands:
        if command.group == "chat":
            client.note(f"  {command.usage:<24} {command.help}")
    if not client.server_oper:
        for command in commands:
            if command.group == "server":
                client.note(f"  {command.usage:<24} {command.help}")
    if operator:
        client.note("Running the room (you are an operator):")
        for command in commands:
            if command.group == "room":
                client.note(f"  {command.usage:<24} {command.help}")
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


def _nick_mode(name: str, change: str) -> Callable[[ChatClient, str], bool]:
    """/op, /deop, /voice, /devoice, /ban, ...: one mode change (like "+o") per nick or mask given."""

    def run(client: ChatClient, arg: str) -> bool:
        targets = arg.split()
        if not targets:
            return _usage(client, name)
        client.mode(change[0] + change[1] * len(targets), *targets)
        return True

    return run


def do_kick(client: ChatClient, arg: str) -> bool:
    """/kick NICK [reason]."""
    nick, _, reason = arg.partition(" ")
    if not nick:
        return _usage(client, "kick")
    client.kick(nick, reason.strip())
    return True


def do_invite(client: ChatClient, arg: str) -> bool:
    """/invite NICK [#room]."""
    words = arg.split()
    if not words or len(words) > 2 or (len(words) == 2 and not is_channel(words[1])):
        return _usage(client, "invite")
    client.invite(words[0], words[1] if len(words) == 2 else None)
    return True


def do_mode(client: ChatClient, arg: str) -> bool:
    """/mode [+-modes args]: the current room's modes, or change them."""
    words = arg.split()
    if words and words[0][0] not in "+-":
        return _usage(client, "mode")
    client.mode(*words)
    return True


def do_moderate(client: ChatClient, arg: str) -> bool:
    """/moderate [on|off]: only voiced users and operators speak (+m), or everyone again."""
    switch = arg.lower() or "on"
    if switch not in ("on", "off"):
        return _usage(client, "moderate")
    client.mode("+m" if switch == "on" else "-m")
    return True


def do_oper(client: ChatClient, arg: str) -> bool:
    """/oper NAME PASSWORD: the password (the rest of the line) is sent, never shown."""
    name, _, password = arg.partition(" ")
    if not name or not password.strip():
        return _usage(client, "oper")
    client.oper(name, password.strip())
    return True


def do_register(client: ChatClient, arg: str) -> bool:
    """/register PASSWORD: make an account of your name; the password is sent, never shown."""
    if not arg:
        return _usage(client, "register")
    client.register(arg)
    return True


def do_search(client: ChatClient, arg: str) -> bool:
    """/search WORDS [from:nick] [in:#room] [after:YYYY-MM-DD] [before:YYYY-MM-DD]."""
    if not arg:
        return _usage(client, "search")
    client.search(arg)
    return True


def do_react(client: ChatClient, arg: str) -> bool:
    """/react EMOJI: react to the last line someone else said in the current room."""
    if not arg or " " in arg:
        return _usage(client, "react")
    client.react(arg)
    return True


def do_reply(client: ChatClient, arg: str) -> bool:
    """/reply TEXT: say TEXT as a reply to the last line someone else said in the current room."""
    if not arg:
        return _usage(client, "reply")
    client.reply(arg)
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
    "invite": Command(do_invite, "/invite NICK [#room]", "invite someone to this room (or the one named)"),
    "search": Command(do_search, "/search WORDS [from:NICK] [in:#room]",
                      "find past lines of your rooms (also after:/before:YYYY-MM-DD)"),
    "react": Command(do_react, "/react EMOJI", "react to the last line someone else said here"),
    "reply": Command(do_reply, "/reply TEXT", "answer the last line someone else said here"),
    "register": Command(do_register, "/register PASSWORD", "make an account of your name (kept for you alone)"),
    "quit": Command(do_quit, "/quit [MESSAGE]", "leave the chat"),
    # Running the current room (the server refuses them to non-operators: 482).
    "op": Command(_nick_mode("op", "+o"), "/op NICK", "make someone an operator", "room"),
    "deop": Command(_nick_mode("deop", "-o"), "/deop NICK", "take operator away", "room"),
    "voice": Command(_nick_mode("voice", "+v"), "/voice NICK", "let someone speak when moderated", "room"),
    "devoice": Command(_nick_mode("devoice", "-v"), "/devoice NICK", "take voice away", "room"),
    "kick": Command(do_kick, "/kick NICK [reason]", "remove someone from the room", "room"),
    "ban": Command(_nick_mode("ban", "+b"), "/ban NICK|MASK", "keep someone out (nick or nick!user@host)", "room"),
    "unban": Command(_nick_mode("unban", "-b"), "/unban NICK|MASK", "lift a ban", "room"),
    "quiet": Command(_nick_mode("quiet", "+q"), "/quiet NICK|MASK", "let someone read but not speak (/mute)",
                     "room"),
    "unquiet": Command(_nick_mode("unquiet", "-q"), "/unquiet NICK|MASK", "let them speak again (/unmute)", "room"),
    "moderate": Command(do_moderate, "/moderate [on|off]", "only voiced people and operators speak (+m)", "room"),
    "mode": Command(do_mode, "/mode [+-modes args]", "show or change the room's modes (+i +k +l +s +t ...)",
                    "room"),
    "oper": Command(do_oper, "/oper NAME PASSWORD", "become a server operator", "server"),
}
COMMANDS["mute"] = COMMANDS["quiet"]
COMMANDS["unmute"] = COMMANDS["unquiet"]
