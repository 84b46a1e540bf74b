"""Rooms people can run, over real sockets: operators and voice, modes, bans, quiets, KICK, INVITE, OPER.

A check that something did not happen syncs with PING/PONG first, so it could fail.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from backend.core.passwords import check_password, hash_password, is_hash
from backend.irc import parse_line
from backend.node import ChatServer
from tests.ircclient import IrcClient, connect, wait_until

ClientFactory = Callable[..., IrcClient]


def room_with(client: ClientFactory, *nicks: str, room: str = "#dev") -> list[IrcClient]:
    """nicks[0] creates room (its operator); the others join it."""
    users = [client(nick) for nick in nicks]
    for user in users:
        user.send(f"JOIN {room}")
        user.expect(rf" 366 {user.nick} {room} ")
    for user in users:
        user.sync()
    return users


def test_the_creator_of_a_room_is_its_operator_and_names_who_whois_show_it(client: ClientFactory) -> None:
    _, bob = room_with(client, "alice", "bob")
    bob.send("NAMES #dev")
    assert bob.expect(r" 353 bob [=@] #dev ").params[-1].split() == ["@alice", "bob"]
    bob.send("WHO #dev")
    flags = {parse_line(x).params[5]: parse_line(x).params[6] for x in bob.lines_until(r" 315 bob ") if " 352 " in x}
    assert flags == {"alice": "H@", "bob": "H"}
    bob.send("WHOIS alice")
    assert "@#dev" in bob.expect(r" 319 bob alice ").params[-1].split()
    bob.send("MODE #dev")
    assert bob.expect(r" 324 bob #dev ").params[2] == "+nt"
    bob.expect(r" 329 bob #dev ")


def test_op_and_voice_are_given_and_taken_by_operators_only(client: ClientFactory) -> None:
    alice, bob, carol = room_with(client, "alice", "bob", "carol")
    bob.send("MODE #dev +o bob")
    bob.expect(r" 482 bob #dev ")
    alice.send("MODE #dev +ov bob carol")
    carol.expect(r":alice!\S+ MODE #dev \+ov bob carol")
    carol.send("NAMES #dev")
    assert carol.expect(r" 353 carol ").params[-1].split() == ["@alice", "@bob", "+carol"]
    bob.send("MODE #dev -v+v carol carol")  # now an operator, bob may
    alice.expect(r":bob!\S+ MODE #dev -v\+v carol carol")
    alice.send("MODE #dev +o ghost")
    alice.expect(r" 441 alice ghost #dev ")


def test_topic_lock_is_on_by_default_in_new_rooms_but_not_in_lobby(client: ClientFactory) -> None:
    alice, bob = room_with(client, "alice", "bob")
    bob.send("TOPIC #dev :mine now")
    bob.expect(r" 482 bob #dev ")
    bob.send("TOPIC #lobby :anyone may here")
    alice.expect(r"TOPIC #lobby :anyone may here")
    alice.send("MODE #dev -t")
    alice.expect(r"MODE #dev -t")
    bob.send("TOPIC #dev :mine now")
    alice.expect(r":bob!\S+ TOPIC #dev :mine now")


def test_moderated_room_lets_only_voiced_and_operators_speak(client: ClientFactory) -> None:
    alice, bob, carol = room_with(client, "alice", "bob", "carol")
    alice.send("MODE #dev +m")
    carol.expect(r"MODE #dev \+m")
    bob.send("PRIVMSG #dev :can I talk?")
    bob.expect(r" 404 bob #dev :.*moderated")
    alice.send("MODE #dev +v bob")
    bob.expect(r"MODE #dev \+v bob")
    bob.send("PRIVMSG #dev :now I can")
    carol.expect(r":bob!\S+ PRIVMSG #dev :now I can")
    alice.send("PRIVMSG #dev :and so can I")
    carol.expect(r"PRIVMSG #dev :and so can I")
    carol.never(r"can I talk")


def test_bans_with_masks_stop_joining_and_speaking_and_lists_answer(client: ClientFactory) -> None:
    alice, bob = room_with(client, "alice", "bob")
    alice.send("MODE #dev +b BOB")  # a bare nick becomes BOB!*@*, matched case-insensitively
    bob.expect(r"MODE #dev \+b BOB!\*@\*")
    bob.send("PRIVMSG #dev :still here?")
    bob.expect(r" 404 bob #dev :.*banned")
    bob.send("PART #dev")
    bob.expect(r"PART #dev")
    bob.send("JOIN #dev")
    bob.expect(r" 474 bob #dev ")
    alice.send("MODE #dev +b *!*@10.*")
    alice.send("MODE #dev b")
    lines = alice.lines_until(r" 368 alice #dev ")
    assert [parse_line(x).params[2] for x in lines if " 367 " in x] == ["BOB!*@*", "*!*@10.*"]
    alice.send("MODE #dev -b bob!*@*")
    alice.expect(r"MODE #dev -b bob!\*@\*")
    bob.send("JOIN #dev")
    bob.expect(r" 366 bob #dev ")


def test_quiet_lets_a_user_stay_and_read_but_not_speak(client: ClientFactory) -> None:
    alice, bob, carol = room_with(client, "alice", "bob", "carol")
    alice.send("MODE #dev +q bob!*@*")
    bob.expect(r"MODE #dev \+q bob!\*@\*")
    bob.send("PRIVMSG #dev :hello?")
    bob.expect(r" 404 bob #dev :.*muted")
    alice.send("PRIVMSG #dev :bob reads this")
    bob.expect(r"PRIVMSG #dev :bob reads this")
    alice.send("MODE #dev q")
    alice.expect(r" 728 alice #dev q bob!\*@\* ")
    alice.expect(r" 729 alice #dev q ")
    carol.never(r"hello\?")


def test_invite_only_key_and_limit(client: ClientFactory) -> None:
    alice, bob = room_with(client, "alice", "bob")
    carol, dave = client("carol", caps="invite-notify"), client("dave")
    alice.send("MODE #dev +i")
    alice.expect(r"MODE #dev \+i")
    carol.send("JOIN #dev")
    carol.expect(r" 473 carol #dev ")
    bob.send("INVITE carol #dev")
    bob.expect(r" 482 bob #dev ")
    alice.send("INVITE carol #dev")
    alice.expect(r" 341 alice carol :?#dev")
    carol.expect(r":alice!\S+ INVITE carol #dev")
    carol.send("JOIN #dev")
    carol.expect(r" 366 carol #dev ")
    alice.send("INVITE carol #dev")
    alice.expect(r" 443 alice carol #dev ")
    alice.send("MODE #dev -i+kl s3cret 4")
    alice.expect(r"MODE #dev -i\+kl s3cret 4")
    dave.send("JOIN #dev")
    dave.expect(r" 475 dave #dev ")
    dave.send("JOIN #dev s3cret")
    dave.expect(r" 366 dave #dev ")
    eve = client("eve")
    eve.send("JOIN #dev s3cret")
    eve.expect(r" 471 eve #dev ")
    eve.send("MODE #dev")
    assert eve.expect(r" 324 eve #dev ").params[2:] == ("+ntkl", "*", "4")  # the key only to members


def test_secret_rooms_hide_from_list_and_outsiders(client: ClientFactory) -> None:
    alice, = room_with(client, "alice", room="#hidden")
    alice.send("MODE #hidden +s")
    alice.expect(r"MODE #hidden \+s")
    bob = client("bob")
    bob.send("LIST")
    assert not any("#hidden" in x for x in bob.lines_until(r" 323 bob "))
    bob.send("NAMES #hidden")
    lines = bob.lines_until(r" 366 bob #hidden ")
    assert not any(" 353 " in x for x in lines)
    bob.send("WHOIS alice")
    lines = bob.lines_until(r" 318 bob alice ")
    assert not any("#hidden" in x for x in lines)


def test_kick_is_seen_by_everyone_with_who_and_why(client: ClientFactory) -> None:
    alice, bob, carol = room_with(client, "alice", "bob", "carol")
    bob.send("KICK #dev carol :no")
    bob.expect(r" 482 bob #dev ")
    alice.send("KICK #dev carol :spamming")
    for user in (alice, bob, carol):
        user.expect(r":alice!\S+ KICK #dev carol :spamming")
    carol.send("PRIVMSG #dev :let me back")
    carol.expect(r" 404 carol #dev ")
    alice.send("KICK #dev ghost")
    alice.expect(r" 441 alice ghost #dev ")
    alice.send("KICK #nowhere bob")
    alice.expect(r" 403 alice #nowhere ")


def test_hostile_mode_strings_get_numerics_and_lists_stay_bounded(client: ClientFactory) -> None:
    alice, _ = room_with(client, "alice", "bob")
    alice.send("MODE #dev +" + "b" * 100 + " " + " ".join(f"x{i}!*@*" for i in range(40)))
    applied = alice.expect(r"MODE #dev \+b").params
    assert len(applied) - 2 == 6  # MODES=6: the rest of the line is left out
    alice.send("MODE #dev +Zz")
    alice.expect(r" 472 alice Z ")
    alice.expect(r" 472 alice z ")
    alice.send("MODE #nowhere +m")
    alice.expect(r" 403 alice #nowhere ")
    for start in range(6, 120, 6):
        alice.send("MODE #dev +bbbbbb " + " ".join(f"y{i}!*@*" for i in range(start, start + 6)))
    lines = alice.sync()
    assert any(" 478 alice #dev " in x for x in lines)
    alice.send("MODE #dev b")
    assert len([x for x in alice.lines_until(r" 368 alice #dev ") if " 367 " in x]) == 100  # MAXLIST


OPER_HASH = hash_password("correct horse")


def test_passwords_hash_and_check() -> None:
    assert is_hash(OPER_HASH) and not is_hash("correct horse")
    assert check_password("correct horse", OPER_HASH)
    assert not check_password("wrong", OPER_HASH)
    assert not check_password("correct horse", "scrypt$garbage")
    assert hash_password("x") != hash_password("x")  # salted


def test_server_operators_run_any_room_kill_and_wallops(
    make_server: Callable[..., ChatServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = make_server(operators={"teacher": OPER_HASH})

    def user(nick: str) -> IrcClient:
        c = connect(server.address, nick)
        make_server.clients.append(c)  # type: ignore[attr-defined]
        return c

    alice, boss, bob = user("alice"), user("boss"), user("bob")
    alice.send("JOIN #dev")
    alice.expect(r" 366 alice #dev ")
    boss.send("OPER teacher wrong")
    boss.expect(r" 464 boss ")
    boss.send("OPER nobody correct horse")
    boss.expect(r" 464 boss ")
    boss.send("KILL bob :nope")
    boss.expect(r" 481 boss ")
    boss.send("OPER teacher :correct horse")
    boss.expect(r" 381 boss ")
    boss.expect(r"MODE boss :?\+o")
    boss.send("MODE #dev +m")  # not even in the room
    alice.expect(r":boss!\S+ MODE #dev \+m")
    boss.send("WHOIS boss")
    boss.expect(r" 313 boss boss ")
    bob.send("MODE bob +w")
    bob.expect(r"MODE bob :?\+w")
    boss.send("WALLOPS :maintenance at noon")
    bob.expect(r":boss!\S+ WALLOPS :maintenance at noon")
    boss.send("KILL bob :enough")
    closing = bob.expect_closed()
    assert any("Killed by boss: enough" in line for line in closing)
    alice.expect(r":bob!\S+ QUIT :Killed by boss: enough")
    assert "correct horse" not in caplog.text and "wrong" not in caplog.text.replace("wrong password", "")


def test_room_settings_survive_a_restart(make_server: Callable[..., ChatServer], tmp_path: Path) -> None:
    db = str(tmp_path / "lobby.db")
    server = make_server(db_path=db)
    alice = connect(server.address, "alice")
    make_server.clients.append(alice)  # type: ignore[attr-defined]
    alice.send("JOIN #dev")
    alice.expect(r" 366 alice #dev ")
    alice.send("MODE #dev +mk-t key1")
    alice.send("MODE #dev +b spammer")
    alice.send("TOPIC #dev :kept")
    alice.expect(r"TOPIC #dev :kept")
    alice.send("PART #dev")  # empty, but not forgotten: something is set
    alice.expect(r"PART #dev")
    server.stop()
    again = make_server(db_path=db)
    bob = connect(again.address, "bob")
    make_server.clients.append(bob)  # type: ignore[attr-defined]
    bob.send("JOIN #dev")
    bob.expect(r" 475 bob #dev ")
    bob.send("JOIN #dev key1")
    assert bob.expect(r" 332 bob #dev ").params[-1] == "kept"
    bob.send("MODE #dev")
    assert bob.expect(r" 324 bob #dev ").params[2:] == ("+mnk", "key1")
    bob.send("MODE #dev b")
    assert bob.expect(r" 367 bob #dev ").params[2] == "spammer!*@*"


def test_server_operators_ban_an_address_server_wide_for_a_time(make_server: Callable[..., ChatServer]) -> None:
    server = make_server(operators={"teacher": OPER_HASH})

    def user(nick: str) -> IrcClient:
        c = connect(server.address, nick)
        make_server.clients.append(c)  # type: ignore[attr-defined]
        return c

    boss, troll = user("boss"), user("troll")
    troll.send("KLINE troll")
    troll.expect(r" 481 troll ")
    boss.send("OPER teacher :correct horse")
    boss.expect(r" 381 boss ")
    boss.send("KLINE 2h troll :flooding")
    assert any(" 465 troll " in line for line in troll.expect_closed())
    boss.expect(r"NOTICE boss :K-line on troll!\*@\* for \d+ s: flooding")
    # The client sees its socket close before the server has let go of the nick: wait for that,
    # or the new connection is told 433 instead of being checked against the K-line.
    wait_until(lambda: server.chat.hub.find("troll") is None)
    back = connect(server.address)
    make_server.clients.append(back)  # type: ignore[attr-defined]
    back.send("NICK troll")
    back.send("USER t 0 * :T")
    back.expect(r" 465 troll :You are banned from this server: flooding")
    back.expect_closed()
    boss.send("KLINE LIST")
    assert boss.expect(r" 216 boss K ").params[2] == "troll!*@*"
    boss.expect(r" 219 boss K ")
    boss.send("KLINE *")
    boss.expect(r"FAIL KLINE INVALID_PARAMS ")
    boss.send("UNKLINE troll")
    boss.expect(r"NOTICE boss :K-line on troll!\*@\* lifted")
    user("troll")  # welcome again
    boss.send("KLINE 1s quick")
    boss.expect(r"K-line on quick!\*@\*")
    deadline = time.monotonic() + 10
    while True:
        boss.send("KLINE LIST")
        lines = boss.lines_until(r" 219 boss K ")
        if not any("quick" in line for line in lines) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not any("quick" in line for line in lines)  # a timed K-line ends by itself
