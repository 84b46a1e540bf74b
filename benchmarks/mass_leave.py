"""2,000 registered clients leave at once: how long until the server answers an honest one?

Starts `lobby serve --db :memory: --flood off` on free ports, registers N clients (all
at once, one process, non-blocking sockets) plus one honest client, closes the N sockets
in one go and times the honest client's PING → PONG, and the time until it has seen
every QUIT. The server's thread count is sampled from /proc meanwhile. Loopback only;
every wait has a deadline.

    python benchmarks/mass_leave.py [--clients 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import selectors
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEADLINE = 120.0


def threads_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def read_until(sock: socket.socket, needle: bytes, buf: bytearray, deadline: float) -> None:
    while needle not in buf:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        data = sock.recv(65536)
        if not data:
            raise SystemExit("server closed the honest client")
        buf += data
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {needle!r}")


def one_round(clients: int) -> dict[str, float]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--irc-port", "0", "--web-port", "0", "--db", ":memory:",
         "--flood", "off"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None
        m = re.search(r":(\d+)$", proc.stdout.readline().strip())
        if not m:
            raise SystemExit("server did not start")
        address = ("127.0.0.1", int(m[1]))
        deadline = time.monotonic() + DEADLINE
        honest = socket.create_connection(address)
        honest.sendall(b"NICK honest\r\nUSER h 0 * :h\r\n")
        hbuf = bytearray()
        read_until(honest, b" 366 honest ", hbuf, deadline)
        selector = selectors.DefaultSelector()
        socks = []
        for i in range(clients):
            s = socket.create_connection(address)
            s.sendall(f"NICK u{i}\r\nUSER u 0 * :u\r\n".encode())
            s.setblocking(False)
            selector.register(s, selectors.EVENT_READ, [i, bytearray()])
            socks.append(s)
        waiting = clients
        while waiting:
            if time.monotonic() > deadline:
                raise SystemExit(f"{waiting} clients never joined")
            for key, _ in selector.select(timeout=1):
                i, buf = key.data
                try:
                    buf += key.fileobj.recv(65536)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                if f" 366 u{i} ".encode() in buf:
                    selector.unregister(key.fileobj)
                    waiting -= 1
                else:
                    del buf[:-64]
        # Drain what the honest client got meanwhile, then the storm.
        hbuf.clear()
        honest.sendall(b"PING before\r\n")
        read_until(honest, b"before", hbuf, deadline)
        threads_before = threads_of(proc.pid)
        hbuf.clear()
        began = time.monotonic()
        for s in socks:
            s.close()
        honest.sendall(b"PING during\r\n")
        read_until(honest, b"during", hbuf, deadline)
        pong = time.monotonic() - began
        peak = threads_of(proc.pid)
        while hbuf.count(b" QUIT ") < clients:
            sock_deadline = deadline
            honest.settimeout(max(0.01, sock_deadline - time.monotonic()))
            data = honest.recv(1 << 20)
            if not data or time.monotonic() > deadline:
                raise SystemExit("the QUITs never all arrived")
            hbuf += data
            peak = max(peak, threads_of(proc.pid))
        all_quit = time.monotonic() - began
        honest.close()
        return {"clients": clients, "pong_s": round(pong, 3), "all_quits_s": round(all_quit, 3),
                "threads_before": threads_before, "threads_peak": peak}
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results = [one_round(args.clients) for _ in range(args.rounds)]
    for r in results:
        print(f"{r['clients']} left: PONG after {r['pong_s']} s, every QUIT after {r['all_quits_s']} s, "
              f"server threads {r['threads_before']} -> peak {r['threads_peak']}")
    print(json.dumps({"rounds": results}))


if __name__ == "__main__":
    main()
