"""End-to-end tests of the chat server over real sockets on 127.0.0.1."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable

import pytest

from backend.core.chat import Chat
from backend.net.config import NetConfig
from backend.net.connection import Connection, unread_bytes
from backend.net.flusher import Flusher
from backend.net.server import TcpServer
from backend.node import ChatServer
from tests.ircclient import IrcClient, connect, wait_until


def test_registration_welcomes_and_joins_the_default_room(client) -> None:
    c: IrcClient = client()
    c.send("NICK alice")
    c.send("USER alice 0 * :Alice Liddell")
    lines = c.lines_until(r" 366 alice #lobby ")
    text = "\n".join(lines)
    for numeric in ("001", "002", "003", "004", "005", "251", "375", "372", "376", "353"):
        assert f" {numeric} alice " in text, numeric
    assert " 331 " not in text  # no topic: nothing is said of it on joining (Modern)
    assert ":alice!alice@127.0.0.1 JOIN #lobby" in text
    assert " 353 alice = #lobby :alice" in text or " 353 alice = #lobby alice" in text


def test_without_a_motd_the_server_answers_422(make_server) -> None:
    server = make_server(motd="")
    c = connect(server.address)
    make_server.clients.append(c)
    c.send("NICK bob")
    c.send("USER bob 0 * :Bob")
    c.expect(r" 422 bob ")
    c.expect(r" 366 bob #lobby ")


def test_cap_negotiation_holds_registration_until_cap_end(client) -> None:
    c: IrcClient = client()
    c.send("CAP LS 302")
    ls = c.expect(r" CAP \* LS ")
    assert {"server-time", "message-tags", "echo-message"} <= set(ls.params[-1].split())
    c.send("NICK carol")
    c.send("USER carol 0 * :Carol")
    c.send("CAP REQ :server-time echo-message")
    c.expect(r" CAP carol ACK :server-time echo-message")
    c.assert_silent(r" 001 ", wait=0.3)
    c.send("CAP REQ :no-such-cap")
    c.expect(r" CAP carol NAK :?no-such-cap")
    c.send("CAP LIST")
    c.expect(r" CAP carol LIST :echo-message server-time")
    c.send("CAP END")
    c.expect(r" 001 carol ")


def test_room_messages_relay_between_users_with_tags_by_capability(client) -> None:
    tagged = client("tagged", caps="server-time message-tags")
    timed = client("timed", caps="server-time")
    plain = client("plain")
    tagged.send("PRIVMSG #lobby :hello everyone")
    line = timed.lines_until(r"PRIVMSG #lobby :hello everyone")[-1]
    assert line.startswith("@time=") and "msgid=" not in line
    assert plain.lines_until(r"PRIVMSG #lobby :hello everyone")[-1].startswith(":tagged!")
    # Without echo-message the sender does not get its own line back.
    tagged.assert_silent(r"PRIVMSG #lobby :hello everyone", wait=0.3)
    plain.send("PRIVMSG #lobby :hi")
    msg = tagged.expect(r"PRIVMSG #lobby :hi$")
    assert set(msg.tags) == {"time", "msgid"}
    assert msg.tags["time"].endswith("Z")


def test_echo_message_returns_the_senders_own_message_with_the_same_msgid(client) -> None:
    alice = client("alice", caps="message-tags echo-message")
    bob = client("bob", caps="message-tags")
    alice.send("PRIVMSG #lobby :echo me")
    mine = alice.expect(r"PRIVMSG #lobby :echo me")
    theirs = bob.expect(r"PRIVMSG #lobby :echo me")
    assert mine.tags["msgid"] == theirs.tags["msgid"]


def test_private_messages_reach_only_their_target(client) -> None:
    alice, bob, eve = client("alice"), client("bob"), client("eve")
    alice.send("PRIVMSG bob :secret for bob")
    msg = bob.expect(r"PRIVMSG bob :secret for bob")
    assert msg.source.startswith("alice!")
    alice.send("NOTICE Bob :a notice, case-insensitive nick")
    bob.expect(r"NOTICE bob :a notice")
    # Anything sent to eve by mistake was queued before bob read it, so before the answer to eve's PING.
    assert not any(re.search(r"secret|a notice", line) for line in eve.sync())
    eve.assert_silent(r"secret|a notice", wait=0.1)


def test_ctcp_action_passes_through_unchanged(client) -> None:
    alice, bob = client("alice"), client("bob")
    alice.send("PRIVMSG #lobby :\x01ACTION waves\x01")
    msg = bob.expect(r"PRIVMSG #lobby :\x01ACTION")
    assert msg.params[1] == "\x01ACTION waves\x01"


def test_nick_collisions_are_case_insensitive(client) -> None:
    client("Alice")
    c = client()
    c.send("NICK aLiCe")
    c.expect(r" 433 \* aLiCe ")
    c.send("NICK alice2")
    c.send("USER a 0 * :A")
    c.expect(r" 001 alice2 ")
    c.send("NICK ALICE")
    c.expect(r" 433 alice2 ALICE ")


def test_cyrillic_nick_registers_and_collides_case_insensitively(client) -> None:
    vasya = client("Вася")
    other = client("bob")
    vasya.send("PRIVMSG #lobby :привет")
    msg = other.expect(r"PRIVMSG #lobby")
    assert msg.source.startswith("Вася!") and msg.params[1] == "привет"
    c = client()
    c.send("NICK ВАСЯ")
    c.expect(r" 433 \* ВАСЯ ")


@pytest.mark.parametrize("nick", ["1abc", "-abc", "x" * 31, "a!b", "a.b"])
def test_invalid_nick_gets_432(client, nick: str) -> None:
    c: IrcClient = client()
    c.send(f"NICK {nick}")
    c.expect(r" 432 \* ")


def test_nick_change_is_seen_by_everyone_sharing_a_room(client) -> None:
    alice, bob = client("alice"), client("bob")
    loner = client("loner")
    loner.send("PART #lobby")
    loner.expect(r"PART #lobby")
    alice.send("NICK alicia")
    alice.expect(r":alice!\S+ NICK :?alicia")
    bob.expect(r":alice!\S+ NICK :?alicia")
    loner.assert_silent(r"NICK", wait=0.3)
    # The old nick is free again, the new one is taken.
    bob.send("WHOIS alicia")
    bob.expect(r" 311 bob alicia ")
    c = client()
    c.send("NICK alice")
    c.send("USER a 0 * :A")
    c.expect(r" 001 alice ")


def test_join_part_topic_names_list_who(client) -> None:
    alice, bob = client("alice"), client("bob")
    alice.send("JOIN #dev")
    alice.expect(r"JOIN #dev")
    alice.expect(r" 366 alice #dev ")
    bob.send("JOIN #DEV")
    alice.expect(r":bob!\S+ JOIN #dev")
    bob.expect(r" 353 bob = #dev :?(@alice bob|bob @alice)")  # alice made #dev: its operator
    alice.send("MODE #dev -t")  # new rooms lock their topic to operators: alice opens it to all
    bob.expect(r":alice!\S+ MODE #dev -t")
    bob.send("TOPIC #dev :shipping on friday")
    alice.expect(r":bob!\S+ TOPIC #dev :shipping on friday")
    alice.send("TOPIC #dev")
    alice.expect(r" 332 alice #dev :shipping on friday")
    alice.expect(r" 333 alice #dev bob!bob@127.0.0.1 :?\d+")
    alice.send("NAMES #dev")
    alice.expect(r" 353 alice = #dev ")
    alice.expect(r" 366 alice #dev ")
    alice.send("LIST")
    listed = alice.lines_until(r" 323 alice ")
    assert any(" 322 alice #dev 2 :shipping on friday" in line for line in listed)
    assert any(" 322 alice #lobby 2 " in line for line in listed)
    alice.send("WHO #dev")
    who = alice.lines_until(r" 315 alice #dev ")
    assert sum(" 352 alice #dev " in line for line in who) == 2
    bob.send("PART #dev :bye now")
    alice.expect(r":bob!\S+ PART #dev :bye now")
    bob.send("PRIVMSG #dev :am I still here?")
    bob.expect(r" 404 bob #dev ")


def test_room_disappears_when_empty_but_the_default_room_stays(client) -> None:
    alice = client("alice")
    alice.send("JOIN #tmp")
    alice.expect(r" 366 alice #tmp ")
    alice.send("PART #tmp")
    alice.send("PART #lobby")
    alice.expect(r"PART #lobby")
    alice.send("LIST")
    listed = alice.lines_until(r" 323 ")
    assert not any("#tmp" in line for line in listed)
    assert any(" 322 alice #lobby 0" in line for line in listed)


def test_abrupt_disconnect_is_a_quit_for_everyone_else(client) -> None:
    alice, bob = client("alice"), client("bob")
    bob.sock.close()
    msg = alice.expect(r":bob!\S+ QUIT")
    assert msg.params[0]
    alice.send("NAMES #lobby")
    names = alice.expect(r" 353 alice ")
    assert "bob" not in names.params[-1].split()


def test_quit_message_reaches_others_and_the_quitter_gets_error(client) -> None:
    alice, bob = client("alice"), client("bob")
    bob.send("QUIT :see you")
    closing = bob.expect_closed()
    assert any(line.startswith("ERROR ") for line in closing)
    alice.expect(r":bob!\S+ QUIT :Quit: see you")


def test_bad_input_gets_numerics_and_the_connection_survives(client) -> None:
    c: IrcClient = client("tester")
    c.send("FROBNICATE now")
    c.expect(r" 421 tester FROBNICATE ")
    c.send("JOIN")
    c.expect(r" 461 tester JOIN ")
    c.send("PRIVMSG nobody :hi")
    c.expect(r" 401 tester nobody ")
    c.send("PRIVMSG #nowhere :hi")
    c.expect(r" 403 tester #nowhere ")
    c.send("PRIVMSG #lobby")
    c.expect(r" 412 tester ")
    c.send("PRIVMSG")
    c.expect(r" 411 tester ")
    c.send("JOIN nohash")
    c.expect(r" 403 tester nohash ")
    c.send("PRIVMSG #lobby :" + "x" * 600)
    c.expect(r" 417 tester ")
    c.send("PING still-alive")
    c.expect(r"PONG \S+ :?still-alive")


def test_commands_before_registration_get_451(client) -> None:
    c: IrcClient = client()
    c.send("CAP LS 302")
    c.send("JOIN #lobby")
    c.expect(r" 451 \* ")
    c.send("NICK late")
    c.send("USER late 0 * :Late")
    c.send("CAP END")
    c.expect(r" 001 late ")


def test_invalid_utf8_is_decoded_with_replacement_characters(client) -> None:
    alice, bob = client("alice"), client("bob")
    alice.send_raw(b"PRIVMSG #lobby :caf\xe9 \xff ok\r\n")
    msg = bob.expect(r"PRIVMSG #lobby")
    assert msg.params[1] == "caf\ufffd \ufffd ok"


def test_a_line_sent_one_byte_at_a_time(client) -> None:
    alice = client("alice")
    c: IrcClient = client()
    for byte in b"NICK slow\r\nUSER slow 0 * :Slow\r\nPRIVMSG #lobby :bit by bit\r\n":
        c.send_raw(bytes([byte]))
    c.expect(r" 001 slow ")
    alice.expect(r":slow!\S+ PRIVMSG #lobby :bit by bit")


def test_two_lines_in_one_packet_and_bare_lf(client) -> None:
    alice = client("alice")
    c: IrcClient = client()
    c.send_raw(b"NICK fast\nUSER fast 0 * :Fast\nPRIVMSG #lobby :one\r\nPRIVMSG #lobby :two\n")
    alice.expect(r"PRIVMSG #lobby :one")
    alice.expect(r"PRIVMSG #lobby :two")


def test_two_hundred_clients_all_receive_one_broadcast(server: ChatServer, make_server) -> None:
    clients = []
    for i in range(200):
        c = IrcClient(server.address)
        make_server.clients.append(c)
        c.send(f"NICK user{i}")
        c.send(f"USER u{i} 0 * :User {i}")
        clients.append(c)
    for c in clients:
        c.expect(r" 366 \S+ #lobby ", timeout=60)
    clients[0].send("PRIVMSG #lobby :to all two hundred")
    for c in clients[1:]:
        c.expect(r":user0!\S+ PRIVMSG #lobby :to all two hundred", timeout=60)


def test_a_reader_that_never_reads_is_dropped_and_slows_nobody(make_server) -> None:
    server = make_server(sendq_bytes=256 * 1024, flood=False)
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(server.address)
    stuck.sendall(b"NICK stuck\r\nUSER s 0 * :Stuck\r\n")
    talkers = [connect(server.address, f"talker{i}") for i in range(10)]
    make_server.clients.extend(talkers)
    wait_until(lambda: server.hub.find("stuck") is not None)
    text = "x" * 200
    received = [0] * len(talkers)
    errors: list[BaseException] = []
    per_round = 40
    sent_total = 0

    def listen(c: IrcClient, i: int, expected: int) -> None:
        try:
            while received[i] < expected:
                c.expect(r"PRIVMSG #lobby :\d+-\d+ ", timeout=60)
                received[i] += 1
        except BaseException as err:  # reported in the test's own thread
            errors.append(err)

    try:
        # Rounds: everyone talks, then everyone catches up. The well-behaved readers keep
        # pace; the stuck one falls further behind each round until the server drops it.
        # Kernel buffers hold a few MB first, hence up to 60 rounds (bounded all the same).
        for rnd in range(60):
            for i, c in enumerate(talkers):
                c.send_raw(b"".join(f"PRIVMSG #lobby :{i}-{rnd} {text}\r\n".encode() for _ in range(per_round)))
            sent_total += per_round
            listeners = [threading.Thread(target=listen, args=(c, i, sent_total * 9)) for i, c in enumerate(talkers)]
            for t in listeners:
                t.start()
            for t in listeners:
                t.join(120)
            assert not errors, errors[0]
            if server.hub.find("stuck") is None and rnd >= 2:
                break
        # Every talker received every other talker's messages: nothing lost to the stuck one.
        assert received == [sent_total * 9] * 10
        assert server.hub.find("stuck") is None
        talkers[0].assert_silent(r"^$", wait=0.2)  # read whatever is left into .seen
        assert any(":stuck!" in line and "QUIT :SendQ exceeded" in line for line in talkers[0].seen)
    finally:
        stuck.close()


def _has_writer(sock: socket.socket) -> bool:
    name = f"writer-{sock.getsockname()[1]}"
    return any(t.name == name and t.is_alive() for t in threading.enumerate())


def test_only_a_client_that_stops_reading_gets_a_writer_thread(make_server) -> None:
    """Fan-out goes through the flusher; a connection's writer starts when its socket is full."""
    server = make_server(sendq_bytes=16 * 1024 * 1024, flood=False)
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.connect(server.address)
    stuck.sendall(b"NICK stuck\r\nUSER s 0 * :Stuck\r\n")
    talker = connect(server.address, "talker")
    reader = connect(server.address, "reader")
    make_server.clients.extend([talker, reader])
    wait_until(lambda: server.hub.find("stuck") is not None)
    try:
        # Rounds of 40 KB, which a reader that keeps up takes without its socket filling,
        # up to 16 MB: more than the kernel buffers for the stuck one on loopback.
        for rnd in range(400):
            talker.send_raw(b"".join(f"PRIVMSG #lobby :{rnd}-{i} {'x' * 400}\r\n".encode() for i in range(100)))
            reader.expect(rf"PRIVMSG #lobby :{rnd}-99 ", timeout=60)
            if _has_writer(stuck):
                break
        assert _has_writer(stuck), "the stuck client's queue never went to a writer thread"
        # Those that keep up never needed one: their messages all went out without blocking.
        assert not _has_writer(reader.sock)
        assert not _has_writer(talker.sock)
    finally:
        stuck.close()


def test_unregistered_connections_are_dropped_after_the_timeout(make_server) -> None:
    server = make_server(registration_timeout=0.3)
    c = connect(server.address)
    make_server.clients.append(c)
    c.send("NICK dawdler")
    lines = c.expect_closed(timeout=15)
    assert any("Registration timed out" in line for line in lines)


def test_idle_clients_are_pinged_and_dropped_when_they_do_not_answer(make_server) -> None:
    # A short interval; the timeout stays long enough for the watcher to answer on a loaded machine.
    server = make_server(ping_interval=0.2, ping_timeout=0.8)
    watcher = connect(server.address, "watcher")
    sleeper = connect(server.address, "sleeper")
    make_server.clients.extend([watcher, sleeper])
    # The watcher answers its pings and stays; the sleeper ignores them and goes.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            ping = watcher.expect(r"^PING ", timeout=1)
            watcher.send(f"PONG :{ping.params[0]}")
        except AssertionError:
            pass
        if any("QUIT" in line and "sleeper" in line for line in watcher.seen):
            break
    assert any(":sleeper!" in line and "Ping timeout" in line for line in watcher.seen)
    assert sleeper.expect(r"^PING ", timeout=5)
    watcher.send("PING still-here")
    watcher.expect(r"PONG \S+ :?still-here")


def test_a_busy_server_does_not_time_out_a_client_whose_lines_it_has_not_read(make_server) -> None:
    """Registration is late because the server is behind, not the client: no 'Registration timed out'."""
    server = make_server(registration_timeout=0.5)
    c = connect(server.address)
    make_server.clients.append(c)
    conn = _only_connection(server.tcp)
    # The server is busy: the hub's lock is held, so the reader has read NICK and USER (nothing
    # waits in the kernel) but cannot act on them, well past the deadline.
    with server.chat.hub._lock:
        # In one write: sent apart, the reader may take NICK alone and block on the lock acting
        # on it, leaving USER in the kernel (seen on a loaded machine).
        c.send_raw(b"NICK late\r\nUSER late 0 * :late\r\n")
        wait_until(lambda: unread_bytes(conn.sock) == 0)
        time.sleep(1.0)  # the deadline passing is what is tested
        server.tcp.reap(time.monotonic() + 60)
    c.expect(r" 001 late ")
    assert not conn.killed


def test_a_client_that_keeps_sending_without_registering_is_let_go(make_server) -> None:
    server = make_server(registration_timeout=0.2)
    c = connect(server.address)
    make_server.clients.append(c)
    deadline = time.monotonic() + 20
    # Never silent for long, never registered: let go at a multiple of the deadline.
    while time.monotonic() < deadline:
        try:
            c.send("PING trickle")
            if c.expect(r"PONG|^ERROR ", timeout=5).command == "ERROR":
                break
        except (AssertionError, ConnectionError, OSError):
            break
        time.sleep(0.02)
    assert any("Registration timed out" in line for line in c.seen + c.expect_closed(timeout=15))


def _only_connection(server: TcpServer) -> Connection:
    """The one connection the server has, once its reader is up."""
    wait_until(lambda: len(server.connections()) == 1)
    return server.connections()[0]


def test_a_connection_that_ends_waits_for_the_writer_it_asked_for() -> None:
    """The writer is started by a starter thread a moment after it is asked for; the ERROR it was
    left must still reach the client when the connection ends meanwhile."""
    config = NetConfig()
    chat = Chat(config)
    ours, theirs = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    launches: list[Callable[[], None]] = []
    conn = Connection(chat, config, Flusher(), ours, ("127.0.0.1", 1), spawn=launches.append)
    conn.start()
    got = bytearray()
    try:
        conn.send_bytes(b"x" * 300_000)  # more than the socket takes: a writer is asked for
        assert len(launches) == 1  # asked for, not yet started
        conn.kill("Goodbye")  # the ERROR waits for that writer
        theirs.shutdown(socket.SHUT_WR)  # the client hangs up: the reader ends the connection
        late = threading.Timer(0.3, launches[0])  # the starter gets to it only now
        late.start()
        theirs.settimeout(15)
        while chunk := theirs.recv(65536):
            got += chunk
        late.join(5)
        conn.join_threads(5)
    finally:
        theirs.close()
    assert got.endswith(b"(Goodbye)\r\n") and len(got) > 300_000
