"""Fan-out over two Lobby nodes sharing one Redis, against the same load on one node.

    python benchmarks/cluster_fanout.py [--listeners 40] [--senders 4] [--messages 1000]

Starts a private redis-server and `lobby serve` processes on free loopback ports (flood
control off), spreads listeners and senders evenly over the nodes, lets every sender
send its messages as fast as the socket takes them, and measures how long until every
listener has every message. Prints deliveries per second for 1 node and for 2 nodes.
A burst test; the load generator is one Python process, so it may itself be the limit.
The suite's cluster scenario (the fan-out workload with its in-flight window, latency and
lost count, on 1 node vs 2 nodes) is `python benchmarks/run.py --only cluster`.
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def start_node(redis_url: str | None) -> tuple[subprocess.Popen[str], int]:
    argv = [sys.executable, "-m", "backend.cli", "serve", "--irc-port", "0", "--web-port", "0", "--db", ":memory:",
            "--flood", "off", "--history", "0"]
    if redis_url:
        argv += ["--redis", redis_url]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("chat server on "):
        proc.kill()
        raise RuntimeError(f"node did not start: {line!r}")
    return proc, int(line.rsplit(":", 1)[1])


def register(port: int, nick: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
    data = b""
    while b" 366 " not in data:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError(f"{nick} was disconnected")
        data += chunk
    return s


def run(ports: list[int], listeners: int, senders: int, messages: int) -> float:
    """Deliveries per second with clients spread over the given nodes' ports."""
    ears = [register(ports[i % len(ports)], f"l{i}") for i in range(listeners)]
    mouths = [register(ports[i % len(ports)], f"s{i}") for i in range(senders)]
    time.sleep(1.0)  # let the last JOINs reach every node
    expected = senders * messages
    counts = [0] * listeners
    tails = [b""] * listeners
    sel = selectors.DefaultSelector()
    for i, s in enumerate(ears):
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
    start = time.monotonic()
    for n in range(messages):
        for s in mouths:
            s.sendall(f"PRIVMSG #lobby :message {n} padding padding padding padding\r\n".encode())
    deadline = start + 120
    done = 0
    while done < listeners and time.monotonic() < deadline:
        for key, _ in sel.select(1.0):
            i = key.data
            data = tails[i] + key.fileobj.recv(1 << 20)  # type: ignore[union-attr]
            whole, _, tails[i] = data.rpartition(b"\n")  # count whole lines only
            before = counts[i]
            counts[i] += whole.count(b" PRIVMSG #lobby :message ")
            if before < expected <= counts[i]:
                done += 1
    elapsed = time.monotonic() - start
    for s in ears + mouths:
        s.close()
    if done < listeners:
        print(f"  only {done}/{listeners} listeners got everything ({min(counts)}..{max(counts)} of {expected})")
    return sum(min(c, expected) for c in counts) / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listeners", type=int, default=40)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--messages", type=int, default=1000)
    args = parser.parse_args()
    procs: list[subprocess.Popen[bytes] | subprocess.Popen[str]] = []
    try:
        node, port = start_node(None)
        procs.append(node)
        one = run([port], args.listeners, args.senders, args.messages)
        print(f"1 node:  {one:,.0f} deliveries/s")
        node.terminate()
        node.wait(10)
        redis_proc, url = start_redis()
        procs.append(redis_proc)
        ports = []
        for _ in range(2):
            node, port = start_node(url)
            procs.append(node)
            ports.append(port)
        two = run(ports, args.listeners, args.senders, args.messages)
        print(f"2 nodes: {two:,.0f} deliveries/s (one Redis)")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
