"""Hardening: flood control, connection limits, the password, TLS and hostile input."""

from __future__ import annotations

import os
import random
import resource
import socket
import ssl
import threading
import time

import pytest
import trustme

from backend.net.flood import FloodGate, Flooding
from backend.node import ChatServer
from tests.ircclient import IrcClient, connect, wait_until


def clients_of(make_server, server: ChatServer):
    def factory(nick: str | None = None, caps: str = "") -> IrcClient:
        c = connect(server.address, nick, caps)
        make_server.clients.append(c)
        return c

    return factory


# -- flood control ------------------------------------------------------------------


def test_flood_gate_allows_a_burst_then_a_rate_then_refuses() -> None:
    now = [100.0]
    gate = FloodGate(burst=5, rate=2.0, max_lag=3.0, clock=lambda: now[0])
    assert [gate.charge() for _ in range(5)] == [0.0] * 5
    assert gate.charge() == pytest.approx(0.5)
    assert gate.charge() == pytest.approx(1.0)
    now[0] += 10  # a quiet spell refills the bucket, but never beyond the burst
    assert [gate.charge() for _ in range(5)] == [0.0] * 5
    assert gate.charge() > 0
    with pytest.raises(Flooding):
        for _ in range(20):
            gate.charge()


def test_lines_over_the_rate_are_delayed_not_dropped_and_others_are_not_slowed(make_server) -> None:
    # 25 lines held back at 20 a second: 1.25 s for the calm user's line to overtake them.
    server = make_server(flood_burst=5, flood_rate=20.0)
    client = clients_of(make_server, server)
    paster, calm, observer = client("paster"), client("calm"), client("observer")
    paster.send_raw(b"".join(f"PRIVMSG #lobby :line {i}\r\n".encode() for i in range(30)))
    observer.expect(r"PRIVMSG #lobby :line 4$")  # the burst goes straight through
    calm.send("PRIVMSG #lobby :calm and prompt")
    # The calm user's line overtakes the paster's held-back lines...
    observed = observer.lines_until(r"calm and prompt")
    assert not any("line 29" in line for line in observed)
    # ...and every pasted line still arrives, in order.
    rest = observer.lines_until(r"PRIVMSG #lobby :line 29$")
    numbers = [int(line.rsplit(" ", 1)[1]) for line in observed + rest if ":paster!" in line and " :line " in line]
    assert numbers == list(range(5, 30))


def test_a_flooder_is_disconnected_and_the_others_keep_talking(make_server) -> None:
    server = make_server(flood_burst=5, flood_rate=2.0, flood_max_backlog=4096)
    client = clients_of(make_server, server)
    flooder, calm, observer = client("flooder"), client("calm"), client("observer")
    flooder.send_raw(b"".join(f"PRIVMSG #lobby :flood {i} {'x' * 50}\r\n".encode() for i in range(500)))
    lines = flooder.expect_closed(timeout=30)
    assert any("Excess Flood" in line for line in lines)
    observer.expect(r":flooder!\S+ QUIT :Excess Flood")
    calm.send("PRIVMSG #lobby :still here")
    observer.expect(r":calm!\S+ PRIVMSG #lobby :still here")


# -- limits ---------------------------------------------------------------------------


def test_max_clients_refuses_politely(make_server) -> None:
    server = make_server(max_clients=3)
    client = clients_of(make_server, server)
    kept = [client(f"u{i}") for i in range(3)]
    extra = client()
    lines = extra.expect_closed()
    assert lines == ["ERROR :Server is full, try again later"]
    kept[0].send("PING ok")
    kept[0].expect("PONG")
    kept[2].close()
    kept[0].expect(r":u2!\S+ QUIT")
    wait_until(lambda: len(server.sessions()) == 2)
    client("u3")


def test_max_per_ip_counts_browsers_by_their_webirc_address(make_server) -> None:
    server = make_server(max_per_ip=2, webirc_password="s3cret")
    client = clients_of(make_server, server)

    def browser(nick: str) -> IrcClient:
        c = client()
        # One write: the server may refuse (and close) right after WEBIRC, and a second
        # write racing that close would fail with a broken pipe instead of reading the refusal.
        lines = ["WEBIRC s3cret lobby-web browser.example 198.51.100.7", f"NICK {nick}", f"USER {nick} 0 * :{nick}"]
        c.send_raw("".join(line + "\r\n" for line in lines).encode())
        return c

    first, second = browser("b1"), browser("b2")
    first.expect(r" 001 b1 ")
    second.expect(r" 001 b2 ")
    first.send("WHOIS b2")
    first.expect(r" 311 b1 b2 b2 198\.51\.100\.7 ")
    third = browser("b3")
    assert any("Too many connections from your address" in line for line in third.expect_closed())
    # Loopback itself is exempt: many local clients are fine.
    for i in range(4):
        client(f"local{i}")


def test_webirc_is_refused_without_the_right_secret(make_server) -> None:
    server = make_server(webirc_password="s3cret")
    c = clients_of(make_server, server)()
    c.send("WEBIRC wrong lobby-web h 198.51.100.7")
    assert any("Invalid WEBIRC" in line for line in c.expect_closed())


def test_room_limit_per_user(make_server) -> None:
    server = make_server(max_rooms_per_user=3)
    c = clients_of(make_server, server)("joiner")
    c.send("JOIN #a,#b,#c")
    c.expect(r" 366 joiner #b ")
    c.expect(r" 405 joiner #c ")


# -- password -------------------------------------------------------------------------


@pytest.mark.parametrize(("password", "accepted"), [("opensesame", True), ("wrong", False), (None, False)])
def test_password(make_server, password: str | None, accepted: bool) -> None:
    server = make_server(password="opensesame")
    c = clients_of(make_server, server)()
    if password:
        c.send(f"PASS {password}")
    c.send("NICK guest")
    c.send("USER guest 0 * :Guest")
    if accepted:
        c.expect(r" 001 guest ")
    else:
        lines = c.expect_closed()
        assert any(" 464 " in line for line in lines)
        assert any(line.startswith("ERROR ") for line in lines)
        assert server.hub.find("guest") is None


# -- TLS --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate_authority() -> trustme.CA:
    return trustme.CA()


def test_a_tls_client_chats_with_a_plain_one(make_server, certificate_authority: trustme.CA) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certificate_authority.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    server = make_server(tls_port=0, tls_context=context)
    assert server.tls_address is not None
    plain = clients_of(make_server, server)("plain")

    client_context = ssl.create_default_context()
    certificate_authority.configure_trust(client_context)
    raw = socket.create_connection(server.tls_address, timeout=10)
    tls = client_context.wrap_socket(raw, server_hostname="localhost")
    secure = IrcClient(server.tls_address, sock=tls)
    make_server.clients.append(secure)
    secure.register("secure")
    secure.send("PRIVMSG #lobby :over tls")
    plain.expect(r":secure!\S+ PRIVMSG #lobby :over tls")
    plain.send("PRIVMSG secure :" + "long reply " * 40)
    assert secure.expect(r"PRIVMSG secure :").params[1].startswith("long reply")


def test_a_failed_tls_handshake_costs_nothing(make_server, certificate_authority: trustme.CA) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certificate_authority.issue_cert("localhost").configure_cert(context)
    server = make_server(tls_port=0, tls_context=context)
    garbage = socket.create_connection(server.tls_address, timeout=10)
    garbage.sendall(b"NICK plaintext\r\nUSER x 0 * :x\r\n")
    try:
        received = b""
        while chunk := garbage.recv(4096):  # until the server closes it
            received += chunk
        assert b"001" not in received and not received.startswith(b":")  # a TLS alert at most, never IRC
        wait_until(lambda: not server.sessions())
    finally:
        garbage.close()


# -- hostile input ----------------------------------------------------------------------


def _rss_kb() -> int:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def test_live_fuzz_while_two_users_chat_and_lose_nothing(make_server) -> None:
    # The flood gate stays on, at a rate that lets alice's and bob's 100 lines through in well under a second.
    server = make_server(registration_timeout=3.0, flood_rate=250.0)
    client = clients_of(make_server, server)
    alice, bob = client("alice"), client("bob")
    baseline_threads = threading.active_count()
    baseline_rss = _rss_kb()
    rng = random.Random(1234)
    stop = threading.Event()

    def fuzzer(kind: int) -> None:
        while not stop.is_set():
            try:
                s = socket.create_connection(server.address, timeout=5)
            except OSError:
                continue
            try:
                if kind == 0:
                    s.sendall(rng.randbytes(rng.randint(1, 4000)))
                elif kind == 1:
                    s.sendall(b"\x00" * 2000 + b"\r\n" + b"\x00NICK \x00\r\n")
                elif kind == 2:
                    s.sendall(b"PRIVMSG #lobby :" + b"A" * 50_000)  # a line that never ends
                elif kind == 3:
                    s.sendall(b"CAP LS 302\r\nNICK half\r\n")  # registration never finished
                else:
                    s.sendall(b"NICK " + rng.randbytes(40) + b"\r\nUSER a 0 * :b\r\nJOIN #" + rng.randbytes(60) + b"\n")
                time.sleep(rng.random() * 0.05)
            except OSError:
                pass
            finally:
                s.close()

    fuzzers = [threading.Thread(target=fuzzer, args=(i % 5,)) for i in range(30)]
    for t in fuzzers:
        t.start()
    try:
        for i in range(100):
            alice.send(f"PRIVMSG #lobby :a{i}")
            bob.send(f"PRIVMSG alice :b{i}")
        got_bob = [bob.expect(r":alice!\S+ PRIVMSG #lobby :a\d+$", timeout=60).params[1] for _ in range(100)]
        got_alice = [alice.expect(r":bob!\S+ PRIVMSG alice :b\d+$", timeout=60).params[1] for _ in range(100)]
    finally:
        stop.set()
        for t in fuzzers:
            t.join(30)
    assert got_bob == [f"a{i}" for i in range(100)]
    assert got_alice == [f"b{i}" for i in range(100)]
    # Every fuzzing connection is gone, and so are its threads and (most of) its memory.
    wait_until(lambda: len(server.sessions()) == 2, timeout=30)
    wait_until(lambda: threading.active_count() <= baseline_threads, timeout=30)
    assert _rss_kb() - baseline_rss < 64 * 1024
