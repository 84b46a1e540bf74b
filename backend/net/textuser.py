"""Plain-text users: people who reach the chat port with `nc` or `telnet` instead of IRC.

A connection is sniffed once, before its first line is handled (sniff()): if that
line is an IRC command, or arrives within a second and looks like one, nothing
changes and the session speaks IRC as always. If the first line is something else,
or the socket stays silent for `text_silence` seconds, the session becomes a text user:
it is asked "Enter your name:" (then "Password:" when the server has one),
registers like anyone else (the hub sees an ordinary member) and from then on
reads chat lines ("12:04 alice: hello") instead of IRC, while what it types is
said in its room.

The words come from backend/irc/describe.py, shared with the terminal client. Broadcasts
reach text users through the Envelope render-key seam, formatted once for all of
them; replies meant for one text user go through TextUser.render(). This module
must not send anything that an IRC client could receive.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import time
from collections.abc import Callable
from dataclasses import replace

from ..core.dispatch import COMMANDS, dispatch
from ..core.envelope import Envelope, RenderKey
from ..irc import (
    MAX_FRAME_BYTES,
    LineTooLong,
    Message,
    ProtocolError,
    decode,
    fold,
    is_valid_nick,
    parse_line,
    split_text,
)
from ..irc.describe import describe, is_channel, mark, stamp_at, visible
from ..irc.numerics import ERR_PASSWDMISMATCH
from .connection import Connection, IrcCodec
from .telnet import IacFilter, strip_telnet

RECV_BYTES = 16384
TEXT: RenderKey = "text"
PROMPT = "Enter your name:"
PASSWORD_PROMPT = "Password:"
# The reason try_register gives when it refuses a password (its ERROR reads "... (Bad password)").
WRONG_PASSWORD = "Wrong password."
# The commands that open an IRC conversation; a first line with one of them is IRC.
OPENING_COMMANDS = frozenset({"CAP", "NICK", "USER", "PASS", "WEBIRC", "PING", "PONG", "QUIT"})
# Room for the " PRIVMSG #room :" and the sender's prefix within the 512-byte line.
TEXT_PIECE_BYTES = 400

HELP = (
    "Type a line and press Enter to say it in the room. Commands:",
    "  /nick NEW              change your name",
    "  /me ACTION             say what you do (* alice waves)",
    "  /msg NAME TEXT         a private message to one person",
    "  /join #room [KEY]      join a room (or switch to it) and talk there",
    "  /part [#room]          leave this room (or the one named)",
    "  /who                   who is in the room",
    "  /topic [TEXT]          show or set the room's topic",
    "  /invite NAME [#room]   invite someone to this room (or the one named)",
    "  /quit [MESSAGE]        leave",
)
# Shown by /help to whoever is not yet a server operator.
OPER_HELP = ("  /oper NAME PASSWORD    become a server operator",)
# Shown by /help only to an operator of the user's room, or a server operator.
ROOM_HELP = (
    "Running the room (you are an operator):",
    "  /op NAME               make someone an operator",
    "  /deop NAME             take operator away",
    "  /voice NAME            let someone speak when moderated",
    "  /devoice NAME          take voice away",
    "  /kick NAME [REASON]    remove someone from the room",
    "  /ban NAME|MASK         keep someone out (name or name!user@host)",
    "  /unban NAME|MASK       lift a ban",
    "  /quiet NAME|MASK       let someone read but not speak (/mute)",
    "  /unquiet NAME|MASK     let them speak again (/unmute)",
    "  /moderate [on|off]     only voiced people and operators speak (+m)",
    "  /mode [+-MODES ARGS]   show or change the room's modes (+i +k +l +s +t ...)",
)
# The room commands that are one mode change per name or mask: command -> (change, usage).
NICK_MODES = {
    "op": ("+o", "/op NAME"), "deop": ("-o", "/deop NAME"),
    "voice": ("+v", "/voice NAME"), "devoice": ("-v", "/devoice NAME"),
    "ban": ("+b", "/ban NAME|MASK"), "unban": ("-b", "/unban NAME|MASK"),
    "quiet": ("+q", "/quiet NAME|MASK"), "mute": ("+q", "/mute NAME|MASK"),
    "unquiet": ("-q", "/unquiet NAME|MASK"), "unmute": ("-q", "/unmute NAME|MASK"),
}

# -- deciding what a connection is -------------------------------------------------


def looks_like_irc(line: str, strict: bool = False) -> bool:
    """Whether a first line opens an IRC conversation rather than being typed by a person.

    Registration commands count in any case when they have parameters (IRC commands are
    case-insensitive); any other known IRC command counts when written in capitals, so an
    IRC client that sends JOIN too early still gets 451 rather than a name prompt. With
    strict (a person has already been asked for a name) only capitalised commands count,
    so someone answering "nick bob" is not mistaken for an IRC client.
    """
    if line.startswith(("@", ":")):
        return True
    try:
        msg = parse_line(line)
    except ProtocolError:
        return False
    word = line.split(None, 1)[0]
    capitals = word == msg.command
    if msg.command in OPENING_COMMANDS:
        return capitals if strict else bool(msg.params) or capitals
    return not strict and capitals and msg.command in COMMANDS


def _first_line(raw: bytes) -> str | None:
    """The first non-blank complete line of the (telnet-stripped) bytes, if there is one."""
    for piece in strip_telnet(raw).split(b"\n")[:-1]:
        text = decode(piece).strip()
        if text:
            return text
    return None


def sniff(conn: Connection) -> bytes:
    """Read a new connection's first bytes and decide whether it is IRC or a person.

    Returns every byte read, for the session to handle as usual. Waiting uses poll()
    with a timeout on this reader thread, so silence detection costs no thread and no
    change to the socket's blocking mode (the writer thread shares the socket).
    b"" means the peer closed or the socket failed; the caller's next recv will say so.
    """
    poller = select.poll()
    poller.register(conn.sock, select.POLLIN)
    # Silence is counted from when this reader could first look: on a busy server it may start
    # well after the connection was accepted, with the client's NICK and USER long waiting.
    deadline = time.monotonic() + conn.config.text_silence
    raw = b""
    while True:
        line = _first_line(raw)
        if line is not None:
            if not looks_like_irc(line):
                become_text_user(conn, silent=False)
            return raw
        if len(raw) > MAX_FRAME_BYTES:
            return raw  # no line ending in sight: IRC framing answers it with 417
        remaining = deadline - time.monotonic()
        if remaining <= 0 and not strip_telnet(raw).strip() and not poller.poll(0):
            become_text_user(conn, silent=True)
            return raw
        # Past the deadline with half a line read, wait for the rest of it without a limit.
        if remaining > 0 and not poller.poll(remaining * 1000):
            continue
        try:
            data = conn.sock.recv(RECV_BYTES)
        except OSError:
            return raw
        if not data:
            return raw
        raw += data


def become_text_user(conn: Connection, silent: bool) -> None:
    """Turn a new connection into a text user and ask for a name."""
    user = TextUser(conn, silent)
    conn.codec = user
    conn.client.present(user)
    _keep_alive(conn.sock)
    conn.send_bytes(text_bytes(PROMPT))


def _keep_alive(sock: socket.socket) -> None:
    """Let TCP find a vanished text user: they never answer our PINGs (see TextUser.render)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 20), ("TCP_KEEPCNT", 4)):
            if hasattr(socket, name):
                sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


# -- what a text user sees ------------------------------------------------------------


def text_bytes(*lines: str) -> bytes:
    """Lines of text as bytes for a terminal: CRLF endings (telnet wants CR), no stray CR/LF/NUL,
    and no other control character (describe.visible): nothing anyone says can reach the
    person's terminal as an escape sequence."""
    clean = (visible(line.replace("\0", "")) for line in lines)
    return "".join(f"{line}\r\n" for line in clean).encode("utf-8")


def render_envelope(envelope: Envelope) -> bytes:
    """An event as every text user reads it (the renderer behind the TEXT render key).

    The envelope's time is the moment it happened: now for live events, the original
    time for history replayed on join, which is therefore shown with its own time
    (and date, when it is not from today).
    """
    if envelope.lines is not None:  # a multiline message: a line each
        return b"".join(render_envelope(part) for part in envelope.parts())
    line = describe(envelope.message, envelope.time)
    if line is None:
        return b""
    return text_bytes(replace(line, stamp=stamp_at(envelope.time, time.time())).plain())


def server_note(message: Message) -> str | None:
    """A notice from the server itself to a room, as a separator line; None for anything else.

    The server speaks to a room only to frame the history replayed on join
    (backend/core/replay.py: "Recent messages in #lobby:" ... "End of recent messages");
    set apart like this, old lines never pass for live ones.
    """
    if message.command != "NOTICE" or (message.source and "!" in message.source):
        return None
    if not is_channel(message.param(0)):
        return None
    return mark(message.param(1).rstrip(":").strip()).plain()


def closing_text(message: Message) -> str:
    """The server's ERROR "Closing link: host (reason)" as a sentence: "Disconnected: reason."."""
    text = message.param(0)
    match = re.fullmatch(r"Closing link: \S+ \((.*)\)", text)
    reason = match.group(1) if match else text or "connection closed"
    if reason == "Quit" or reason.startswith("Quit:"):
        return "Disconnected."  # they quit, and were just told "Bye!"
    return f"Disconnected: {reason}."


class TextUser:
    """The plain-text codec of one Connection: names the user, turns typed lines into commands
    and shows what the core sends as sentences (the Client's Presenter)."""

    render_key: RenderKey = TEXT

    def __init__(self, conn: Connection, silent: bool) -> None:
        self.conn = conn
        self.client = conn.client
        # Asked after a silence: the first answer may still be a slow IRC client's NICK.
        self.silent = silent
        self.telnet = IacFilter()
        # The name is chosen and the server wants a password: the next line is it.
        self.awaiting_password = False
        self.name = ""
        # The room chosen with /join; None (or a room they have left) means the first one they are in.
        self.current: str | None = None

    def strip(self, data: bytes) -> bytes:
        """Received bytes without telnet commands."""
        return self.telnet.feed(data)

    def render_envelope(self, envelope: Envelope) -> bytes:
        """A shared event as text (the TEXT render key's renderer)."""
        return render_envelope(envelope)

    def render(self, message: Message) -> bytes:
        """A message meant for this user alone (a reply, a numeric, ERROR) as text, or b""."""
        if message.command == "PING":
            # Nobody at nc answers PING. Count the user as alive and leave finding a dead
            # peer to TCP keepalive, or an idle reader would be dropped after a few minutes.
            self.client.last_seen = time.monotonic()
            self.client.ping_sent = None
            return b""
        if message.command == ERR_PASSWDMISMATCH and not self.client.registered:
            return text_bytes(WRONG_PASSWORD)  # registered, it answers OPER: describe() says so
        if message.command == "ERROR":
            return text_bytes(closing_text(message))
        note = server_note(message)
        if note is not None:
            return text_bytes(note)
        line = describe(message, time.time())
        return text_bytes(line.plain()) if line else b""

    # -- input --------------------------------------------------------------------

    def handle_line(self, raw: bytes | LineTooLong) -> None:
        """Act on one typed line: a name while unregistered, then chat or a /command."""
        if isinstance(raw, LineTooLong):
            self.tell("That line was too long.")
            return
        if self.awaiting_password:
            # Never stripped, shown, logged or taken for IRC: the line is the password as typed.
            self._take_password(decode(raw).rstrip("\r\n"))
            return
        text = decode(raw).strip()
        if not self.client.registered:
            self._take_name(raw, text)
        elif text:
            self._handle_input(text)

    def tell(self, *lines: str) -> None:
        """Send lines of text to this user."""
        self.conn.send_bytes(text_bytes(*lines))

    def _take_name(self, raw: bytes, name: str) -> None:
        if not name:
            return
        if self.silent and looks_like_irc(name, strict=True):
            self._back_to_irc(raw)
            return
        if not is_valid_nick(name):
            self.tell(
                f"Sorry, “{name}” can't be a name: use letters, digits or _-[]\\`^{{}}|, "
                "not starting with a digit or -, at most 30 characters.",
                PROMPT,
            )
            return
        if self.conn.chat.hub.find(name) is not None:
            self.tell(f"Sorry, the name {name} is taken. Please choose another.", PROMPT)
            return
        self.name = name
        # A person answered: from now on a line that looks like IRC is just what they typed.
        self.silent = False
        if self.conn.chat.config.password is not None and self.client.password is None:
            # Asked after the name, as a login asks: the answer is sent as PASS.
            self.awaiting_password = True
            self.tell(PASSWORD_PROMPT)
            return
        self._register()

    def _take_password(self, password: str) -> None:
        if not password:
            self.tell(PASSWORD_PROMPT)  # a stray Enter is not an attempt
            return
        self.awaiting_password = False
        self._dispatch("PASS", password)
        self._register()

    def _register(self) -> None:
        """Register with the commands an IRC client sends: the core makes the one check (password, then nick)."""
        # A wrong password is answered with 464 ("Wrong password." here) and a disconnect,
        # as for IRC clients.
        self._dispatch("USER", "text", "0", "*", "plain-text user")
        self._dispatch("NICK", self.name)
        if not self.client.registered and not self.conn.outbox.closed:
            self.tell(PROMPT)  # lost a race for the name: the core already said so

    def _back_to_irc(self, raw: bytes) -> None:
        """A slow IRC client answered the name prompt with IRC: serve it as IRC after all."""
        irc = IrcCodec(self.conn)
        self.conn.codec = irc
        self.client.present(None)
        irc.handle_line(raw)

    def _handle_input(self, text: str) -> None:
        if text.startswith("//"):
            self._say(text[1:])
        elif text.startswith("/"):
            name, _, arg = text[1:].partition(" ")
            command = SLASH_COMMANDS.get(name.lower())
            if command is None:
                self.tell(f"Unknown command /{name}. Type /help for the list.")
            else:
                command(self, arg.strip())
        else:
            self._say(text)

    # -- commands -------------------------------------------------------------------

    def room(self) -> str | None:
        """The room this user talks in: the one they last joined with /join, else the first one they are in."""
        rooms = self.conn.chat.hub.rooms_of(self.client)
        if self.current is not None:
            for room in rooms:
                if fold(room) == fold(self.current):
                    return room
        return rooms[0] if rooms else None

    def _in_room(self) -> str | None:
        """room(), telling the user when they are in none."""
        room = self.room()
        if room is None:
            self.tell("You are not in a room.")
        return room

    def is_operator(self) -> bool:
        """Whether this user runs their room: its operator (@), or a server operator."""
        if "o" in self.client.modes:
            return True
        room = self.room()
        view = self.conn.chat.hub.room(room) if room is not None else None
        if view is None:
            return False
        statuses = zip(view.members, view.status, strict=True)
        return any(member is self.client and "@" in status for member, status in statuses)

    def _dispatch(self, command: str, *params: str) -> None:
        dispatch(self.conn.chat, self.client, Message(command, params))

    def _say(self, text: str, action: bool = False) -> None:
        room = self.room()
        if room is None:
            self.tell("You are not in a room.")
            return
        for piece in split_text(text, TEXT_PIECE_BYTES - len(room.encode("utf-8"))):
            self._dispatch("PRIVMSG", room, f"\x01ACTION {piece}\x01" if action else piece)

    def cmd_help(self, arg: str) -> None:
        """/help: the commands that apply to this user; the room's only to its operators."""
        lines = list(HELP)
        if "o" not in self.client.modes:
            lines += OPER_HELP
        if self.is_operator():
            lines += ROOM_HELP
        self.tell(*lines)

    def cmd_join(self, arg: str) -> None:
        """/join #room [KEY]: join (creating it makes them its operator) or switch to it; talk there."""
        words = arg.split()
        if not words or len(words) > 2:
            self.tell("Usage: /join #room [KEY]")
            return
        room = words[0] if is_channel(words[0]) else "#" + words[0]
        self._dispatch("JOIN", room, *words[1:])  # refusals (banned, invite-only, key) come back as sentences
        joined = [r for r in self.conn.chat.hub.rooms_of(self.client) if fold(r) == fold(room)]
        if joined:
            self.current = joined[0]
            self.tell(f"Now talking in {joined[0]}.")

    def cmd_part(self, arg: str) -> None:
        """/part [#room]: leave this room, or the one named."""
        room = arg.split()[0] if arg else self._in_room()
        if room is not None:
            self._dispatch("PART", room)

    def cmd_mode_on_names(self, name: str, arg: str) -> None:
        """/op, /deop, /voice, /devoice, /ban, /unban, /quiet, /unquiet: one change per name or mask."""
        change, usage = NICK_MODES[name]
        targets = arg.split()
        if not targets:
            self.tell(f"Usage: {usage}")
            return
        room = self._in_room()
        if room is not None:
            self._dispatch("MODE", room, change[0] + change[1] * len(targets), *targets)

    def cmd_kick(self, arg: str) -> None:
        """/kick NAME [REASON]: everyone in the room reads who and why."""
        nick, _, reason = arg.partition(" ")
        if not nick:
            self.tell("Usage: /kick NAME [REASON]")
            return
        room = self._in_room()
        if room is not None:
            self._dispatch("KICK", room, nick, *([reason.strip()] if reason.strip() else []))

    def cmd_invite(self, arg: str) -> None:
        """/invite NAME [#room]."""
        words = arg.split()
        if not words or len(words) > 2 or (len(words) == 2 and not is_channel(words[1])):
            self.tell("Usage: /invite NAME [#room]")
            return
        room = words[1] if len(words) == 2 else self._in_room()
        if room is not None:
            self._dispatch("INVITE", words[0], room)

    def cmd_mode(self, arg: str) -> None:
        """/mode [+-MODES ARGS]: the room's modes, or change them."""
        words = arg.split()
        if words and words[0][0] not in "+-":
            self.tell("Usage: /mode [+-MODES ARGS], e.g. /mode +i or /mode +k KEY")
            return
        room = self._in_room()
        if room is not None:
            self._dispatch("MODE", room, *words)

    def cmd_moderate(self, arg: str) -> None:
        """/moderate [on|off]: +m or -m."""
        switch = arg.lower() or "on"
        if switch not in ("on", "off"):
            self.tell("Usage: /moderate [on|off]")
            return
        room = self._in_room()
        if room is not None:
            self._dispatch("MODE", room, "+m" if switch == "on" else "-m")

    def cmd_oper(self, arg: str) -> None:
        """/oper NAME PASSWORD: the password (the rest of the line) goes to the core, never shown or logged."""
        name, _, password = arg.partition(" ")
        if not name or not password.strip():
            self.tell("Usage: /oper NAME PASSWORD")
            return
        self._dispatch("OPER", name, password.strip())

    def cmd_nick(self, arg: str) -> None:
        """/nick NEW: change name; the room sees "alice is now known as al"."""
        if not arg:
            self.tell("Usage: /nick NEW")
            return
        self._dispatch("NICK", arg.split()[0])

    def cmd_me(self, arg: str) -> None:
        """/me ACTION: "* alice waves"."""
        if not arg:
            self.tell("Usage: /me ACTION")
            return
        self._say(arg, action=True)

    def cmd_msg(self, arg: str) -> None:
        """/msg NAME TEXT: a private message; shown back to the sender, who has no echo."""
        nick, _, text = arg.partition(" ")
        text = text.strip()
        if not nick or not text:
            self.tell("Usage: /msg NAME TEXT")
            return
        user = self.conn.chat.hub.find(nick)
        if user is None:
            self.tell(f"There is nobody called {nick} here.")
            return
        for piece in split_text(text, TEXT_PIECE_BYTES):
            self._dispatch("PRIVMSG", user.nick, piece)
            shown = describe(Message("PRIVMSG", (user.nick, piece), self.client.nick), time.time())
            if shown:
                self.tell(shown.plain())

    def cmd_who(self, arg: str) -> None:
        """/who: who is in the room (NAMES, rendered "In #lobby: alice, bob")."""
        room = self.room()
        if room is None:
            self.tell("You are not in a room.")
            return
        self._dispatch("NAMES", room)

    def cmd_topic(self, arg: str) -> None:
        """/topic [TEXT]: show or set the room's topic."""
        room = self.room()
        if room is None:
            self.tell("You are not in a room.")
            return
        if arg:
            self._dispatch("TOPIC", room, arg)
        else:
            self._dispatch("TOPIC", room)

    def cmd_quit(self, arg: str) -> None:
        """/quit [MESSAGE]: leave; the room sees the message."""
        self.tell("Bye!")
        if arg:
            self._dispatch("QUIT", arg)
        else:
            self._dispatch("QUIT")


def _names_mode(name: str) -> Callable[[TextUser, str], None]:
    """The SLASH_COMMANDS entry of a command of NICK_MODES."""
    return lambda user, arg: user.cmd_mode_on_names(name, arg)


SLASH_COMMANDS: dict[str, Callable[[TextUser, str], None]] = {
    "help": TextUser.cmd_help,
    "nick": TextUser.cmd_nick,
    "me": TextUser.cmd_me,
    "msg": TextUser.cmd_msg,
    "who": TextUser.cmd_who,
    "names": TextUser.cmd_who,
    "topic": TextUser.cmd_topic,
    "quit": TextUser.cmd_quit,
    "join": TextUser.cmd_join,
    "part": TextUser.cmd_part,
    "kick": TextUser.cmd_kick,
    "invite": TextUser.cmd_invite,
    "mode": TextUser.cmd_mode,
    "moderate": TextUser.cmd_moderate,
    "oper": TextUser.cmd_oper,
    **{name: _names_mode(name) for name in NICK_MODES},
}
