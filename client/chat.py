"""The terminal client's side of the IRC conversation: sign-in, rooms, and staying connected.

ChatClient runs the receiver thread: it reads the server's messages, answers PING,
negotiates capabilities, keeps track of the user's nick and rooms, and shows each
event through a View. When the connection breaks it reconnects with backoff,
signs in under the same nick and rejoins the rooms. The main thread calls the
public methods (sign_in, say, join, quit, ...) with what the user typed.

It speaks plain IRC (modern.ircdocs.horse) and asks for IRCv3 capabilities only
when the server offers them, so it works with any IRC server, not only Lobby's.

History the server replays (an IRCv3 `chathistory` batch) is collected until the
batch ends and shown at once between two separator lines, "── earlier in #lobby ──"
and "── now ──", each line with its original time and marked as history, minus
whatever is already on screen (after a reconnect the server replays it again).

/search asks a server that advertises SEARCH (ISUPPORT) for matching lines of the
user's rooms; its `draft/search` batch is shown between "── search: words ──" and
"── end of search ──", each line led by its date and room, newest first.

Rich messages (IRCv3 client tags, with message-tags): a reply (+draft/reply) is led by a line
"↪ replying to bob: the start of bob's line" when that line is in the scrollback; a reaction
(a TAGMSG with +draft/react) is one short line, "• alice reacted 👍 to "the start of the line"";
typing notices (+typing) are not shown. /react and /reply answer the last line someone else said
in the current room.
"""

from __future__ import annotations

import base64
import logging
import queue
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from backend.irc import Message, fold, split_text
from backend.irc.describe import (
    Kind,
    Line,
    clock,
    describe,
    is_channel,
    mark,
    message_time,
    mode_changes,
    nick_of,
    safe,
    stamp_at,
    visible,
)

from .connection import Connection

log = logging.getLogger("lobby.client")

DEFAULT_ROOM = "#lobby"
# batch + server-time: replayed history arrives marked as such, with its original times;
# message-tags: with msgids, which tell what was already shown when history is replayed again.
WANTED_CAPS = ("server-time", "echo-message", "batch", "message-tags")
# Seconds between reconnection attempts; the last one repeats.
BACKOFF = (1, 2, 4, 8, 15, 30)
# How long to wait for the server's goodbye after QUIT before closing anyway.
QUIT_WAIT = 3.0
# What a PRIVMSG may carry: 512 bytes less CRLF, the command, the target and the
# ":nick!user@host " the server puts in front when relaying it.
LINE_BUDGET = 512 - 2 - len("PRIVMSG  :") - 100
# Pacing of what we say: a burst, then a steady rate. Servers disconnect clients that
# send faster ("Excess Flood"), and `cat build.log | lobby connect` must not be one.
PACE_BURST = 10
PACE_PER_SECOND = 3.0
NAME_ERRORS = frozenset({"431", "432", "433", "436", "437"})
ERR_PASSWDMISMATCH = "464"
# SASL (IRCv3 sasl 3.1): the payload goes in 400-byte pieces; these numerics end an attempt.
SASL_CHUNK = 400
RPL_SASLSUCCESS = "903"
SASL_FAILURES = frozenset({"902", "904", "905", "906", "908"})
END_OF_WELCOME = frozenset({"376", "422"})
# What servers replay as history on join.
_REPLAYED = frozenset({"PRIVMSG", "NOTICE", "TOPIC"})
# At most this many lines of one history batch are kept (the newest), whatever a server sends.
HISTORY_MAX = 1000
# How many msgids of shown lines are remembered to skip their replay after a reconnect.
SEEN_MAX = 5000
# Lines remembered (msgid -> nick, text) to show what a reply or a reaction is about.
SCROLLBACK_MAX = 2000
# How much of a line a reply or a reaction quotes.
SNIPPET = 40
# NAMES prefixes that make a member someone who runs the room: owner, admin, operator (PREFIX in 005).
OPERATOR_PREFIXES = "~&@"
STATUS_PREFIXES = "~&@%+"


class View(Protocol):
    """Where the client's lines go: a terminal, or plain stdout."""

    def show(self, line: Line, room: str | None, me: str) -> None:
        """Show one line; room is the room being talked in, me the user's nick."""
        ...


class Outcome(StrEnum):
    """How an attempt to sign in ended."""

    WELCOME = "welcome"
    NAME_REFUSED = "name refused"
    PASSWORD_REFUSED = "password refused"  # 464: wrong, or missing on a server that wants one
    CLOSED = "closed"


@dataclass(frozen=True)
class SignIn:
    """The outcome of sign_in(), with the server's explanation when it was refused."""

    outcome: Outcome
    text: str = ""


class Pacer:
    """A token bucket: wait() returns at once during a burst, then lets rate calls through a second."""

    def __init__(self, burst: int = PACE_BURST, rate: float = PACE_PER_SECOND) -> None:
        self.burst = burst
        self.rate = rate
        self._tokens = float(burst)
        self._last = time.monotonic()

    def delay(self) -> float:
        """Take a token; return how long to wait before using it."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= 1
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


class ChatClient:
    """One user's chat session over a Connection, surviving reconnects."""

    def __init__(
        self, conn: Connection, view: View, default_room: str = DEFAULT_ROOM, password: str | None = None
    ) -> None:
        self.conn = conn
        self.view = view
        self.default_room = default_room
        # Sent as PASS before NICK/USER on every connection, reconnects included.
        self.password = password or None
        # (account, password) to sign in to with SASL PLAIN on every connection; never shown.
        self.account: tuple[str, str] | None = None
        self.account_refused = False
        self.nick = ""
        self.rooms: list[str] = []
        self.room: str | None = None
        # Where we may moderate, so /help shows those commands only to whom they apply:
        # folded rooms where we are an operator (@ in NAMES, MODE +o), and server operator (381).
        self.op_rooms: set[str] = set()
        self.server_oper = False
        self.caps: set[str] = set()
        self.registered = False
        self.ready = threading.Event()  # signed in and in a room: input can be sent
        # Set when the client stops trying to reconnect (the server now refuses our password).
        self.gave_up = threading.Event()
        self._lock = threading.RLock()
        self._sign_ins: queue.Queue[SignIn] = queue.Queue()
        self._quitting = threading.Event()
        self._welcomed = False
        self._user_sent = False
        self._offered: set[str] = set()
        self._reconnecting = False
        self._rejoin: dict[str, str] = {}
        self._last_error = ""
        # History replayed on rejoin repeats what is already on screen: lines stamped no
        # later than the newest one shown before the connection broke are skipped.
        self._newest_shown = 0.0
        self._replay_cutoff = 0.0
        # Servers with msgids allow exact dedupe: the msgids of lines shown (bounded, oldest dropped).
        self._seen_ids: OrderedDict[str, None] = OrderedDict()
        # Open chathistory batches: id -> (target, the messages so far).
        self._batches: dict[str, tuple[str, deque[Message]]] = {}
        # Open draft/search batches (id -> results so far), and the searches asked for and not yet answered.
        self._searches: dict[str, list[Message]] = {}
        self._asked: deque[str] = deque(maxlen=10)
        # ISUPPORT tokens of the server (005), e.g. SEARCH=50.
        self.isupport: dict[str, str] = {}
        self._password_refused = False
        self._thread: threading.Thread | None = None
        self._pacer = Pacer()
        # Lines said (msgid -> nick, text), and the last line someone else said in each room or
        # private conversation (folded): what /react and /reply answer.
        self._said: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._last_said: dict[str, str] = {}

    # -- lifecycle (main thread) --------------------------------------------------

    def start(self) -> None:
        """Connect and start the receiver thread; raise OSError if the server can't be reached."""
        self.conn.open()
        self._begin_sign_in()
        self._thread = threading.Thread(target=self._receive_loop, name="receiver", daemon=True)
        self._thread.start()

    def sign_in(self, nick: str, timeout: float = 30.0) -> SignIn:
        """Ask for nick and wait until the server welcomes us, refuses the name or hangs up."""
        with self._lock:
            self.nick = nick
            self.conn.send(Message("NICK", (nick,)))
            if not self._user_sent:
                self._send_user(nick)
        try:
            return self._sign_ins.get(timeout=timeout)
        except queue.Empty:
            return SignIn(Outcome.CLOSED, "the server did not answer")

    def wait_ready(self, timeout: float) -> bool:
        """Wait until we are in a room (the server's auto-join or ours); False at once if we gave up."""
        deadline = time.monotonic() + timeout
        while not self.ready.wait(min(0.2, max(0.0, deadline - time.monotonic()))):
            if self.gave_up.is_set() or time.monotonic() >= deadline:
                return False
        return True

    def refusal(self) -> str:
        """Why the server would not let us in, in words (no password shown, ever)."""
        if self.account_refused:
            return "wrong account name or password"
        return "wrong password" if self.password else "this server needs a password"

    def quit(self, reason: str = "") -> None:
        """Say goodbye with QUIT, wait briefly for the server to close, then close."""
        self._quitting.set()
        self.conn.send(Message("QUIT", (reason,) if reason else ()))
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(QUIT_WAIT)
        self.conn.close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(1.0)

    @property
    def address(self) -> str:
        """The server's host:port."""
        return self.conn.address

    # -- what the user does (main thread) ----------------------------------------------

    def note(self, text: str, kind: Kind = Kind.INFO) -> None:
        """Show a line of the client's own (not from the server)."""
        self.view.show(Line(clock(time.time()), kind, text), self.room, self.nick)

    def send(self, message: Message) -> bool:
        """Send a message, telling the user when it could not go out."""
        if not self.registered or not self.conn.send(message):
            self.note("not connected — not sent", Kind.ERROR)
            return False
        return True

    def say(self, text: str, action: bool = False) -> None:
        """Say text (or do it, for /me) in the current room."""
        if self.room is None:
            self.note("you are not in a room — /join #room first", Kind.ERROR)
            return
        self.message(self.room, text, action)

    def message(self, target: str, text: str, action: bool = False, tags: dict[str, str] | None = None) -> None:
        """Send text to a room or a nick, split to fit IRC lines; show it if the server won't echo it."""
        budget = LINE_BUDGET - len(target.encode("utf-8")) - (len("\x01ACTION \x01") if action else 0)
        for piece in split_text(text, budget):
            body = f"\x01ACTION {piece}\x01" if action else piece
            message = Message("PRIVMSG", (target, body), None, tags or {})
            if self._quitting.wait(self._pacer.delay()):
                return
            if not self.send(message):
                return
            if "echo-message" not in self.caps:
                self._show(Message("PRIVMSG", (target, body), self.nick))

    def _answered(self) -> str | None:
        """The msgid of the last line someone else said in the current room; None (and why) if none."""
        if self.room is None:
            self.note("you are not in a room", Kind.ERROR)
            return None
        if "message-tags" not in self.caps:
            self.note("this server does not relay replies and reactions", Kind.ERROR)
            return None
        with self._lock:
            msgid = self._last_said.get(fold(self.room))
        if msgid is None:
            self.note("nothing said here yet to answer", Kind.ERROR)
        return msgid

    def react(self, emoji: str) -> None:
        """React (+draft/react) to the last line someone else said in the current room."""
        msgid = self._answered()
        if msgid is None or self.room is None:
            return
        message = Message("TAGMSG", (self.room,), None, {"+draft/reply": msgid, "+draft/react": emoji})
        if self.send(message) and "echo-message" not in self.caps:
            self._show(replace(message, source=self.nick))

    def reply(self, text: str) -> None:
        """Say text in the current room as a reply (+draft/reply) to the last line someone else said there."""
        msgid = self._answered()
        if msgid is not None and self.room is not None:
            self.message(self.room, text, tags={"+draft/reply": msgid})

    def join(self, room: str) -> None:
        """Join a room (or switch to it if already there); the room becomes the current one."""
        with self._lock:
            known = next((r for r in self.rooms if fold(r) == fold(room)), None)
            if known is not None:
                self.room = known
        if known is not None:
            self.note(f"now talking in {known}")
            return
        self.send(Message("JOIN", (room,)))

    def part(self, room: str | None = None, reason: str = "") -> None:
        """Leave a room, the current one by default."""
        room = room or self.room
        if room is None:
            self.note("you are not in a room", Kind.ERROR)
            return
        self.send(Message("PART", (room, reason) if reason else (room,)))

    def topic(self, text: str | None = None) -> None:
        """Show the current room's topic, or set it."""
        if self.room is None:
            self.note("you are not in a room", Kind.ERROR)
            return
        self.send(Message("TOPIC", (self.room,) if text is None else (self.room, text)))

    def who(self) -> None:
        """Ask who is in the current room (the answer is shown as "In #lobby: ...")."""
        if self.room is None:
            self.note("you are not in a room", Kind.ERROR)
            return
        self.send(Message("NAMES", (self.room,)))

    def search(self, text: str) -> None:
        """Ask the server for lines of our rooms matching text (words, from:nick, in:#room, ...)."""
        if "SEARCH" not in self.isupport:
            self.note("this server does not offer search", Kind.ERROR)
            return
        with self._lock:
            self._asked.append(text)
        self.send(Message("SEARCH", (text,)))

    def change_nick(self, nick: str) -> None:
        """Ask for a new nick; it changes when the server confirms."""
        self.send(Message("NICK", (nick,)))

    def is_operator(self) -> bool:
        """Whether we may run the current room: its operator, or a server operator."""
        with self._lock:
            return self.server_oper or (self.room is not None and fold(self.room) in self.op_rooms)

    def mode(self, *params: str) -> None:
        """MODE on the current room: no params asks its modes (shown as "Modes of #dev: +nt")."""
        if self.room is None:
            self.note("you are not in a room", Kind.ERROR)
            return
        self.send(Message("MODE", (self.room, *params)))

    def kick(self, nick: str, reason: str = "") -> None:
        """Remove nick from the current room, saying why."""
        if self.room is None:
            self.note("you are not in a room", Kind.ERROR)
            return
        self.send(Message("KICK", (self.room, nick, reason) if reason else (self.room, nick)))

    def invite(self, nick: str, room: str | None = None) -> None:
        """Invite nick to a room, the current one by default."""
        room = room or self.room
        if room is None:
            self.note("you are not in a room", Kind.ERROR)
            return
        self.send(Message("INVITE", (nick, room)))

    def register(self, password: str) -> None:
        """Make an account of our nick (draft/account-registration) and sign in to it; the password is never shown."""
        self.send(Message("REGISTER", ("*", "*", password)))

    def oper(self, name: str, password: str) -> None:
        """Become a server operator; the password goes to the server only, never to the screen or a log."""
        self.send(Message("OPER", (name, password)))

    # -- receiver thread ---------------------------------------------------------------

    def _receive_loop(self) -> None:
        while True:
            for message in self.conn.messages():
                try:
                    self._handle(message)
                except Exception:
                    # A message we mishandle must not end the receiver, and with it the chat.
                    log.exception("handling %s failed", message.command)
            with self._lock:
                self.registered = False
                self.ready.clear()
                self._replay_cutoff = self._newest_shown
                self._batches.clear()
                self._searches.clear()
                self._asked.clear()
                # A new connection starts with no status: rejoining sends NAMES again, and OPER is per connection.
                self.op_rooms.clear()
                self.server_oper = False
            if self._quitting.is_set():
                return
            if not self._welcomed:
                # Still signing in: the main thread decides what to do (ask again, give up).
                if self._password_refused:
                    self._sign_ins.put(SignIn(Outcome.PASSWORD_REFUSED, self.refusal()))
                else:
                    self._sign_ins.put(SignIn(Outcome.CLOSED, self._last_error or "connection closed"))
                return
            if self._password_refused:
                # The server restarted with another password: retrying would only be refused again.
                self.note(f"{self.refusal()} — not reconnecting; /quit to leave", Kind.ERROR)
                self.gave_up.set()
                return
            if not self._reconnect():
                return

    def _reconnect(self) -> bool:
        """Open a new connection with backoff; False if the user quit meanwhile."""
        self.conn.close()
        attempt = 0
        text = "connection lost"
        while True:
            delay = BACKOFF[min(attempt, len(BACKOFF) - 1)]
            self.note(f"{text} — retrying in {delay}s", Kind.ERROR)
            if self._quitting.wait(delay):
                return False
            try:
                self.conn.open()
            except OSError as err:
                attempt += 1
                text = f"cannot reach {self.address} ({err.strerror or err})"
                continue
            if self._quitting.is_set():
                return False
            with self._lock:
                self._reconnecting = True
                self._rejoin = {fold(r): r for r in self.rooms}
                self._begin_sign_in()
                self.conn.send(Message("NICK", (self.nick,)))
                self._send_user(self.nick)
            return True

    def _begin_sign_in(self) -> None:
        # CAP LS first: it tells servers (and Lobby's plain-text sniffing) at once that
        # this is an IRC client, and holds registration until we have our capabilities.
        # Then PASS, which must come before NICK/USER (modern.ircdocs.horse, "PASS").
        self._user_sent = False
        self._offered = set()
        self.caps = set()
        self._last_error = ""
        self._password_refused = False
        self.account_refused = False
        self.conn.send(Message("CAP", ("LS", "302")))
        if self.password:
            self.conn.send(Message("PASS", (self.password,)))


    def _send_user(self, nick: str) -> None:
        username = "".join(ch for ch in nick if ch.isascii() and ch.isalnum())[:10] or "lobby"
        self.conn.send(Message("USER", (username, "0", "*", nick)))
        self._user_sent = True

    def _handle(self, msg: Message) -> None:
        """React to one message from the server, then show it if a person should see it."""
        command = msg.command
        if self._password_refused:
            return  # the rest of what was read with the 464 (its ERROR): we hung up already
        if command == "PING":
            self.conn.send(Message("PONG", msg.params))
            return
        if command == "CAP":
            self._on_cap(msg)
            return
        if command == "421" and msg.param(1).upper() == "CAP":
            return  # a server without capability negotiation: registration goes on without it
        if command == "ERROR":
            self._last_error = visible(msg.param(0))  # printed as is when sign-in fails
        if command == "BATCH":
            self._on_batch(msg)
            return
        batched = self._batches.get(msg.tags.get("batch", ""))
        if batched is not None:
            batched[1].append(msg)  # shown, set apart, when the batch ends
            return
        found = self._searches.get(msg.tags.get("batch", ""))
        if found is not None:
            if len(found) < HISTORY_MAX:
                found.append(msg)
            return
        if command == "FAIL" and msg.param(0).upper() == "SEARCH":
            self._search_failed(msg)
            return
        if command == "AUTHENTICATE" or command == RPL_SASLSUCCESS or command in SASL_FAILURES:
            self._on_sasl(msg)
            return
        if command == "REGISTER" or (command == "FAIL" and msg.param(0).upper() == "REGISTER"):
            self._on_register(msg)
            return
        if command == "005":
            for token in msg.params[1:-1]:
                key, _, value = token.partition("=")
                self.isupport[key.upper()] = value
        with self._lock:
            if not self.registered and command == ERR_PASSWDMISMATCH:
                # Hang up now rather than wait for the server's ERROR: the outcome (and
                # whether to ask again) is decided when the receiver sees the end.
                self._password_refused = True
                self.conn.close()
                return
            if not self.registered and command in NAME_ERRORS:
                self._on_name_refused(msg)
                return
            if command == "001":
                self.registered = True
                self.nick = msg.param(0) or self.nick
            elif command in END_OF_WELCOME and self.registered:
                self._join_rooms()
            elif command in ("JOIN", "PART", "KICK", "NICK"):
                self._track(msg)
            elif command in ("353", "MODE", "381"):
                self._track_status(msg)
            # A reconnect's welcome is noise; so is the goodbye after our own QUIT.
            hide = (self._reconnecting and command in ("001", "372")) or (
                command == "ERROR" and self._quitting.is_set()
            )
        if not hide:
            self._show(msg)
        if command == "001" and not self._welcomed:
            self._welcomed = True
            self._sign_ins.put(SignIn(Outcome.WELCOME))

    def _show(self, msg: Message) -> None:
        for line in self._lines(msg):
            self.view.show(line, self.room, self.nick)

    def _lines(self, msg: Message, history: bool = False) -> list[Line]:
        """The lines to show for msg (a reply is led by what it answers); none for machinery or what is
        already on screen."""
        if msg.command == "TAGMSG" and "+draft/react" not in msg.tags and "+draft/unreact" not in msg.tags:
            return []  # typing notices and other tags alone: nothing to read
        if self._already_shown(msg):
            return []
        now = time.time()
        line = self._reaction(msg, now) if msg.command == "TAGMSG" else describe(msg, now, self.nick)
        if line is None:
            return []
        if history:
            line = replace(line, history=True)
        lines = [line]
        parent = self._said.get(msg.tags.get("+draft/reply", "")) if msg.command != "TAGMSG" else None
        if parent is not None:
            lead = Line(line.stamp, Kind.EVENT, f"↪ replying to {parent[0]}: {_snippet(parent[1])}", room=line.room,
                        history=history)
            lines.insert(0, safe(lead))
        if msg.command in ("PRIVMSG", "NOTICE") and line.nick:
            self._remember(msg, line)
        return lines

    def _reaction(self, msg: Message, now: float) -> Line | None:
        """ "alice reacted 👍 to "hello"" (or took it back) for a TAGMSG carrying a reaction."""
        nick = nick_of(msg.source)
        target = msg.param(0)
        parent = self._said.get(msg.tags.get("+draft/reply", ""))
        about = f'"{_snippet(parent[1])}"' if parent is not None else "a message"
        if "+draft/react" in msg.tags:
            text = f"reacted {msg.tags['+draft/react']} to {about}"
        else:
            text = f"took back {msg.tags['+draft/unreact']} from {about}"
        line = Line(stamp_at(message_time(msg, now), now), Kind.EVENT, text, nick, target if is_channel(target) else "")
        return safe(replace(line, own=bool(self.nick) and fold(nick) == fold(self.nick)))

    def _remember(self, msg: Message, line: Line) -> None:
        """Keep a line said, for the replies and reactions to it; the last one of others, for /react."""
        msgid = msg.tags.get("msgid")
        if not msgid:
            return
        with self._lock:
            self._said[msgid] = (line.nick, line.text)
            if len(self._said) > SCROLLBACK_MAX:
                self._said.popitem(last=False)
            if not line.own:
                target = msg.param(0)
                self._last_said[fold(target if is_channel(target) else line.nick)] = msgid

    def _already_shown(self, msg: Message) -> bool:
        """Whether msg repeats a line shown before (history replayed on rejoin); remember it if not.

        With a msgid the answer is exact. Without one, a line stamped no later than
        the newest line shown before the connection broke counts as shown.
        """
        msgid = msg.tags.get("msgid")
        if msgid:
            if msgid in self._seen_ids:
                return True
            self._seen_ids[msgid] = None
            if len(self._seen_ids) > SEEN_MAX:
                self._seen_ids.popitem(last=False)
        if "time" in msg.tags and msg.command in _REPLAYED:
            when = message_time(msg, time.time())
            if not msgid and when <= self._replay_cutoff:
                return True
            self._newest_shown = max(self._newest_shown, when)
        return False

    def _on_batch(self, msg: Message) -> None:
        """BATCH +id type [target] opens a batch, BATCH -id closes it (IRCv3 batch).

        Only chathistory batches are held back; the lines of any other kind of batch
        are shown as they come, like lines outside a batch.
        """
        ref = msg.param(0)
        if ref.startswith("+") and msg.param(1).lower() == "chathistory":
            self._batches[ref[1:]] = (msg.param(2), deque(maxlen=HISTORY_MAX))
        elif ref.startswith("+") and msg.param(1).lower() == "draft/search":
            self._searches[ref[1:]] = []
        elif ref.startswith("-") and ref[1:] in self._batches:
            target, messages = self._batches.pop(ref[1:])
            self._show_history(target, list(messages))
        elif ref.startswith("-") and ref[1:] in self._searches:
            self._show_search(self._searches.pop(ref[1:]))

    def _asked_for(self) -> str:
        """The oldest search still waiting for its answer (the server answers in order)."""
        with self._lock:
            return self._asked.popleft() if self._asked else ""

    def _show_search(self, messages: list[Message]) -> None:
        """Search results, newest first, each "2024-05-01 12:04 #room bob: text", set apart by marks."""
        asked = self._asked_for()
        count = f"{len(messages)} found" if messages else "nothing found"
        self.view.show(mark(f"search: {visible(asked)} ({count})" if asked else f"search ({count})"),
                       self.room, self.nick)
        now = time.time()
        for msg in messages:
            line = describe(msg, now, self.nick)
            if line is None:
                continue
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(message_time(msg, now)))
            # The room goes with the date: a result is shown whatever room is current.
            self.view.show(replace(line, stamp=f"{when} {line.room}".rstrip(), room="", history=True),
                           self.room, self.nick)
        if messages:
            self.view.show(mark("end of search"), self.room, self.nick)

    def _search_failed(self, msg: Message) -> None:
        """FAIL SEARCH <code> [context] :text, as a sentence."""
        self._asked_for()
        code, context = msg.param(1).upper(), " ".join(msg.params[2:-1])
        if code == "INVALID_TARGET":
            self.note(f"search: you are not in {visible(context)}", Kind.ERROR)
        else:
            self.note(f"search: {visible(msg.params[-1])}" + (f" ({visible(context)})" if context else ""), Kind.ERROR)

    def _show_history(self, target: str, messages: list[Message]) -> None:
        """History lines between "── earlier in #room ──" and "── now ──"; nothing if all were shown."""
        lines = [line for m in messages for line in self._lines(m, history=True)]
        if not lines:
            return
        where = f" in {target}" if target else ""
        self.view.show(mark(f"earlier{where}"), self.room, self.nick)
        for line in lines:
            self.view.show(line, self.room, self.nick)
        self.view.show(mark("now"), self.room, self.nick)

    def _on_cap(self, msg: Message) -> None:
        sub = msg.param(1).upper()
        if sub == "LS":
            self._offered.update(item.split("=", 1)[0] for item in msg.params[-1].split())
            if len(msg.params) >= 4 and msg.params[2] == "*":
                return  # CAP LS 302 continues on the next line
            wanted = [cap for cap in WANTED_CAPS if cap in self._offered]
            if self.account is not None and "sasl" in self._offered:
                wanted.append("sasl")
            if wanted:
                self.conn.send(Message("CAP", ("REQ", " ".join(wanted))))
            else:
                self.conn.send(Message("CAP", ("END",)))
        elif sub in ("ACK", "NAK"):
            if sub == "ACK":
                for item in msg.params[-1].split():
                    if item.startswith("-"):
                        self.caps.discard(item[1:])
                    else:
                        self.caps.add(item)
            if not self.registered and self.account is not None and "sasl" in self.caps:
                self.conn.send(Message("AUTHENTICATE", ("PLAIN",)))  # CAP END once it is answered
            elif not self.registered:
                self.conn.send(Message("CAP", ("END",)))

    def _on_sasl(self, msg: Message) -> None:
        """SASL PLAIN: the payload after "AUTHENTICATE +", then CAP END; a refusal hangs up like a 464."""
        if msg.command == "AUTHENTICATE":
            if msg.param(0) == "+" and self.account is not None:
                name, password = self.account
                payload = base64.b64encode(f"{name}\0{name}\0{password}".encode()).decode("ascii")
                pieces = [payload[i:i + SASL_CHUNK] for i in range(0, len(payload), SASL_CHUNK)]
                if len(pieces[-1]) == SASL_CHUNK:
                    pieces.append("+")  # a payload of whole pieces ends with an empty one
                for piece in pieces:
                    self.conn.send(Message("AUTHENTICATE", (piece,)))
            return
        if msg.command == RPL_SASLSUCCESS:
            if not self.registered:
                self.conn.send(Message("CAP", ("END",)))
            return
        with self._lock:
            if not self.registered:
                self.account_refused = True
                self._password_refused = True
                self.conn.close()

    def _on_register(self, msg: Message) -> None:
        """REGISTER SUCCESS or FAIL REGISTER, in words."""
        if msg.command == "REGISTER":
            name = visible(msg.param(1))
            self.note(f"made the account {name}, and signed in to it; next time: lobby connect --account {name}")
        else:
            self.note(f"no account made: {visible(msg.params[-1])}", Kind.ERROR)

    def _on_name_refused(self, msg: Message) -> None:
        line = describe(msg, time.time())
        text = line.text if line else f"the name {self.nick} was refused"
        if not self._welcomed:
            self._sign_ins.put(SignIn(Outcome.NAME_REFUSED, text))
            return
        # Coming back after a reconnect and our name is held (by a ghost, or a newcomer).
        new = (self.nick + "_")[-30:]
        self.note(f"{text}; trying {new}", Kind.ERROR)
        self.nick = new
        self.conn.send(Message("NICK", (new,)))

    def _join_rooms(self) -> None:
        """After the welcome: go back to our rooms, or to the default room on first sign-in."""
        rooms = list(self._rejoin.values()) if self._reconnecting else (self.rooms or [self.default_room])
        if rooms:
            # Lobby has already put us in #lobby; joining again is harmless and other servers need it.
            self.conn.send(Message("JOIN", (",".join(rooms),)))
        elif self._reconnecting:
            self._reconnecting = False
            self.note(f"reconnected as {self.nick}")

    def _track(self, msg: Message) -> None:
        """Keep nick, rooms and the current room up to date (lock held)."""
        who = nick_of(msg.source)
        if msg.command == "KICK":
            who = msg.param(1)
        if fold(who) != fold(self.nick):
            return
        room = msg.param(0)
        if msg.command == "NICK":
            self.nick = room
        elif msg.command == "JOIN":
            self._joined(room)
        else:
            self.rooms = [r for r in self.rooms if fold(r) != fold(room)]
            self.op_rooms.discard(fold(room))
            if self.room is not None and fold(self.room) == fold(room):
                self.room = self.rooms[-1] if self.rooms else None
            if not self.rooms:
                self.ready.clear()

    def _track_status(self, msg: Message) -> None:
        """Keep op_rooms and server_oper up to date from NAMES, MODE and 381 (lock held)."""
        if msg.command == "381":
            self.server_oper = True
            return
        if msg.command == "353":
            room = fold(msg.param(2))
            for entry in msg.params[-1].split():
                nick = entry.lstrip(STATUS_PREFIXES).split("!", 1)[0]
                if fold(nick) == fold(self.nick):
                    status = entry[: len(entry) - len(entry.lstrip(STATUS_PREFIXES))]
                    if any(p in OPERATOR_PREFIXES for p in status):
                        self.op_rooms.add(room)
                    else:
                        self.op_rooms.discard(room)
            return
        target = msg.param(0)
        if not is_channel(target):
            if fold(target) == fold(self.nick):  # our own user modes: +o from OPER, -o dropped
                for adding, letter, _ in mode_changes(msg.param(1), []):
                    if letter == "o":
                        self.server_oper = adding
            return
        for adding, letter, arg in mode_changes(msg.param(1), list(msg.params[2:])):
            # +q is a quiet list on Lobby and Libera (an owner elsewhere): only +o and +a (admin) count.
            if letter in "ao" and arg and fold(arg) == fold(self.nick):
                (self.op_rooms.add if adding else self.op_rooms.discard)(fold(target))

    def _joined(self, room: str) -> None:
        key = fold(room)
        if self._reconnecting and key in self._rejoin:
            del self._rejoin[key]
            if not self._rejoin:
                self._reconnecting = False
                self.note(f"reconnected as {self.nick} — rejoined {', '.join(self.rooms)}")
        elif all(fold(r) != key for r in self.rooms):
            self.rooms.append(room)
            self.room = room
        if is_channel(room):
            self.ready.set()


def _snippet(text: str) -> str:
    """The start of a line, to quote it in a reply or a reaction."""
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET else text[: SNIPPET - 1] + "…"
