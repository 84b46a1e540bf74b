"""Accounts over real sockets and a real SQLite file: REGISTER, SASL PLAIN, nick protection, the CLI."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from backend.irc import parse_line
from backend.node import ChatServer
from tests.ircclient import IrcClient, connect

ROOT = Path(__file__).resolve().parent.parent
Factory = Callable[..., ChatServer]
FAST = {"password_delay": 0.05, "password_delay_max": 0.4}


def plain(account: str, password: str) -> str:
    return base64.b64encode(f"\0{account}\0{password}".encode()).decode()


def opened(make_server: Factory, server: ChatServer) -> Callable[[], IrcClient]:
    def factory() -> IrcClient:
        c = connect(server.address)
        make_server.clients.append(c)  # type: ignore[attr-defined]
        return c
    return factory


def sign_in(c: IrcClient, nick: str, account: str, password: str, caps: str = "sasl") -> None:
    c.send("CAP LS 302")
    c.send(f"CAP REQ :{caps}")
    c.send(f"NICK {nick}")
    c.send(f"USER {nick} 0 * :{nick}")
    c.expect(r" CAP \S+ ACK ")
    c.send("AUTHENTICATE PLAIN")
    c.expect(r"^AUTHENTICATE \+")
    c.send(f"AUTHENTICATE {plain(account, password)}")


def register_account(c: IrcClient, nick: str, password: str = "correct horse") -> None:
    c.send("CAP LS 302")
    c.send("CAP REQ :sasl")
    c.send(f"NICK {nick}")
    c.send(f"USER {nick} 0 * :{nick}")
    c.send(f"REGISTER * * :{password}")
    c.expect(rf"REGISTER SUCCESS {nick} ")
    c.expect(rf" 900 {nick} ")
    c.send("CAP END")
    c.expect(rf" 001 {nick} ")


def test_register_then_sign_in_elsewhere_and_the_name_is_protected(make_server: Factory) -> None:
    server = make_server(**FAST)
    new = opened(make_server, server)
    teacher = new()
    register_account(teacher, "teacher")
    teacher.send("QUIT")
    teacher.expect_closed()
    guest = new()
    guest.send("NICK Teacher")  # casefolded: still the account's
    guest.send("USER g 0 * :G")
    guest.expect(r" 433 \* Teacher :.*registered")
    guest.send("NICK guest")
    guest.expect(r" 001 guest ")
    back = new()
    sign_in(back, "teacher", "teacher", "correct horse")
    back.expect(r" 900 teacher \S+ teacher ")
    back.expect(r" 903 teacher ")
    back.send("CAP END")
    back.expect(r" 001 teacher ")
    guest.send("NICK TEACHER")
    guest.expect(r" 433 guest TEACHER ")  # taken anyway; and after teacher leaves, still protected:
    back.send("QUIT")
    back.expect_closed()
    guest.send("NICK teacher")
    guest.expect(r" 433 guest teacher :.*registered")


def test_a_wrong_password_fails_slowly_without_telling_which_part_was_wrong(
    make_server: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server(**FAST)
    new = opened(make_server, server)
    register_account(new(), "alice")
    answers = []
    for account, password in (("alice", "wrong one"), ("nobody", "correct horse"), ("alice", "wrong two")):
        c = new()
        started = time.monotonic()
        sign_in(c, f"x{len(answers)}", account, password)
        c.expect(r" 904 ")
        answers.append(time.monotonic() - started)
    assert answers[2] >= 0.1  # the third failure from this address waited (0.05 doubling)
    assert "wrong one" not in caplog.text and "wrong two" not in caplog.text
    assert "failed sign-in to account 'alice'" in caplog.text


def test_account_tag_extended_join_account_notify_whois_and_whox(make_server: Factory) -> None:
    server = make_server(**FAST)
    new = opened(make_server, server)
    watcher = new()
    watcher.send("CAP LS 302")
    watcher.send("CAP REQ :message-tags account-notify extended-join")
    watcher.send("NICK watcher")
    watcher.send("USER w 0 * :W")
    watcher.send("CAP END")
    watcher.expect(r" 366 watcher #lobby ")
    alice = new()
    register_account(alice, "alice")
    watcher.expect(r":alice!\S+ JOIN #lobby alice :?alice$")  # extended-join: account and real name
    alice.send("PRIVMSG #lobby :signed")
    assert watcher.expect(r"PRIVMSG #lobby :signed").tags["account"] == "alice"
    bob = new()
    bob.send("NICK bob")
    bob.send("USER b 0 * :B")
    bob.expect(r" 366 bob #lobby ")
    watcher.expect(r":bob!\S+ JOIN #lobby \* :?B$")
    bob.send("REGISTER * * :another password")
    bob.expect(r"REGISTER SUCCESS bob ")
    watcher.expect(r":bob!\S+ ACCOUNT bob$")  # account-notify: signed in after joining
    watcher.send("WHOIS alice")
    watcher.expect(r" 330 watcher alice alice ")
    watcher.send("WHO #lobby %na")
    rows = {tuple(parse_line(line).params[1:]) for line in watcher.lines_until(r" 315 watcher ") if " 354 " in line}
    assert ("alice", "alice") in rows and ("watcher", "0") in rows


def test_register_refusals(make_server: Factory) -> None:
    server = make_server(**FAST)
    new = opened(make_server, server)
    register_account(new(), "alice")
    c = new()
    c.send("NICK carol")
    c.send("USER c 0 * :C")
    c.expect(r" 001 carol ")
    c.send("REGISTER * * :short")
    c.expect(r"FAIL REGISTER WEAK_PASSWORD carol ")
    c.send("REGISTER alice * :long enough password")
    c.expect(r"FAIL REGISTER ACCOUNT_EXISTS alice ")
    c.send("REGISTER 9bad * :long enough password")
    c.expect(r"FAIL REGISTER BAD_ACCOUNT_NAME ")
    closed = make_server(registration_open=False)
    d = connect(closed.address, "dave")
    make_server.clients.append(d)  # type: ignore[attr-defined]
    d.send("REGISTER * * :long enough password")
    d.expect(r"FAIL REGISTER DISALLOWED dave ")


def test_require_accounts_lets_only_signed_in_users_in(make_server: Factory, tmp_path: Path) -> None:
    db = str(tmp_path / "lobby.db")
    added = subprocess.run([sys.executable, "-m", "backend.cli", "accounts", "--db", db, "add", "kid"],
                           input="kids password\n", capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert added.returncode == 0, added.stderr
    server = make_server(db_path=db, require_accounts=True, **FAST)
    guest = connect(server.address)
    make_server.clients.append(guest)  # type: ignore[attr-defined]
    guest.send("NICK guest")
    guest.send("USER g 0 * :G")
    guest.expect(r"FAIL \* ACCOUNT_REQUIRED ")
    guest.expect_closed()
    kid = connect(server.address)
    make_server.clients.append(kid)  # type: ignore[attr-defined]
    sign_in(kid, "kid", "kid", "kids password")
    kid.expect(r" 903 kid ")
    kid.send("CAP END")
    kid.expect(r" 366 kid #lobby ")


def test_accounts_survive_a_restart(make_server: Factory, tmp_path: Path) -> None:
    db = str(tmp_path / "lobby.db")
    server = make_server(db_path=db, **FAST)
    c = connect(server.address)
    make_server.clients.append(c)  # type: ignore[attr-defined]
    register_account(c, "alice")
    server.stop()
    again = make_server(db_path=db, **FAST)
    d = connect(again.address)
    make_server.clients.append(d)  # type: ignore[attr-defined]
    sign_in(d, "alice", "alice", "correct horse")
    d.expect(r" 903 alice ")


def lobby_accounts(db: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "backend.cli", "accounts", "--db", db, *args], input=stdin,
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_a_class_list_of_30_is_imported_and_bad_rows_are_explained_by_line(tmp_path: Path) -> None:
    db = str(tmp_path / "lobby.db")
    rows = ["name,password"] + [f"student{i}" for i in range(28)] + ["withpass,a good password", "9bad", "x,short"]
    (tmp_path / "class.csv").write_text("\n".join(rows) + "\n")
    done = lobby_accounts(db, "import", str(tmp_path / "class.csv"))
    assert done.returncode == 1  # two bad rows
    made = dict(line.split("\t") for line in done.stdout.splitlines())
    assert len(made) == 29 and all(len(p) >= 8 for n, p in made.items() if n != "withpass")
    assert "class.csv:31: '9bad' can't be an account name" in done.stderr
    assert "class.csv:32: the password for x must have" in done.stderr
    listed = lobby_accounts(db, "list")
    assert len(listed.stdout.splitlines()) == 29
    again = lobby_accounts(db, "import", str(tmp_path / "class.csv"))
    assert "class.csv:2: the account student0 already exists" in again.stderr
    assert lobby_accounts(db, "passwd", "student3", stdin="a new password\n").returncode == 0
    assert lobby_accounts(db, "remove", "student4").returncode == 0
    assert lobby_accounts(db, "remove", "student4").returncode == 1
    assert len(lobby_accounts(db, "list").stdout.splitlines()) == 28


def test_private_messages_between_accounts_are_kept_for_the_two_of_them(make_server: Factory, tmp_path: Path) -> None:
    db = str(tmp_path / "lobby.db")
    server = make_server(db_path=db, **FAST)
    new = opened(make_server, server)
    caps = "batch server-time message-tags draft/chathistory"
    alice, bob, carol = new(), new(), new()
    for c, nick in ((alice, "alice"), (bob, "bob"), (carol, "carol")):
        register_account(c, nick)
        c.send(f"CAP REQ :{caps}")
        c.expect(r" CAP \S+ ACK ")
    guest = connect(server.address, "guest")
    make_server.clients.append(guest)  # type: ignore[attr-defined]
    alice.send("PRIVMSG bob :just between us")
    bob.expect(r"PRIVMSG bob :just between us")
    bob.send("PRIVMSG alice :agreed")
    alice.expect(r"PRIVMSG alice :agreed")
    guest.send("PRIVMSG bob :a guest's word")
    bob.expect(r"PRIVMSG bob :a guest's word")
    server.stop()  # and back: what was said is still there

    again = make_server(db_path=db, **FAST)
    reopened = opened(make_server, again)

    def signed(nick: str) -> IrcClient:
        c = reopened()
        sign_in(c, nick, nick, "correct horse", caps=f"sasl {caps}")
        c.expect(rf" 903 {nick} ")
        c.send("CAP END")
        c.expect(rf" 366 {nick} #lobby ")
        return c

    bob = signed("bob")
    bob.send("CHATHISTORY LATEST alice * 10")
    lines = bob.lines_until(r"BATCH -")
    said = [(parse_line(x).source.split("!")[0], parse_line(x).params) for x in lines if " PRIVMSG " in x]
    assert said == [("alice", ("bob", "just between us")), ("bob", ("alice", "agreed"))]
    bob.send("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00.000Z timestamp=2100-01-01T00:00:00.000Z 10")
    targets = [parse_line(x).params for x in bob.lines_until(r"BATCH -targets") if "CHATHISTORY TARGETS" in x]
    assert [t[1] for t in targets] == ["alice"]  # the guest's word was not kept
    carol = signed("carol")
    carol.send("CHATHISTORY LATEST alice * 10")
    assert not any(" PRIVMSG " in x for x in carol.lines_until(r"BATCH -"))  # not hers to read
    guest = reopened()
    guest.send("CAP REQ :" + caps)
    guest.send("CAP END")
    guest.send("NICK guest")
    guest.send("USER g 0 * :G")
    guest.expect(r" 366 guest #lobby ")
    guest.send("CHATHISTORY LATEST bob * 10")
    assert not any(" PRIVMSG " in x for x in guest.lines_until(r"BATCH -"))


def club_founded_by_alice(make_server: Factory, tmp_path: Path) -> tuple[str, ChatServer, IrcClient]:
    """A server on a database file in tmp_path, and alice, signed up, who founded #club (its @)."""
    db = str(tmp_path / "lobby.db")
    server = make_server(db_path=db, **FAST)
    alice = opened(make_server, server)()
    register_account(alice, "alice")
    alice.send("JOIN #club")
    assert "@alice" in alice.expect(r" 353 alice \S #club ").params[-1].split()
    return db, server, alice


def test_the_account_that_founds_a_room_runs_it_across_restarts(make_server: Factory, tmp_path: Path) -> None:
    db, server, alice = club_founded_by_alice(make_server, tmp_path)
    alice.send("PART #club")
    alice.expect(r"PART #club")
    bob = connect(server.address, "bob")
    make_server.clients.append(bob)  # type: ignore[attr-defined]
    bob.send("JOIN #club")
    assert bob.expect(r" 353 bob \S #club ").params[-1].split() == ["bob"]  # not its founder: no @
    server.stop()
    again = make_server(db_path=db, **FAST)
    carol = connect(again.address, "carol")
    make_server.clients.append(carol)  # type: ignore[attr-defined]
    carol.send("JOIN #club")
    carol.expect(r" 366 carol #club ")
    alice = opened(make_server, again)()
    sign_in(alice, "alice", "alice", "correct horse")
    alice.expect(r" 903 alice ")
    alice.send("CAP END")
    alice.expect(r" 366 alice #lobby ")
    alice.send("JOIN #club")
    carol.expect(r":alice!\S+ JOIN #club")
    carol.expect(r"MODE #club \+o alice")  # the founder is back: its operator again
    alice.send("MODE #club +m")
    carol.expect(r":alice!\S+ MODE #club \+m")


@pytest.mark.parametrize("server_running", [True, False], ids=["while-running", "while-stopped"])
def test_a_removed_account_founds_nothing_for_a_newcomer_of_the_same_name(
    make_server: Factory, tmp_path: Path, server_running: bool
) -> None:
    db, server, alice = club_founded_by_alice(make_server, tmp_path)
    alice.send("QUIT")
    alice.expect_closed()
    if not server_running:
        server.stop()
    assert lobby_accounts(db, "remove", "alice").returncode == 0
    if not server_running:
        server = make_server(db_path=db, **FAST)
    keeper = connect(server.address, "keeper")  # someone in the room, so that it is not new to whoever joins
    make_server.clients.append(keeper)  # type: ignore[attr-defined]
    keeper.send("JOIN #club")
    keeper.expect(r" 366 keeper #club ")
    newcomer = opened(make_server, server)()
    register_account(newcomer, "alice")
    newcomer.send("JOIN #club")
    assert "alice" in newcomer.expect(r" 353 alice \S #club ").params[-1].split()  # in, but no @
    keeper.never(r"MODE #club \+o alice")


def test_search_finds_your_own_private_conversations_and_nobody_elses(make_server: Factory, tmp_path: Path) -> None:
    server = make_server(db_path=str(tmp_path / "lobby.db"), **FAST)
    new = opened(make_server, server)
    caps = "batch message-tags server-time"
    users = {}
    for name in ("alice", "bob", "carol"):
        c = new()
        c.send(f"CAP REQ :{caps}")
        register_account(c, name)
        users[name] = c
    alice, bob, carol = users["alice"], users["bob"], users["carol"]
    alice.send("PRIVMSG bob :the treasure map is under the sink")
    bob.expect(r":alice!\S+ PRIVMSG bob :the treasure map")
    bob.send("PRIVMSG alice :treasure noted, thanks")
    alice.expect(r":bob!\S+ PRIVMSG alice :treasure noted")
    alice.sync()

    alice.send("SEARCH treasure")
    found = [parse_line(x) for x in alice.lines_until(r"BATCH -") if " PRIVMSG " in x]
    # As CHATHISTORY gives them: alice's line to bob, bob's to alice (newest first).
    assert [(m.source.split("!")[0], m.params[0], m.params[1]) for m in found] == [
        ("bob", "alice", "treasure noted, thanks"), ("alice", "bob", "the treasure map is under the sink")]
    alice.send("SEARCH treasure in:BOB from:bob")
    found = [x for x in alice.lines_until(r"BATCH -") if " PRIVMSG " in x]
    assert len(found) == 1 and "treasure noted" in found[0]
    carol.send("SEARCH treasure")
    assert not any(" PRIVMSG " in x for x in carol.lines_until(r"BATCH -"))  # a third account: nothing
    carol.send("SEARCH treasure in:bob")
    carol.expect(r"FAIL SEARCH INVALID_TARGET bob ")
    guest = new()
    guest.send("NICK visitor")
    guest.send("USER v 0 * :V")
    guest.expect(r" 001 visitor ")
    guest.send("SEARCH treasure")
    guest.expect(r"NOTICE visitor :Search results \(0,")
