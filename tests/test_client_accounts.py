"""`lobby connect` and accounts: --account signs in with SASL PLAIN, /register makes one.

The real command in a subprocess (piped) against a real server with accounts; /register
through the client's own ChatClient and command runner over a real socket.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from backend.core.passwords import check_password, hash_password
from backend.node import ChatServer
from client.chat import ChatClient, Outcome
from client.commands import run_input
from client.connection import Connection
from client.terminal import PlainView
from tests.ircclient import IrcClient, connect, wait_until

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
FAST = {"password_delay": 0.05, "password_delay_max": 0.4}


def run(port: int, stdin: str, *args: str, account_password: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LOBBY_PASSWORD", "LOBBY_ACCOUNT_PASSWORD")}
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONIOENCODING"] = "utf-8"
    if account_password is not None:
        env["LOBBY_ACCOUNT_PASSWORD"] = account_password
    command = [sys.executable, "-m", "backend.cli", "connect", "--host", "127.0.0.1", "--port", str(port), *args]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, encoding="utf-8", timeout=30,
                          cwd=ROOT, env=env)


def watcher(server: ChatServer, make_server: Callable[..., ChatServer]) -> IrcClient:
    """A terminal user in #lobby who sees account tags."""
    c = connect(server.address, "watcher", "message-tags account-tag")
    make_server.clients.append(c)  # type: ignore[attr-defined]
    return c


def test_account_signs_in_with_sasl_and_takes_the_accounts_name(make_server: Callable[..., ChatServer]) -> None:
    server = make_server(**FAST)
    assert server.accounts is not None
    server.accounts.create("Alice", hash_password(PASSWORD))
    seen = watcher(server, make_server)
    result = run(server.address[1], "signed and sealed\n", "--account", "alice", account_password=PASSWORD)
    assert result.returncode == 0, result.stderr
    line = seen.expect(r"PRIVMSG #lobby :signed and sealed")
    assert line.tags.get("account") == "Alice"
    assert PASSWORD not in result.stdout + result.stderr


def test_a_wrong_account_password_exits_2_and_says_which_variable(make_server: Callable[..., ChatServer]) -> None:
    server = make_server(**FAST)
    assert server.accounts is not None
    server.accounts.create("alice", hash_password(PASSWORD))
    seen = watcher(server, make_server)
    result = run(server.address[1], "never said\n", "--account", "alice", account_password="not it at all")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.strip() == (f"lobby: 127.0.0.1:{server.address[1]}: wrong account name or password "
                                     "(set LOBBY_ACCOUNT_PASSWORD)")
    assert not [line for line in seen.sync() if "never said" in line]
    # Piped with no password at all: said at once, nothing sent.
    missing = run(server.address[1], "x\n", "--account", "alice")
    assert missing.returncode == 2
    assert "LOBBY_ACCOUNT_PASSWORD" in missing.stderr


def test_register_makes_an_account_of_the_name(make_server: Callable[..., ChatServer]) -> None:
    server = make_server(**FAST)
    out = io.StringIO()
    client = ChatClient(Connection(*server.address), PlainView(out))
    client.start()
    try:
        assert client.sign_in("zed").outcome is Outcome.WELCOME
        assert run_input(client, "/register")  # no password: the usage, nothing sent
        assert run_input(client, f"/register {PASSWORD}")
        assert server.accounts is not None
        wait_until(lambda: server.accounts is not None and server.accounts.password_hash("zed") is not None)
        stored = server.accounts.password_hash("zed")
        assert stored is not None and check_password(PASSWORD, stored)
        wait_until(lambda: "made the account zed" in out.getvalue())
        assert PASSWORD not in out.getvalue()
        assert run_input(client, f"/register {PASSWORD}")
        wait_until(lambda: "no account made: You are already signed in" in out.getvalue())
    finally:
        client.quit()
