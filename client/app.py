"""`lobby connect`: sign in, then chat from a terminal or from a script's pipe.

Two ways to run, chosen by whether stdin and stdout are a terminal:
- terminal: prompt_toolkit reads the line being typed on the main thread while the
  receiver thread prints incoming lines above it (patch_stdout); /commands work;
  a refused name is explained and asked for again, and so is a refused password
  (typed hidden).
- piped: every input line is said in the current room, incoming lines are printed
  plain, end of input sends QUIT and exits 0; a refused name or password exits 2.

The password (--password, or LOBBY_PASSWORD) is sent as PASS on every connection,
reconnects included; it is never shown or logged. With --account, the client signs in
to that account (SASL PLAIN) on every connection, with the account's password from
LOBBY_ACCOUNT_PASSWORD or typed hidden at the terminal; the name defaults to the account.

Exit codes: 0 after quitting, 1 when the server can't be reached at start (or
hangs up before sign-in), 2 when the name or password is refused in piped mode
(or the user gives up at the password prompt).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.patch_stdout import patch_stdout

from backend.irc.describe import Kind, visible

from .chat import ChatClient, Outcome
from .commands import run_input
from .connection import Connection
from .terminal import STYLE, PlainView, TerminalView

EXIT_OK = 0
EXIT_UNREACHABLE = 1
EXIT_BAD_NAME = 2
EXIT_REFUSED = EXIT_BAD_NAME  # a refused password ends like a refused name
PROMPT = "Enter your name: "
PASSWORD_PROMPT = "Password: "
PASSWORD_HINT = "use --password or set LOBBY_PASSWORD"
ACCOUNT_PROMPT = "Account password: "
ACCOUNT_HINT = "set LOBBY_ACCOUNT_PASSWORD"
# How long piped mode waits to be put in a room before it starts sending lines.
READY_WAIT = 15.0


def run_client(host: str, port: int, name: str | None, password: str | None = None,
               account: str | None = None) -> int:
    """Run `lobby connect` against host:port as name (asked for when None); return the exit code.

    password, when given, is sent (PASS) before signing in, on every connection; account,
    when given, is signed in to (SASL) with LOBBY_ACCOUNT_PASSWORD or a password typed hidden.
    """
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    account_password = os.environ.get("LOBBY_ACCOUNT_PASSWORD") or None
    if account and account_password is None:
        account_password = _ask_password(PromptSession(), ACCOUNT_PROMPT) if interactive else None
        if account_password is None:
            print(f"lobby: the password of the account {account} is needed ({ACCOUNT_HINT})", file=sys.stderr)
            return EXIT_REFUSED
    if not interactive:
        # Chat text is UTF-8 whatever the locale says; never die on a character.
        for stream in (sys.stdout, sys.stderr):
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(encoding="utf-8", errors="replace")
    view = TerminalView() if interactive else PlainView()
    client = ChatClient(Connection(host, port), view, password=password)
    if account and account_password:
        client.account = (account, account_password)
        name = name or account
    try:
        client.start()
    except OSError as err:
        return _unreachable(client, err)
    try:
        if interactive:
            return _run_terminal(client, name)
        return _run_piped(client, name)
    except KeyboardInterrupt:  # Ctrl-C while waiting on the server: still leave with QUIT
        client.quit()
        return EXIT_OK


def _unreachable(client: ChatClient, err: OSError | str) -> int:
    reason = err if isinstance(err, str) else (err.strerror or str(err))
    print(f"lobby: cannot connect to {client.address}: {reason}", file=sys.stderr)
    return EXIT_UNREACHABLE


# -- terminal -------------------------------------------------------------------------


def _run_terminal(client: ChatClient, name: str | None) -> int:
    # The typed line is erased on Enter: what was said comes back as a chat line.
    session: PromptSession[str] = PromptSession(style=STYLE, erase_when_done=True)

    def prompt() -> StyleAndTextTuples:
        return [("class:prompt", f"[{visible(client.room or 'no room')}] ")]

    with patch_stdout(raw=True):
        refused = _sign_in_terminal(client, PromptSession(), name)
        if refused is not None:
            return refused
        while True:
            try:
                text = session.prompt(prompt)
            except (EOFError, KeyboardInterrupt):  # Ctrl-D, Ctrl-C: leave properly
                client.quit()
                return EXIT_OK
            if not run_input(client, text):
                return EXIT_OK


def _sign_in_terminal(client: ChatClient, session: PromptSession[str], name: str | None) -> int | None:
    """Ask for a name (and a password) until the server accepts them.

    None once signed in; otherwise the exit code: the user gave up, or the server is gone.
    """
    reopened = False
    while True:
        while not name:
            try:
                name = session.prompt(PROMPT).strip()
            except (EOFError, KeyboardInterrupt):
                client.quit()
                return EXIT_UNREACHABLE
        result = client.sign_in(name)
        if result.outcome is Outcome.WELCOME:
            return None
        if result.outcome is Outcome.NAME_REFUSED:
            client.note(result.text, Kind.ERROR)
            name = None
            continue
        if result.outcome is Outcome.PASSWORD_REFUSED:
            # The server hung up (464): ask, hidden, and come back on a new connection.
            client.note(result.text.capitalize(), Kind.ERROR)
            password = _ask_password(session, ACCOUNT_PROMPT if client.account_refused else PASSWORD_PROMPT)
            if password is None:
                return EXIT_REFUSED
            if client.account_refused and client.account is not None:
                client.account = (client.account[0], password)
            else:
                client.password = password
            reopened = False
            try:
                client.start()
            except OSError as err:
                return _unreachable(client, err)
            continue
        # The server hung up while we were signing in (say, a name prompt left for
        # longer than its registration timeout): connect once more, then give up.
        if reopened:
            print(f"lobby: {client.address} closed the connection: {result.text}", file=sys.stderr)
            return EXIT_UNREACHABLE
        reopened = True
        try:
            client.start()
        except OSError as err:
            return _unreachable(client, err)


def _ask_password(session: PromptSession[str], prompt: str = PASSWORD_PROMPT) -> str | None:
    """The password, typed hidden (shown as *); None if the user gives up (Ctrl-D, Ctrl-C, empty)."""
    try:
        password = session.prompt(prompt, is_password=True)
    except (EOFError, KeyboardInterrupt):
        return None
    return password or None


# -- piped ------------------------------------------------------------------------------


def _stdin_lines() -> Iterator[str]:
    """Lines of stdin as UTF-8 text without their endings (bytes, so the locale can't interfere)."""
    for raw in sys.stdin.buffer:
        yield raw.decode("utf-8", errors="replace").rstrip("\r\n")


def _run_piped(client: ChatClient, name: str | None) -> int:
    lines = _stdin_lines()
    if not name:
        print(PROMPT.rstrip(), flush=True)
        name = next(lines, "").strip()
        if not name:
            print("lobby: no name given (use --name NAME)", file=sys.stderr)
            client.quit()
            return EXIT_BAD_NAME
    result = client.sign_in(name)
    if result.outcome is Outcome.NAME_REFUSED:
        print(f"lobby: {result.text} (use --name NAME)", file=sys.stderr)
        client.quit()
        return EXIT_BAD_NAME
    if result.outcome is Outcome.PASSWORD_REFUSED:
        hint = ACCOUNT_HINT if client.account_refused else PASSWORD_HINT
        print(f"lobby: {client.address}: {result.text} ({hint})", file=sys.stderr)
        client.quit()
        return EXIT_REFUSED
    if result.outcome is Outcome.CLOSED:
        print(f"lobby: {client.address} closed the connection: {result.text}", file=sys.stderr)
        client.quit()
        return EXIT_UNREACHABLE
    for text in lines:
        if text.strip():
            # After a reconnect, wait to be back in the room rather than drop the line.
            client.wait_ready(READY_WAIT)
            if client.gave_up.is_set():
                # The server came back with another password: the rest of the input can't go out.
                print(f"lobby: {client.address}: {client.refusal()} ({PASSWORD_HINT})", file=sys.stderr)
                client.quit()
                return EXIT_REFUSED
            client.say(text)
    client.quit()
    return EXIT_OK
