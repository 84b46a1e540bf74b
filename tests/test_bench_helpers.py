"""Unit tests of the benchmark load generator's pure helpers (no sockets, no timing)."""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))

from loadgen import ClientSpec, Target, Worker, count_boundary, numeric, split_lines, ws_frame
from run import Scenario, lat_summary, plan


def test_count_boundary_counts_a_needle_split_across_chunks_once():
    stream = b":a PRIVMSG #r :1\r\n:b PRIVMSG #r :2\r\n:c PRIVMSG #r :3\r\n"
    for cut in range(1, len(stream)):
        first, second = stream[:cut], stream[cut:]
        total = count_boundary(b"", first) + count_boundary(first[-6:], second)
        assert total == 3, cut


def test_ws_frame_is_a_masked_final_text_frame():
    frame = ws_frame(b"NICK a")
    assert frame[0] == 0x81 and frame[1] == 0x80 | 6
    assert frame[2:6] == b"\0\0\0\0" and frame[6:] == b"NICK a"
    long = ws_frame(b"x" * 300)
    assert long[1] == 0x80 | 126 and int.from_bytes(long[2:4], "big") == 300


def test_plan_spreads_senders_and_gives_each_sending_worker_a_watcher():
    sc = Scenario("t", "t", 100, senders=10, mode="window")
    shards = plan(sc, 3)
    specs = [c for shard in shards for c in shard]
    assert sorted(c.idx for c in specs) == list(range(100))
    assert sum(c.sender for c in specs) == 10
    for shard in shards:
        if any(c.sender for c in shard):
            assert any(c.probe and not c.sender for c in shard)


def test_plan_mixes_transports_for_the_bridge_scenario():
    sc = Scenario("b", "b", 100, senders=10, mode="rate", rate=100, probe_every=5, mixed_ws=True)
    specs = [c for shard in plan(sc, 3) for c in shard]
    senders = [c for c in specs if c.sender]
    assert {c.kind for c in senders} == {"tcp", "ws"}
    assert sorted(c.phase for c in senders) == [i / 10 for i in range(10)]


def test_lat_summary_percentiles_in_ms():
    s = lat_summary(list(range(1000, 101000, 1000)))  # 1..100 ms
    assert s["samples"] == 100
    assert s["p50_ms"] == 51.0 and s["p99_ms"] == 100.0 and s["max_ms"] == 100.0


def test_plan_spreads_clients_over_nodes_with_a_watcher_on_each():
    sc = Scenario("c", "c", 100, senders=10, mode="window")
    shards = plan(sc, 3, nodes=2)
    specs = [c for shard in shards for c in shard]
    assert sorted(c.idx for c in specs) == list(range(100))
    assert [sum(c.node == n for c in specs) for n in (0, 1)] == [50, 50]
    assert [sum(c.sender and c.node == n for c in specs) for n in (0, 1)] == [5, 5]
    for shard in shards:
        if any(c.sender for c in shard):
            assert {c.node for c in shard if c.probe and not c.sender} == {0, 1}
    # One node: everyone on node 0, as before.
    assert {c.node for shard in plan(sc, 3) for c in shard} == {0}


def test_numeric_is_the_command_only_not_a_number_in_the_text():
    assert numeric(b":irc.example 366 u1 #lobby :End of /NAMES list.") == b"366"
    assert numeric(b"@time=2026-01-01T00:00:00Z :irc.example 366 u1 #lobby :End") == b"366"
    assert numeric(b":irc.example 265 u1 366 366 :Current local users: 366 Max: 366") == b"265"
    assert numeric(b":irc.example NOTICE u1 :see 366 ") is None
    assert numeric(b"PING :irc.example") is None


def test_split_lines_keeps_the_unfinished_rest():
    assert split_lines(b"a\r\nb\nc") == ([b"a", b"b"], b"c")
    assert split_lines(b"partial") == ([], b"partial")


def test_a_client_joins_after_001_and_is_joined_only_at_the_numeric_366():
    """Against a scripted server: LUSERS mentioning 366 doesn't count, JOIN goes only after 001."""
    listener = socket.create_server(("127.0.0.1", 0))
    parent, child = mp.Pipe()
    target = Target("127.0.0.1", listener.getsockname()[1], None, "#room", True, "u")
    worker = Worker(0, [ClientSpec(0)], target, child)
    answer: list[dict] = []
    runner = threading.Thread(target=lambda: answer.append(worker.cmd_connect(deadline_in=10, max_pending=1)))
    runner.start()
    conn, _ = listener.accept()
    try:
        conn.settimeout(10)
        got = b""
        while b"USER" not in got:
            got += conn.recv(4096)
        conn.sendall(b":s 251 u0 :There are 366 users\r\n:s 265 u0 366 366 :Current local users: 366 Max: 366\r\n")
        assert b"JOIN" not in got
        conn.sendall(b":s 001 u0 :Welcome\r\n")
        while b"JOIN #room\r\n" not in got:
            got += conn.recv(4096)
        assert worker.clients[0].joined_at == 0  # nothing so far was the end of NAMES
        conn.sendall(b":s 353 u0 = #room :u0\r\n:s 366 u0 #room :End of /NAMES list.\r\n")
        runner.join(10)
        assert answer and answer[0]["joined"] == 1
    finally:
        runner.join(10)
        conn.close()
        listener.close()
        for c in worker.clients:
            if c.sock is not None:
                c.sock.close()
        worker.sel.close()
        parent.close()
        child.close()
