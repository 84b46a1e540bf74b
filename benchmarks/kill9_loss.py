"""How much history a `kill -9` loses: the figure the README states.

A client sends room messages as fast as the server echoes them (echo-message), so
every echoed line is one the server accepted. The server is killed with SIGKILL
mid-stream; the database is then read back and compared with what was accepted.
Loopback only; bounded in time (a few seconds per round).

    python benchmarks/kill9_loss.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start(db: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--irc-port", "0", "--web-port", "0", "--db", db,
         "--flood", "off"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.search(r":(\d+)$", line.strip())
    if not m:
        raise SystemExit(f"server did not start: {line!r}")
    return proc, int(m[1])


def one_round(seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "lobby.db")
        proc, port = start(db)
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"CAP REQ :echo-message\r\nNICK sender\r\nUSER s 0 * :s\r\nCAP END\r\n")
        accepted: list[tuple[str, float]] = []
        buf = b""
        sent = 0
        deadline = time.monotonic() + seconds
        sock.settimeout(2)
        while time.monotonic() < deadline:
            # Keep 8 messages in flight: sent but not yet echoed.
            while sent - len(accepted) < 8:
                sock.sendall(f"PRIVMSG #lobby :m{sent}\r\n".encode())
                sent += 1
            buf += sock.recv(65536)
            *lines, buf = buf.split(b"\r\n")
            for line in lines:
                if b" PRIVMSG #lobby :m" in line:
                    accepted.append((line.rsplit(b":", 1)[1].decode(), time.monotonic()))
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait()
        sock.close()
        if proc.stdout:
            proc.stdout.close()
        stored = {row[0] for row in sqlite3.connect(db).execute("SELECT text FROM messages")}
        lost = [(text, at) for text, at in accepted if text not in stored]
        window = killed_at - min(at for _, at in lost) if lost else 0.0
        return {"accepted": len(accepted), "lost": len(lost), "lost_window_ms": round(window * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results = [one_round(random.uniform(1.0, 2.0)) for _ in range(args.rounds)]
    for r in results:
        print(f"accepted {r['accepted']:6d}  lost {r['lost']:4d}  (the last {r['lost_window_ms']} ms)")
    print(json.dumps({"max_lost_window_ms": max(r["lost_window_ms"] for r in results), "rounds": results}))


if __name__ == "__main__":
    main()
