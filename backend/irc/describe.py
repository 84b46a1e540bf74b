"""How IRC events read to a person: one chat-like line per event, and each nick's colour.

This module is pure: a Message (and the time to show) goes in, a Line comes out, and
a Line becomes plain text. No sockets, no terminal, no clock of its own. The terminal
client (client/) colours the parts of a Line; the server's plain-text users
(backend/net/textuser.py) get Line.plain() as their bytes. Both read the same words.

    12:04 alice: hello
    12:05 * bob waves
    12:06 → carol joined #lobby
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from .message import Message
from .names import fold

# The web page colours nicks with the same function and palette (web/static); keep them equal.
PALETTE = ("#e6194b", "#3cb44b", "#c9a100", "#4363d8", "#f58231", "#911eb4", "#0fa3b1", "#f032e6")

CHANNEL_PREFIXES = "#&"
ACTION_START = "\x01ACTION "
CTCP = "\x01"
# Characters that may sit in a nick, so "alice_" does not count as a mention of "alice".
_NICK_CHAR = r"[\w\-\[\]\\`^{}|]"


# IRC's own formatting codes (bold, colour with its numbers, hex colour, reset, monospace,
# reverse, italic, strikethrough, underline): a reader's terminal has no use for them.
_IRC_FORMATTING = re.compile(
    r"\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9a-fA-F]{6}(?:,[0-9a-fA-F]{6})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]"
)
# Every other control character shown as a harmless symbol instead of acted upon: a C0
# control as its Unicode control picture (ESC is "␛", BEL "␇"), DEL as "␡", a C1 control as
# the ␛ sequence it stands for (CSI U+009B is "␛["). Tabs and line breaks become spaces.
_VISIBLE: dict[int, str] = {
    **{c: chr(0x2400 + c) for c in range(0x20)},
    0x09: " ",
    0x0A: " ",
    0x0D: " ",
    0x7F: "\u2421",
    **{c: "\u241b" + chr(c - 0x40) for c in range(0x80, 0xA0)},
}


def visible(text: str) -> str:
    """text as it may reach a terminal: no control character, hence no escape sequence in it.

    A message, a topic or a nick from another server could otherwise clear the reader's screen
    (ESC [2J), retitle their window (OSC 0) or write their clipboard (OSC 52). IRC formatting
    codes are dropped; every other C0 or C1 control is made visible (see _VISIBLE).
    """
    return _IRC_FORMATTING.sub("", text).translate(_VISIBLE)


def nick_colour(nick: str) -> str:
    """The nick's colour from PALETTE: a 31-multiplier string hash of the casefolded nick."""
    h = 0
    for ch in nick.casefold():
        h = (h * 31 + ord(ch)) % 2**32
    return PALETTE[h % len(PALETTE)]


def is_channel(target: str) -> bool:
    """Whether a PRIVMSG/NOTICE target names a room rather than a nick."""
    return target[:1] in CHANNEL_PREFIXES


def nick_of(source: str | None) -> str:
    """The nick part of a nick!user@host source ("" for none)."""
    return (source or "").split("!", 1)[0]


def clock(ts: float) -> str:
    """Seconds since the epoch as the local HH:MM shown in front of every line."""
    return time.strftime("%H:%M", time.localtime(ts))


def stamp_at(ts: float, now: float) -> str:
    """The time in front of a line: HH:MM, with the date too when ts is not on now's (local) day.

    Live lines are always today; history replayed on join may be from last week,
    and "09:12" alone would pass it off as this morning.
    """
    if time.localtime(ts)[:3] == time.localtime(now)[:3]:
        return clock(ts)
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def message_time(msg: Message, default: float) -> float:
    """The IRCv3 server-time of a message, or default when it has none (or a broken one)."""
    stamp = msg.tags.get("time")
    if stamp:
        try:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return default


class Kind(StrEnum):
    """What sort of line this is; decides its layout and, in a terminal, its style."""

    MESSAGE = "message"  # alice: hello
    ACTION = "action"  # * alice waves
    PRIVATE = "private"  # alice → bob (private): hi
    NOTICE = "notice"  # -alice- text
    JOIN = "join"  # → alice joined #lobby
    LEAVE = "leave"  # ← alice left #lobby / quit
    EVENT = "event"  # • alice is now known as al
    INFO = "info"  # • Topic of #lobby: ...
    ERROR = "error"  # ! No such nick (bob)
    MARK = "mark"  # ── earlier in #lobby ── (sets history apart from live lines; no time)


# The text around the nick for each kind: (before the nick, between nick and text).
_LAYOUT: dict[Kind, tuple[str, str]] = {
    Kind.MESSAGE: ("", ": "),
    Kind.ACTION: ("* ", " "),
    Kind.PRIVATE: ("", ""),  # the separator names the target, see Line.separator
    Kind.NOTICE: ("-", "- "),
    Kind.JOIN: ("→ ", " "),
    Kind.LEAVE: ("← ", " "),
    Kind.EVENT: ("• ", " "),
    Kind.INFO: ("• ", ""),
    Kind.ERROR: ("! ", ""),
    Kind.MARK: ("── ", " ──"),
}


@dataclass(frozen=True, slots=True)
class Line:
    """One line for a person to read: when, what kind, who (if anyone) and the words."""

    stamp: str
    kind: Kind
    text: str
    nick: str = ""
    room: str = ""  # the room it happened in; "" for private or server lines
    target: str = ""  # for PRIVATE: who it was sent to
    own: bool = False  # sent by the reader themselves
    mention: bool = False  # someone else's words that name the reader
    history: bool = False  # said before the reader arrived (replayed history), not live

    @property
    def lead(self) -> str:
        """The text before the nick ("* " for an action, "→ " for a join, ...)."""
        return _LAYOUT[self.kind][0]

    @property
    def separator(self) -> str:
        """The text between the nick and the words."""
        if self.kind is Kind.PRIVATE:
            return f" → {self.target} (private): "
        if self.kind is Kind.MARK:
            return ""
        return _LAYOUT[self.kind][1] if self.nick else ""

    def room_tag(self, current_room: str | None) -> str:
        """"[#room] " when the line belongs to a room other than the one being shown."""
        if self.room and current_room is not None and fold(self.room) != fold(current_room):
            return f"[{self.room}] "
        return ""

    def plain(self, current_room: str | None = None) -> str:
        """The whole line as text, e.g. "12:04 alice: hello" (a MARK is just "── text ──")."""
        if self.kind is Kind.MARK:
            return f"{self.lead}{self.text}{_LAYOUT[Kind.MARK][1]}"
        return f"{self.stamp} {self.room_tag(current_room)}{self.lead}{self.nick}{self.separator}{self.text}"


def safe(line: Line) -> Line:
    """line with every part passed through visible(): what a terminal may be given."""
    return replace(
        line,
        stamp=visible(line.stamp),
        text=visible(line.text),
        nick=visible(line.nick),
        room=visible(line.room),
        target=visible(line.target),
    )


def mark(text: str) -> Line:
    """A separator line, "── text ──": where replayed history starts and ends."""
    return Line("", Kind.MARK, text)


def mention_pattern(me: str) -> re.Pattern[str]:
    """A regex finding me as a whole word (nick characters do not count as boundaries)."""
    return re.compile(rf"(?<!{_NICK_CHAR}){re.escape(me)}(?!{_NICK_CHAR})", re.IGNORECASE)


def split_mentions(text: str, me: str) -> Iterator[tuple[bool, str]]:
    """Pieces of text, each marked True where it is a mention of me."""
    if not me:
        yield False, text
        return
    pos = 0
    for match in mention_pattern(me).finditer(text):
        if match.start() > pos:
            yield False, text[pos : match.start()]
        yield True, match.group()
        pos = match.end()
    if pos < len(text):
        yield False, text[pos:]


def describe(msg: Message, now: float, me: str = "") -> Line | None:
    """The line a person should see for msg, or None for protocol traffic they need not see.

    now is shown when the message carries no server-time; me (the reader's nick, if
    known) marks their own lines and mentions of them.
    """
    stamp = stamp_at(message_time(msg, now), now)
    if msg.command.isdigit():
        return _describe_numeric(msg, stamp)
    handler = _DESCRIBERS.get(msg.command)
    if handler is None:
        return None
    personal = _PERSONAL.get(msg.command)
    line = personal(msg, stamp, me) if personal is not None else handler(msg, stamp)
    if line is not None:
        line = safe(line)
    if line is None or not me or not line.nick:
        return line
    own = fold(line.nick) == fold(me)
    mention = not own and line.kind in _SPOKEN and mention_pattern(me).search(line.text) is not None
    return replace(line, own=own, mention=mention) if own or mention else line


_SPOKEN = frozenset({Kind.MESSAGE, Kind.ACTION, Kind.PRIVATE, Kind.NOTICE})


def _describe_privmsg(msg: Message, stamp: str) -> Line | None:
    target, text = msg.param(0), msg.param(1)
    nick = nick_of(msg.source)
    action = text.startswith(ACTION_START) or text == "\x01ACTION\x01"
    if action:
        text = text[len(ACTION_START) :].rstrip(CTCP) if text != "\x01ACTION\x01" else ""
    elif text.startswith(CTCP):
        return None  # other CTCP (VERSION, PING, ...) is machinery, not conversation
    if msg.command == "NOTICE":
        if not msg.source or "!" not in msg.source:
            return Line(stamp, Kind.NOTICE, text, nick or "server")
        return Line(stamp, Kind.NOTICE, text, nick, target if is_channel(target) else "")
    if not is_channel(target):
        if action:
            return Line(stamp, Kind.PRIVATE, f"* {text}", nick, target=target)
        return Line(stamp, Kind.PRIVATE, text, nick, target=target)
    return Line(stamp, Kind.ACTION if action else Kind.MESSAGE, text, nick, target)


def _with_reason(text: str, reason: str) -> str:
    return f"{text} ({reason})" if reason else text


def _describe_join(msg: Message, stamp: str) -> Line:
    room = msg.param(0)
    return Line(stamp, Kind.JOIN, f"joined {room}", nick_of(msg.source), room)


def _describe_part(msg: Message, stamp: str) -> Line:
    room = msg.param(0)
    return Line(stamp, Kind.LEAVE, _with_reason(f"left {room}", msg.param(1)), nick_of(msg.source), room)


def _describe_quit(msg: Message, stamp: str) -> Line:
    reason = msg.param(0)
    # Servers prefix a user's own reason with "Quit: "; one "quit" in the line is enough.
    if reason.startswith("Quit: "):
        reason = reason[len("Quit: ") :]
    elif reason == "Quit":
        reason = ""
    return Line(stamp, Kind.LEAVE, _with_reason("quit", reason), nick_of(msg.source))


def _describe_kick(msg: Message, stamp: str, me: str = "") -> Line:
    room, who = msg.param(0), msg.param(1)
    if me and fold(who) == fold(me):
        # The reader themselves: said to them directly, so it can't pass for someone else's news.
        text = _with_reason(f"You were removed from {room} by {nick_of(msg.source)}", msg.param(2))
        return Line(stamp, Kind.LEAVE, text, room=room)
    text = _with_reason(f"was removed from {room} by {nick_of(msg.source)}", msg.param(2))
    return Line(stamp, Kind.LEAVE, text, who, room)


# Which channel mode letters take a parameter (modern.ircdocs.horse, CHANMODES and PREFIX):
# lists and status modes always, the key always (Lobby sends "-k *"), the limit only when set.
# The defaults of Lobby and most servers; a server that differs gets a sentence that is off, not a crash.
_LIST_MODES = "bqeI"
_STATUS_MODES = "qaohv"
_ALWAYS_PARAM = "k"
_SET_PARAM = "lfjL"
_STATUS_WORDS = {"o": "operator", "v": "voice", "h": "half-operator", "a": "admin"}
# What a flag change does to a room, in words: (when set, when unset); {room} is the room.
_FLAG_WORDS = {
    "m": ("set {room} to moderated", "set {room} to unmoderated"),
    "i": ("made {room} invite-only", "opened {room} to everyone"),
    "t": ("locked the topic of {room}", "unlocked the topic of {room}"),
    "n": ("closed {room} to messages from outside", "opened {room} to messages from outside"),
    "s": ("made {room} secret", "made {room} visible"),
    "D": ("made joins to {room} show only when people first speak", "made joins to {room} show at once"),
    "u": ("made {room} an auditorium (only operators and voiced people see everyone)",
          "made everyone in {room} visible to everyone"),
}


def mode_changes(modes: str, args: list[str]) -> list[tuple[bool, str, str]]:
    """A channel MODE line's changes as (adding, letter, argument); the argument is "" when none."""
    changes: list[tuple[bool, str, str]] = []
    adding = True
    rest = list(args)
    for letter in modes:
        if letter in "+-":
            adding = letter == "+"
            continue
        takes = (letter in _LIST_MODES or letter in _STATUS_MODES or letter in _ALWAYS_PARAM
                 or (adding and letter in _SET_PARAM))
        # "q" is a quiet list on Lobby and Libera, the owner status elsewhere: either way it takes a mask or nick.
        changes.append((adding, letter, rest.pop(0) if takes and rest else ""))
    return changes


def _mode_phrase(adding: bool, letter: str, arg: str, room: str, me: str) -> str:
    """One mode change as words after the setter's nick: "made bob an operator"."""
    sign = "+" if adding else "-"
    who = "you" if me and arg and fold(arg) == fold(me) else arg
    if letter in _STATUS_WORDS and arg:
        status = _STATUS_WORDS[letter]
        if letter == "v":
            return f"gave {who} voice" if adding else f"took voice from {who}"
        article = "an" if status[0] in "aeiou" else "a"
        return f"made {who} {article} {status}" if adding else f"took {status} from {who}"
    if letter == "b":
        return f"banned {arg} from {room}" if adding else f"lifted the ban on {arg} in {room}"
    if letter == "q":
        return f"muted {arg} in {room}" if adding else f"unmuted {arg} in {room}"
    if letter == "k":
        return f"set the key of {room} to {arg} (+k)" if adding else f"removed the key of {room} (-k)"
    if letter == "l":
        return f"limited {room} to {arg} people (+l)" if adding else f"lifted the limit on {room} (-l)"
    if letter in _FLAG_WORDS:
        return _FLAG_WORDS[letter][0 if adding else 1].format(room=room) + f" ({sign}{letter})"
    return f"set {sign}{letter}{' ' + arg if arg else ''} on {room}"


def _describe_mode(msg: Message, stamp: str, me: str = "") -> Line | None:
    target = msg.param(0)
    if not msg.source or "!" not in msg.source:
        return None  # a server's own MODE (the modes of a room just joined, say) is machinery
    nick = nick_of(msg.source)
    if not is_channel(target):
        # User modes: only losing server operator status is news (381 announces gaining it).
        if fold(target) == fold(nick) and "-" in msg.param(1) and "o" in msg.param(1).split("-", 1)[1]:
            return Line(stamp, Kind.EVENT, "is no longer a server operator", nick)
        return None
    changes = mode_changes(msg.param(1), list(msg.params[2:]))
    if not changes:
        return None
    text = "; ".join(_mode_phrase(adding, letter, arg, target, me) for adding, letter, arg in changes)
    return Line(stamp, Kind.EVENT, text, nick, target)


def _describe_nick(msg: Message, stamp: str) -> Line:
    return Line(stamp, Kind.EVENT, f"is now known as {msg.param(0)}", nick_of(msg.source))


def _describe_topic(msg: Message, stamp: str) -> Line:
    room, topic = msg.param(0), msg.param(1)
    text = f"set the topic of {room}: {topic}" if topic else f"cleared the topic of {room}"
    return Line(stamp, Kind.EVENT, text, nick_of(msg.source), room)


def _describe_invite(msg: Message, stamp: str, me: str = "") -> Line:
    guest, room = msg.param(0), msg.param(1)
    if me and fold(guest) != fold(me):  # invite-notify: a member told of someone else's invitation
        return Line(stamp, Kind.EVENT, f"invited {guest} to {room}", nick_of(msg.source), room)
    return Line(stamp, Kind.EVENT, f"invites you to {room}: /join {room}", nick_of(msg.source))


def _describe_wallops(msg: Message, stamp: str) -> Line:
    # A server operator's word to everyone with +w: a notice, marked so it isn't taken for a private one.
    return Line(stamp, Kind.NOTICE, f"[to all] {msg.param(0)}", nick_of(msg.source) or "server")


def _describe_error(msg: Message, stamp: str) -> Line:
    return Line(stamp, Kind.ERROR, msg.param(0) or "The server closed the connection")


_DESCRIBERS = {
    "PRIVMSG": _describe_privmsg,
    "NOTICE": _describe_privmsg,
    "JOIN": _describe_join,
    "PART": _describe_part,
    "QUIT": _describe_quit,
    "KICK": _describe_kick,
    "NICK": _describe_nick,
    "TOPIC": _describe_topic,
    "INVITE": _describe_invite,
    "ERROR": _describe_error,
    "MODE": _describe_mode,
    "WALLOPS": _describe_wallops,
}
# The describers that say "you" to the reader (given their nick) where others read a name.
_PERSONAL: dict[str, Callable[[Message, str, str], Line | None]] = {
    "KICK": _describe_kick,
    "MODE": _describe_mode,
    "INVITE": _describe_invite,
}

# What each list mode's list is called (478, the list is full).
_LIST_NAMES = {"b": "ban", "q": "mute", "e": "exception", "I": "invitation"}

# Replies worth reading, as sentences; params are those after the reader's nick.
# Numerics 2xx/3xx not listed here are registration and list machinery, not shown.
_NUMERIC_TEXT: dict[str, Callable[[tuple[str, ...], str], str]] = {
    "001": lambda p, me: f"Welcome, {me}! Type /help for commands.",
    "301": lambda p, me: f"{p[0]} is away: {p[-1]}",
    "305": lambda p, me: p[-1],
    "306": lambda p, me: p[-1],
    "331": lambda p, me: f"{p[0]} has no topic",
    "332": lambda p, me: f"Topic of {p[0]}: {p[-1]}",
    "353": lambda p, me: f"In {p[-2]}: {', '.join(p[-1].split())}",
    "372": lambda p, me: p[-1][2:] if p[-1].startswith("- ") else p[-1],
    "324": lambda p, me: f"Modes of {p[0]}: {' '.join(p[1:])}",
    "341": lambda p, me: f"You invited {p[0]} to {p[1]}",
    "367": lambda p, me: f"Banned from {p[0]}: {p[1]}" + (f" (by {nick_of(p[2])})" if len(p) > 3 else ""),
    "368": lambda p, me: f"End of the ban list of {p[0]}",
    "381": lambda p, me: "You are now a server operator: /help lists what you may do",
    "401": lambda p, me: f"There is nobody called {p[0]} here",
    "403": lambda p, me: f"There is no room called {p[0]}",
    "404": lambda p, me: _cannot_speak(p[0], p[-1]),
    "432": lambda p, me: f"“{p[0]}” can't be used as a name: {p[-1]}",
    "433": lambda p, me: f"The name {p[0]} is taken, please choose another",
    "441": lambda p, me: f"{p[0]} is not in {p[1]}",
    "442": lambda p, me: f"You are not in {p[0]}",
    "443": lambda p, me: f"{p[0]} is already in {p[1]}",
    "464": lambda p, me: "Wrong operator name or password",
    "471": lambda p, me: f"{p[0]} is full",
    "472": lambda p, me: f"The server knows no mode {p[0]}",
    "473": lambda p, me: f"{p[0]} is invite-only: ask an operator for an INVITE",
    "474": lambda p, me: f"You are banned from {p[0]}",
    "475": lambda p, me: f"{p[0]} needs a key: /join {p[0]} KEY",
    "478": lambda p, me: f"The {_LIST_NAMES.get(p[1], p[1])} list of {p[0]} is full",
    "481": lambda p, me: "You need to be a server operator to do that",
    "482": lambda p, me: _with_reason(f"You need to be an operator of {p[0]} to do that", _why(p[-1])),
    "728": lambda p, me: f"Muted in {p[0]}: {p[2]}" + (f" (by {nick_of(p[3])})" if len(p) > 4 else ""),
    "729": lambda p, me: f"End of the mute list of {p[0]}",
}


def _why(text: str) -> str:
    """The reason a server gives in brackets at the end of its text ("... (the topic is locked)"), or ""."""
    match = re.search(r"\(([^()]*)\)\s*$", text)
    return match.group(1) if match else ""


def _cannot_speak(room: str, text: str) -> str:
    """404 as a sentence that says why: Lobby (and most servers) name the reason in the text."""
    lowered = text.lower()
    for word, why in (("moderated", "it is moderated"), ("banned", "you are banned"), ("mute", "you are muted"),
                      ("quiet", "you are muted"), ("join", "join it first"), ("external", "join it first")):
        if word in lowered:
            return f"You can't speak in {room}: {why}"
    return f"You can't speak in {room}: {_why(text) or text}"


# Error-numbered replies that are not errors a person must act on.
_QUIET_ERRORS = frozenset({"422"})  # ERR_NOMOTD: a server without a message of the day


def _describe_numeric(msg: Message, stamp: str) -> Line | None:
    if msg.command in _QUIET_ERRORS:
        return None
    me, params = msg.param(0), msg.params[1:]
    render = _NUMERIC_TEXT.get(msg.command)
    error = msg.command[0] in "45"
    if render is not None and (params or msg.command == "001"):
        try:
            text = render(params, me)
        except IndexError:  # a server that sends fewer parameters than the RFC says
            text = " ".join(params)
    elif error and params:
        # Any other error: its human text, with the names it is about in brackets.
        text = _with_reason(params[-1], " ".join(params[:-1]))
    else:
        return None
    return safe(Line(stamp, Kind.ERROR if error else Kind.INFO, text))
