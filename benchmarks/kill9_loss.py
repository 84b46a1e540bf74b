"""How much history a `kill -9` loses: the figure the README states.

A client sends room messages as fast as the server echoes them (echo-message), so
every echoed line is one the server accepted. The server is killed with SIGKILL
mid-stream; the database is then read back and compared with what was accepted.
Loopback only; bounded in time (a few seconds per round).

    python benchmarks/kill9_loss.py [--rounds 5] [--flood on|off] [--senders 1] [--window 8]

With flood control on (the default of `lobby serve`) one client is held to its rate, so
the server is never behind; off, the client sends as fast as the server echoes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import selectors
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start(db: str, flood: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--irc-port", "0", "--web-port", "0", "--db", db,
         "--flood", flood],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r":(\d+)$", line.strip())
    if not m:
        raise SystemExit(f"server did not start: {line!r}")
    return proc, int(m[1])


def one_round(seconds: float, flood: str, senders: int, window: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "lobby.db")
        proc, port = start(db, flood)
        socks = []
        for i in range(senders):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(f"CAP REQ :echo-message\r\nNICK sender{i}\r\nUSER s 0 * :s\r\nCAP END\r\n".encode())
            sock.setblocking(False)
            socks.append(sock)
        selector = selectors.DefaultSelector()
        for i, sock in enumerate(socks):
            selector.register(sock, selectors.EVENT_READ, i)
        accepted: list[tuple[str, float]] = []
        bufs = [b""] * senders
        sent = [0] * senders
        echoed = [0] * senders
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            # Keep `window` messages in flight per sender: sent but not yet echoed.
            for i, sock in enumerate(socks):
                burst = b""
                while sent[i] - echoed[i] < window:
                    burst += f"PRIVMSG #lobby :s{i}m{sent[i]}\r\n".encode()
                    sent[i] += 1
                if burst:
                    sock.setblocking(True)
                    sock.sendall(burst)
                    sock.setblocking(False)
            for key, _ in selector.select(timeout=0.5):
                i = key.data
                try:
                    data = socks[i].recv(65536)
                except BlockingIOError:
                    continue
                *lines, bufs[i] = (bufs[i] + data).split(b"\r\n")
                now = time.monotonic()
                mine = f" PRIVMSG #lobby :s{i}m".encode()  # its own echo, not the other senders' lines
                for line in lines:
                    if mine in line:
                        accepted.append((line.rsplit(b":", 1)[1].decode(), now))
                        echoed[i] += 1
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait()
        for sock in socks:
            sock.close()
        if proc.stdout:
            proc.stdout.close()
        stored = {row[0] for row in sqlite3.connect(db).execute("SELECT text FROM messages")}
        lost = [(text, at) for text, at in accepted if text not in stored]
        window_ms = (killed_at - min(at for _, at in lost)) * 1000 if lost else 0.0
        return {"accepted": len(accepted), "per_second": round(len(accepted) / seconds),
                "lost": len(lost), "lost_window_ms": round(window_ms, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--flood", choices=("on", "off"), default="off")
    parser.add_argument("--senders", type=int, default=1, help="clients sending at once (default 1)")
    parser.add_argument("--window", type=int, default=8, help="messages in flight per sender (default 8)")
    args = parser.parse_args()
    results = [one_round(random.uniform(1.0, 2.0), args.flood, args.senders, args.window)
               for _ in range(args.rounds)]
    for r in results:
        print(f"accepted {r['accepted']:6d} ({r['per_second']}/s)  lost {r['lost']:4d}"
              f"  (the last {r['lost_window_ms']} ms)")
    print(json.dumps({"flood": args.flood, "senders": args.senders, "window": args.window,
                      "max_lost": max(r["lost"] for r in results),
                      "max_lost_window_ms": max(r["lost_window_ms"] for r in results), "rounds": results}))


if __name__ == "__main__":
    main()
