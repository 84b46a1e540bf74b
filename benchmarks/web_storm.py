"""N browsers arrive at once through the web bridge: does an IRC user in another room notice?

Issue 16 item 3 and issue 19 (browsers). Starts `lobby serve --db :memory: --flood off` on free
ports (servers.Lobby). Two honest IRC users register on the TCP port, leave #lobby and meet in
#quiet; every 100 ms one of them sends a stamped PRIVMSG to #quiet (the other receives it) and
a stamped PING (it gets the PONG). Then N WebSocket clients (the real handshake, subprotocol
text.ircv3.net, one masked frame per line; loadgen.Worker in --procs separate processes, so the
generator does not share the server's GIL) connect all at once, register and wait for the end
of #lobby's NAMES. Reported: time until the last browser joined, joined/dropped, the honest
users' latency p50/p99/max (a line still unanswered at the end counts with its age), the
server's peak RSS and threads, and how many tracebacks the server logged. Loopback only;
every wait has a deadline.

    nice python benchmarks/web_storm.py [--browsers 2000] [--procs 2] [--deadline 120]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from loadgen import ClientSpec, Target, worker_main
from servers import HOST, Lobby

TICK = 0.1
PROFILE_OUT = "/tmp/web_storm.pyspy.txt"
IDLE_SECONDS = 5.0


def read_until(sock: socket.socket, needle: bytes, deadline: float) -> bytes:
    buf = b""
    while needle not in buf:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        data = sock.recv(65536)
        if not data:
            raise SystemExit(f"server closed an honest client before {needle!r}")
        buf += data
    return buf


def honest_pair(port: int, deadline: float) -> tuple[socket.socket, socket.socket]:
    """Two registered TCP users alone in #quiet."""
    pair = []
    for nick in ("talker", "hearer"):
        s = socket.create_connection((HOST, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
        read_until(s, f" 366 {nick} ".encode(), deadline)
        s.sendall(b"PART #lobby\r\nJOIN #quiet\r\n")
        read_until(s, f" 366 {nick} #quiet ".encode(), deadline)
        pair.append(s)
    return pair[0], pair[1]


class Honest(threading.Thread):
    """Every TICK: talker sends a stamped PRIVMSG (hearer gets it) and a stamped PING (talker gets the PONG)."""

    def __init__(self, talker: socket.socket, hearer: socket.socket) -> None:
        super().__init__(name="honest", daemon=True)
        self.talker, self.hearer = talker, hearer
        self.stop = threading.Event()
        self.pending: dict[bytes, int] = {}  # stamp -> sent at (ns), for lines and pings not yet seen
        self.lat_ms: list[float] = []
        self.sent = 0

    def run(self) -> None:
        sel = selectors.DefaultSelector()
        for s in (self.talker, self.hearer):
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, bytearray())
        next_tick = time.monotonic()
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= next_tick:
                ns = time.monotonic_ns()
                msg, ping = b"m%d" % ns, b"p%d" % ns
                self.pending[msg] = self.pending[ping] = ns
                self.sent += 2
                with contextlib.suppress(BlockingIOError):
                    self.talker.send(b"PRIVMSG #quiet :" + msg + b"\r\nPING :" + ping + b"\r\n")
                next_tick += TICK
            for key, _ in sel.select(max(0.0, next_tick - time.monotonic())):
                buf: bytearray = key.data
                try:
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                if not data:
                    raise SystemExit("an honest client was disconnected")
                buf += data
                *lines, rest = bytes(buf).split(b"\r\n")
                buf[:] = rest
                got = time.monotonic_ns()
                for line in lines:
                    stamp = line.rsplit(b" ", 1)[-1].lstrip(b":")
                    if stamp in self.pending:
                        self.lat_ms.append((got - self.pending.pop(stamp)) / 1e6)
                    elif line.startswith(b"PING "):
                        key.fileobj.send(b"PONG " + line[5:] + b"\r\n")  # type: ignore[union-attr]

    def summary(self) -> dict[str, float]:
        now = time.monotonic_ns()
        values = sorted(self.lat_ms + [(now - t) / 1e6 for t in self.pending.values()])
        pick = lambda q: round(values[min(len(values) - 1, int(q * len(values)))], 1) if values else None  # noqa: E731
        return {"samples": len(values), "unanswered": len(self.pending), "p50_ms": pick(0.5),
                "p99_ms": pick(0.99), "max_ms": round(values[-1], 1) if values else None}


def top_functions(path: str, n: int = 25) -> list[tuple[str, float, float]]:
    """From py-spy's raw (collapsed) output: (function, % of samples anywhere on the stack, % on top)."""
    total, inclusive, own = 0, Counter[str](), Counter[str]()
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip().rpartition(" ")
            frames = [fr.split(" (")[0] + " (" + fr.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
                      if " (" in fr else fr for fr in stack.split(";")[1:]]
            k = int(count)
            total += k
            for fr in set(frames):
                inclusive[fr] += k
            if frames:
                own[frames[-1]] += k
    return [(fr, round(100 * c / total, 1), round(100 * own[fr] / total, 1)) for fr, c in inclusive.most_common(n)]


def run(browsers: int, procs: int, deadline_s: float, extra_args: tuple[str, ...], profile: float = 0) -> dict:
    server = Lobby(extra_args)
    server.start()
    workers: list[mp.Process] = []
    pipes = []
    honest: Honest | None = None
    try:
        deadline = time.monotonic() + 30
        talker, hearer = honest_pair(server.port, deadline)
        honest = Honest(talker, hearer)
        honest.start()
        target = Target(HOST, server.port, server.web_port, "#lobby", False, "b")
        ctx = mp.get_context("fork")
        for wid in range(procs):
            specs = [ClientSpec(i, kind="ws") for i in range(wid, browsers, procs)]
            parent, child = ctx.Pipe()
            p = ctx.Process(target=worker_main, args=(wid, specs, target, child), daemon=True)
            p.start()
            child.close()
            workers.append(p)
            pipes.append(parent)
        time.sleep(1.0)  # the honest users' baseline
        base = server.stats()
        peak = dict(base)
        t0 = time.monotonic()
        t0_ns = time.monotonic_ns()
        spy = None
        if profile:
            # --gil: only the thread holding the GIL, i.e. what keeps the honest users waiting.
            spy = subprocess.Popen(["py-spy", "record", "--pid", str(server.pid), "--gil", "--nonblocking",
                                    "--rate", "50", "--duration", str(int(profile)), "--format", "raw",
                                    "--output", PROFILE_OUT], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for pipe in pipes:
            pipe.send(("connect", {"deadline_in": deadline_s, "max_pending": 1 << 30}))
        answers = []
        for pipe in pipes:
            while not pipe.poll(0.5):
                stats = server.stats()
                for k in ("VmRSS", "threads"):
                    peak[k] = max(peak.get(k, 0), stats.get(k, 0))
                if time.monotonic() - t0 > deadline_s + 30:
                    raise SystemExit("a load-generator worker did not answer")
            answer = pipe.recv()
            if "fatal" in answer:
                raise SystemExit("worker failed:\n" + answer["fatal"])
            answers.append(answer)
        elapsed = time.monotonic() - t0
        joined_at = [t for a in answers for t in a["joined_at"]]
        end = server.stats()
        for k in ("VmRSS", "threads"):
            peak[k] = max(peak.get(k, 0), end.get(k, 0))
        time.sleep(1.0)  # let the honest users' last lines come in
        honest.stop.set()
        honest.join(5)
        # What the browsers cost while nobody says anything (the old relays polled every second).
        before_idle = server.stats().get("cpu", 0)
        time.sleep(IDLE_SECONDS)
        idle_cores = (server.stats().get("cpu", 0) - before_idle) / IDLE_SECONDS
        if spy is not None:
            spy.wait(profile + 30)
        with open(os.path.join(server.tmp, "server.log"), errors="replace") as f:
            log = f.read()
        joined = sum(a["joined"] for a in answers)
        return {
            "browsers": browsers,
            "procs": procs,
            "joined": joined,
            "dropped": browsers - joined,
            "all_joined_s": round((max(joined_at) - t0_ns) / 1e9, 2) if joined == browsers else None,
            "last_joined_s": round((max(joined_at) - t0_ns) / 1e9, 2) if joined_at else None,
            "elapsed_s": round(elapsed, 2),
            "retries": sum(a.get("retries", 0) for a in answers),
            "errors": [e for a in answers for e in a["errors"]][:5],
            "honest": honest.summary(),
            "rss_mb_peak": round(peak.get("VmRSS", 0) / 1024),
            "rss_mb_end": round(end.get("VmRSS", 0) / 1024),
            "threads_peak": int(peak.get("threads", 0)),
            "threads_end": int(end.get("threads", 0)),
            "server_cpu_s": round(end.get("cpu", 0) - base.get("cpu", 0), 1),
            "idle_cores": round(idle_cores, 3),
            "tracebacks": log.count("Traceback"),
            "log_lines": log.count("\n"),
        }
    finally:
        if honest is not None:
            honest.stop.set()
        for pipe in pipes:
            with contextlib.suppress(Exception):
                pipe.send(("quit", {}))
        for p in workers:
            p.join(2)
            if p.is_alive():
                p.kill()
                p.join(2)
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--browsers", type=int, default=2000)
    parser.add_argument("--procs", type=int, default=2, help="load-generator processes")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds the browsers have to join")
    parser.add_argument("--label", default="")
    parser.add_argument("--profile", type=float, default=0, help="py-spy the server (--gil) for this many seconds")
    parser.add_argument("server_args", nargs="*", help="extra `lobby serve` arguments (after --)")
    args = parser.parse_args()
    r = run(args.browsers, args.procs, args.deadline, tuple(args.server_args), args.profile)
    r["label"] = args.label
    h = r["honest"]
    print(f"{r['joined']}/{r['browsers']} browsers joined ({r['dropped']} dropped), last after {r['last_joined_s']} s; "
          f"honest IRC p50 {h['p50_ms']} ms, p99 {h['p99_ms']} ms, max {h['max_ms']} ms "
          f"({h['unanswered']} unanswered of {h['samples']}); server peak {r['rss_mb_peak']} MB, "
          f"{r['threads_peak']} threads, {r['idle_cores']} cores idle; "
          f"{r['tracebacks']} tracebacks; {r['retries']} handshakes told to retry")
    if args.profile:
        for fr, incl, own in top_functions(PROFILE_OUT):
            print(f"{incl:5.1f}% {own:5.1f}%  {fr}")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
