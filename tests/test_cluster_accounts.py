"""Accounts shared by the nodes of a cluster (`lobby serve --redis`): one account, every node."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import redis

from backend.cluster.accounts import ACCOUNTS, RedisAccounts
from backend.core.passwords import hash_password
from backend.node import ChatServer
from tests.ircclient import IrcClient, connect
from tests.test_accounts import FAST, register_account, sign_in

pytest_plugins = ["tests.clusterfixtures"]

ROOT = Path(__file__).resolve().parent.parent
Factory = Callable[..., ChatServer]


def node(make_server: Factory, redis_url: str) -> ChatServer:
    return make_server(redis_url=redis_url, **FAST)


def opened(make_server: Factory, server: ChatServer) -> IrcClient:
    c = connect(server.address)
    make_server.clients.append(c)  # type: ignore[attr-defined]
    return c


def lobby_accounts(redis_url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "backend.cli", "accounts", "--redis", redis_url, *args],
                          input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_an_account_made_on_one_node_signs_in_on_the_other(make_server: Factory, redis_url: str) -> None:
    a, b = node(make_server, redis_url), node(make_server, redis_url)
    alice = opened(make_server, a)
    register_account(alice, "alice", "correct horse")
    alice.send("QUIT")
    alice.expect_closed()
    wrong = opened(make_server, b)
    # Other nicks: B may not have heard yet that alice left A.
    sign_in(wrong, "ali", "alice", "not the password")
    wrong.expect(r" 904 ali ")
    again = opened(make_server, b)
    sign_in(again, "ally", "Alice", "correct horse")
    again.expect(r" 900 ally \S+ alice ")  # the account's name as it was made
    again.expect(r" 903 ally ")
    again.send("CAP END")
    again.expect(r" 001 ally ")
    # Kept as a hash in Redis, never the password itself.
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        stored = r.hget(ACCOUNTS, "alice")
    finally:
        r.close()
    assert stored is not None and "correct horse" not in stored
    assert json.loads(stored)["password"].startswith("scrypt$")


def test_a_registered_nick_is_protected_on_every_node(make_server: Factory, redis_url: str) -> None:
    a, b = node(make_server, redis_url), node(make_server, redis_url)
    watcher = connect(b.address, "watcher")
    make_server.clients.append(watcher)  # type: ignore[attr-defined]
    teacher = opened(make_server, a)
    register_account(teacher, "teacher")
    watcher.expect(r":teacher!\S+ JOIN ")
    teacher.send("QUIT")
    teacher.expect_closed()
    watcher.expect(r":teacher!\S+ QUIT ")
    # Nobody holds the nick now: only the shared account store can refuse it on B.
    guest = opened(make_server, b)
    guest.send("NICK Teacher")
    guest.send("USER g 0 * :G")
    guest.expect(r" 433 \* Teacher :.*registered")
    guest.send("NICK guest")
    guest.expect(r" 001 guest ")
    guest.send("NICK TEACHER")
    guest.expect(r" 433 guest TEACHER :.*registered")
    # And REGISTER of the same name on the other node is refused.
    other = opened(make_server, b)
    other.send("NICK someone")
    other.send("USER s 0 * :S")
    other.expect(r" 001 someone ")
    other.send("REGISTER teacher * :another password")
    other.expect(r"FAIL REGISTER ACCOUNT_EXISTS teacher ")


def test_lobby_accounts_with_redis_manages_the_shared_accounts(make_server: Factory, redis_url: str) -> None:
    added = lobby_accounts(redis_url, "add", "kid", stdin="kids password\n")
    assert added.returncode == 0, added.stderr
    assert "made the account kid" in added.stdout
    again = lobby_accounts(redis_url, "add", "KID", stdin="kids password\n")
    assert again.returncode == 1 and "already exists" in again.stderr
    listed = lobby_accounts(redis_url, "list")
    assert listed.returncode == 0 and listed.stdout.split("\t")[0] == "kid"
    a = node(make_server, redis_url)
    kid = opened(make_server, a)
    sign_in(kid, "kid", "kid", "kids password")
    kid.expect(r" 903 kid ")
    changed = lobby_accounts(redis_url, "passwd", "kid", stdin="a new password\n")
    assert changed.returncode == 0, changed.stderr
    old = opened(make_server, a)
    sign_in(old, "kid2", "kid", "kids password")
    old.expect(r" 904 kid2 ")
    new = opened(make_server, a)
    sign_in(new, "kid3", "kid", "a new password")
    new.expect(r" 903 kid3 ")
    removed = lobby_accounts(redis_url, "remove", "kid")
    assert removed.returncode == 0, removed.stderr
    gone = opened(make_server, a)
    sign_in(gone, "kid4", "kid", "a new password")
    gone.expect(r" 904 kid4 ")
    assert lobby_accounts(redis_url, "remove", "kid").returncode == 1


def test_two_nodes_making_one_name_at_once_make_it_once(redis_url: str) -> None:
    one, two = RedisAccounts(redis_url), RedisAccounts(redis_url)
    one.open()
    two.open()
    try:
        made = [one.create("Carol", hash_password("first password")),
                two.create("carol", hash_password("second password"))]
        assert made == [True, False]
        assert two.display_name("CAROL") == "Carol"
        assert [name for name, _ in one.names()] == ["Carol"]
    finally:
        one.close()
        two.close()


def test_a_node_without_a_database_still_keeps_accounts_in_redis(make_server: Factory, redis_url: str) -> None:
    a = make_server(redis_url=redis_url, db_path=None, **FAST)
    b = make_server(redis_url=redis_url, db_path=None, **FAST)
    alice = opened(make_server, a)
    register_account(alice, "alice")
    bob = opened(make_server, b)
    sign_in(bob, "bob", "alice", "correct horse")
    bob.expect(r" 903 bob ")


def test_redis_going_away_fails_sign_in_without_crashing(
    make_server: Factory, redis_server,  # type: ignore[no-untyped-def]
) -> None:
    a = node(make_server, redis_server.url)
    alice = opened(make_server, a)
    register_account(alice, "alice")
    redis_server.kill()
    late = opened(make_server, a)
    sign_in(late, "alice2", "alice", "correct horse")
    late.expect(r" 904 alice2 ")
    alice.send("PING :still")
    alice.expect(r"PONG \S+ :?still")


def test_a_second_connection_on_another_node_is_refused_the_nick(make_server: Factory, redis_url: str) -> None:
    a, b = node(make_server, redis_url), node(make_server, redis_url)
    watcher = connect(b.address, "watcher")
    make_server.clients.append(watcher)  # type: ignore[attr-defined]
    alice = opened(make_server, a)
    register_account(alice, "alice")
    watcher.expect(r":alice!\S+ JOIN ")
    # Multiclient attaches on the node that has the user only: on B the nick is another node's.
    elsewhere = opened(make_server, b)
    sign_in(elsewhere, "alice", "alice", "correct horse")
    elsewhere.expect(r" 903 ")
    elsewhere.send("CAP END")
    elsewhere.never(r" 001 ")
    assert any(" 433 * alice " in line for line in elsewhere.seen)
    # On A, it attaches.
    here = opened(make_server, a)
    sign_in(here, "alice", "alice", "correct horse")
    here.expect(r" 903 ")
    here.send("CAP END")
    here.expect(r" 001 alice ")
    watcher.never(r"JOIN")
