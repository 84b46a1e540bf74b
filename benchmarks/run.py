"""Lobby's benchmark suite: the same workloads against Lobby and ngircd, side by side.

    python benchmarks/run.py            # the full run, a few minutes
    python benchmarks/run.py --quick    # a smoke run, about a minute
    python benchmarks/run.py --only fanout --servers lobby --profile   # py-spy profile of Lobby
    python benchmarks/run.py --quick --only cluster    # Lobby on 1 node vs 2 nodes on one Redis

Scenarios (see benchmarks/README.md): fanout, cluster, latency, scale, bridge. Everything runs on
127.0.0.1; every server and worker process it starts is stopped at the end, on Ctrl-C
and on errors too. Prints a table, writes benchmarks/results/<timestamp>.json, latest.json
and latest.png.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import resource
import signal
import subprocess
import sys
import time
from array import array
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, replace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import servers
from loadgen import ClientSpec, Target, worker_main
from servers import HOST, SERVERS, Server, stop_all

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")


@dataclass
class Scenario:
    key: str
    title: str
    clients: int
    senders: int = 0
    mode: str = ""  # "window": as fast as the in-flight window allows; "rate": a fixed offered rate
    rate: float = 0.0  # messages/s offered in all (mode "rate")
    window: int = 32
    seconds: float = 10.0
    size: int = 80
    probe_every: int = 0  # every k-th client parses every line; 0: only the senders' watchers do
    mixed_ws: bool = False  # every other client comes through the web bridge
    servers: tuple[str, ...] = ("lobby", "ngircd")
    join_timeout: float = 60.0
    max_pending: int = 4  # connections still registering at once, per worker process
    hold: float = 0.0  # seconds to keep everyone connected after joining, to see who drops


def scale_scenario(clients: int, seconds: float) -> Scenario:
    """Issue 19: clients all connect, register and join one room at once, then 20 messages/s there."""
    return Scenario(f"scale-{clients}", f"{clients:,} join one room at once, then 20 messages/s", clients, 10,
                    "rate", rate=20, seconds=seconds, probe_every=max(25, clients // 100),
                    servers=("lobby", "inspircd", "ngircd"), join_timeout=max(30.0, clients * 0.018),
                    max_pending=1 << 30, hold=2.0)


def scenarios(quick: bool, scale_clients: tuple[int, ...] = ()) -> list[Scenario]:
    t = 3.0 if quick else 10.0
    scale = [scale_scenario(n, t) for n in scale_clients or ((1000,) if quick else (2000,))]
    return [
        Scenario("fanout", "fan-out throughput", 100, 10, "window", window=32, seconds=t, join_timeout=30),
        # The same workload with the clients spread over two nodes sharing one Redis.
        Scenario("cluster", "fan-out, 1 node vs 2 nodes on one Redis", 100, 10, "window", window=32, seconds=t,
                 join_timeout=30, servers=("lobby", "lobby-2nodes")),
        Scenario("latency", "latency at a fixed rate", 500, 10, "rate", rate=200, seconds=t, probe_every=25),
        *scale,
        Scenario("bridge", "bridge path (WebSocket vs TCP)", 100, 10, "rate", rate=100, seconds=t, probe_every=5,
                 mixed_ws=True, servers=("lobby",)),
    ]


# -- running one scenario against one server ---------------------------------------


def plan(sc: Scenario, procs: int, nodes: int = 1) -> list[list[ClientSpec]]:
    """Which clients each worker process drives, their roles, and which node they connect to.

    With several nodes, senders take turns over the nodes and so do the other clients,
    and every worker with senders has a watcher on each node.
    """
    step = max(1, sc.clients // max(1, sc.senders))
    senders = {i * step + (i % 2 if sc.mixed_ws else 0): i / max(1, sc.senders) for i in range(sc.senders)}
    sender_node = {idx: i % nodes for i, idx in enumerate(sorted(senders))}
    shards: list[list[ClientSpec]] = [[] for _ in range(procs)]
    others = 0
    for idx in range(sc.clients):
        probe = bool(sc.probe_every) and idx % sc.probe_every == sc.probe_every - 1 and idx not in senders
        kind = "ws" if sc.mixed_ws and idx % 2 else "tcp"
        if idx in senders:
            node = sender_node[idx]
        else:
            node, others = others % nodes, others + 1
        shards[idx % procs].append(ClientSpec(idx, kind, idx in senders, probe, senders.get(idx, 0.0), node))
    for shard in shards:  # a worker with senders needs a watcher in the same process, on every node
        if not any(c.sender for c in shard):
            continue
        for node in range(nodes):
            if not any(c.probe and c.node == node for c in shard):
                next(c for c in shard if not c.sender and c.node == node).probe = True
    return [s for s in shards if s]


def percentile(sorted_values: list[int] | array, q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def lat_summary(values: list[int]) -> dict[str, float]:
    values = sorted(values)
    return {
        "samples": len(values),
        "p50_ms": percentile(values, 0.50) / 1000,
        "p99_ms": percentile(values, 0.99) / 1000,
        "max_ms": (values[-1] / 1000) if values else float("nan"),
    }


class Run:
    """The worker processes of one scenario against one server."""

    def __init__(self, server: Server, sc: Scenario, procs: int) -> None:
        self.server, self.sc = server, sc
        target = Target(HOST, server.port, server.web_port, server.room, server.send_join, "u", server.sender_setup,
                        server.ports)
        ctx = mp.get_context("fork")
        self.pipes, self.procs = [], []
        self.shards = plan(sc, procs, len(server.ports))
        for wid, shard in enumerate(self.shards):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=worker_main, args=(wid, shard, target, child), daemon=True)
            p.start()
            child.close()
            self.pipes.append(parent)
            self.procs.append(p)

    def ask(self, cmd: str, timeout: float, **arg) -> list[dict]:
        for pipe in self.pipes:
            pipe.send((cmd, arg))
        answers = []
        deadline = time.monotonic() + timeout
        for pipe in self.pipes:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise RuntimeError(f"a load-generator worker did not answer {cmd!r} in {timeout:.0f} s")
            answer = pipe.recv()
            if "fatal" in answer:
                raise RuntimeError("load-generator worker failed:\n" + answer["fatal"])
            answers.append(answer)
        return answers

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(Exception):
                pipe.send(("quit", {}))
        for p in self.procs:
            p.join(2)
            if p.is_alive():
                p.kill()
                p.join(2)
        for pipe in self.pipes:
            pipe.close()


def run_one(server_name: str, sc: Scenario, procs: int, profile: bool) -> dict:
    server = SERVERS[server_name]()
    server.start()
    run: Run | None = None
    try:
        time.sleep(0.3)
        base = server.stats()
        run = Run(server, sc, procs)
        # The scale scenario's join storm is what costs there: profile it too.
        spy = (start_profile(server, sc, "join", sc.join_timeout)
               if profile and server.family == "lobby" and sc.key.startswith("scale") else None)
        t_go = time.monotonic()
        joined = run.ask("connect", sc.join_timeout + 30, deadline_in=sc.join_timeout, max_pending=sc.max_pending)
        times = [t for j in joined for t in j["joined_at"]]
        n_joined = sum(j["joined"] for j in joined)
        res: dict = {
            "nodes": len(server.ports),
            "clients": sc.clients,
            "joined": n_joined,
            "join_s": (max(times) / 1e9 - t_go) if times else None,
            "join_complete": n_joined == sc.clients,
            # Until the last JOIN line reached anyone: everyone has seen everyone come in.
            "settled_s": max(j["last_join"] for j in joined) - t_go if n_joined else None,
            "join_errors": [e for j in joined for e in j["errors"]][:5],
        }
        after_join = server.stats()
        if spy is not None:
            spy[0].send_signal(signal.SIGINT)  # py-spy writes what it has so far
            res["join_profile"] = finish_profile(*spy)
        res["server_rss_mb"] = after_join.get("VmRSS", 0) / 1024
        res["server_threads"] = after_join.get("threads", 0)
        res["rss_per_conn_kb"] = (after_join.get("VmRSS", 0) - base.get("VmRSS", 0)) / max(1, n_joined)
        if sc.hold:
            held = run.ask("hold", sc.hold + 30, seconds=sc.hold)
            res["connected_after_hold"] = sum(h["connected"] for h in held)
            res["dropped"] = sum(h["closed"] for h in held)
            res["drop_errors"] = [e for h in held for e in h["errors"]][:5]
            end = server.stats()
            res["server_rss_mb"] = end.get("VmRSS", 0) / 1024
            res["server_threads"] = end.get("threads", 0)
        if server.settle:
            time.sleep(server.settle)
        if sc.mode:
            members = res.get("connected_after_hold", n_joined)
            res.update(load(server, run, sc, procs, profile, members))
        res["server_peak_rss_mb"] = server.stats().get("VmHWM", 0) / 1024
        return res
    finally:
        if run is not None:
            run.close()
        log = server.log_tail(5)
        server.stop()
        if server.family == "lobby" and "Traceback" in log:
            print(f"  (lobby log tail)\n{log}", file=sys.stderr)


def load(server: Server, run: Run, sc: Scenario, procs: int, profile: bool, members: int) -> dict:
    per_sender = sc.rate / sc.senders if sc.mode == "rate" else 0.0
    t0 = time.monotonic() + 0.3
    # A cluster: its first node.
    spy = start_profile(server, sc, "load", sc.seconds) if profile and server.family == "lobby" else None
    s0 = server.stats()
    answers = run.ask("load", sc.seconds + 60, t0=t0, seconds=sc.seconds, mode=sc.mode, rate=per_sender,
                      window=sc.window, size=sc.size, quiet=1.0, drain=20.0)
    s1 = server.stats()
    sent = sum(v for a in answers for v in a["sent"].values())
    received = sum(a["received"] for a in answers)
    last_rx = max(a["last_rx"] for a in answers)
    span = max(1e-9, last_rx - t0)
    # The server's CPU is measured from the start of sending to the end of the drain.
    wall = time.monotonic() - t0
    # Nobody gets their own message back (no echo-message); in the scale scenario the room is
    # whoever is still connected when the load begins.
    expected = sent * (members - 1)
    kinds = {c.idx: c.kind for shard in run.shards for c in shard}
    nodes = {c.idx: c.node for shard in run.shards for c in shard}
    by_node: dict[str, array] = defaultdict(lambda: array("q"))
    by_pair: dict[str, array] = defaultdict(lambda: array("q"))
    all_lat = array("q")
    for a in answers:
        for idx, (kind, sids_b, lats_b) in a["probes"].items():
            sids, lats = array("i"), array("q")
            sids.frombytes(sids_b)
            lats.frombytes(lats_b)
            all_lat.extend(lats)
            if sc.mixed_ws:
                for s, lat in zip(sids, lats, strict=True):
                    by_pair[f"{kinds[s]}->{kind}"].append(lat)
            if len(server.ports) > 1:
                for s, lat in zip(sids, lats, strict=True):
                    by_node["same node" if nodes[s] == nodes[idx] else "across nodes"].append(lat)
    out = {
        "seconds": sc.seconds,
        "sent": sent,
        "sent_per_s": sent / sc.seconds,
        "expected": expected,
        "received": received,
        "lost": expected - received,
        "deliveries_per_s": received / span,
        "clients_closed": sum(a["closed"] for a in answers),
        "load_errors": [e for a in answers for e in a["errors"]][:5],
        "server_cpu_cores": (s1.get("cpu", 0) - s0.get("cpu", 0)) / wall,
        "gen_cpu_cores": sum(a["cpu"] for a in answers) / wall,
        "gen_procs": len(answers),
        "server_threads": s1.get("threads", 0),
        "server_rss_mb": s1.get("VmRSS", 0) / 1024,
        "latency": lat_summary(list(all_lat)),
    }
    if sc.mixed_ws:
        out["paths"] = {pair: lat_summary(list(v)) for pair, v in sorted(by_pair.items())}
    if by_node:
        out["paths"] = {pair: lat_summary(list(v)) for pair, v in sorted(by_node.items(), reverse=True)}
    if "redis_cpu" in s1:
        out["redis_cpu_cores"] = (s1["redis_cpu"] - s0.get("redis_cpu", 0)) / wall
    if spy is not None:
        out["profile"] = finish_profile(*spy)
    return out


# -- profiling -----------------------------------------------------------------------


def start_profile(server: Server, sc: Scenario, phase: str, seconds: float):
    os.makedirs(RESULTS, exist_ok=True)
    raw = os.path.join(RESULTS, f"profile-{server.name}-{sc.key}{'-join' if phase == 'join' else ''}.txt")
    argv = ["py-spy", "record", "--pid", str(server.pid), "--duration", str(int(seconds)), "--rate", "200",
            "--gil", "--nonblocking", "--format", "raw", "-o", raw]
    try:
        with open(raw + ".log", "wb") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    except FileNotFoundError:
        print("py-spy not found: pip install py-spy", file=sys.stderr)
        return None
    return proc, raw


def finish_profile(proc: subprocess.Popen, raw: str) -> dict:
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return summarize_profile(raw)


def summarize_profile(raw: str, top: int = 25) -> dict:
    """Self and inclusive sample counts per function from py-spy's collapsed-stack output."""
    if not os.path.exists(raw):
        return {"error": f"py-spy wrote no profile (see {os.path.basename(raw)}.log)"}
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    with open(raw) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            n = int(count)
            total += n
            frames = [fr.split(" (")[0] + " (" + fr.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
                      if " (" in fr else fr for fr in stack.split(";")]
            own[frames[-1]] += n
            for fr in set(frames):
                incl[fr] += n
    return {
        "file": os.path.relpath(raw, os.path.dirname(HERE)),
        "samples": total,
        "self": [(f, round(100 * n / total, 1)) for f, n in own.most_common(top)] if total else [],
        "inclusive": [(f, round(100 * n / total, 1)) for f, n in incl.most_common(top)] if total else [],
    }


# -- the report -----------------------------------------------------------------------


ROWS = [
    ("fanout", "deliveries/s", lambda r: r.get("deliveries_per_s"), "{:,.0f}", "high"),
    ("fanout", "lost", lambda r: r.get("lost"), "{:,}", ""),
    ("fanout", "p50 latency ms", lambda r: r.get("latency", {}).get("p50_ms"), "{:.1f}", "low"),
    ("fanout", "p99 latency ms", lambda r: r.get("latency", {}).get("p99_ms"), "{:.1f}", "low"),
    ("fanout", "server CPU (cores)", lambda r: r.get("server_cpu_cores"), "{:.2f}", ""),
    ("fanout", "generator CPU (cores)", lambda r: r.get("gen_cpu_cores"), "{:.2f}", ""),
    ("latency", "p50 latency ms", lambda r: r.get("latency", {}).get("p50_ms"), "{:.2f}", "low"),
    ("latency", "p99 latency ms", lambda r: r.get("latency", {}).get("p99_ms"), "{:.2f}", "low"),
    ("latency", "max latency ms", lambda r: r.get("latency", {}).get("max_ms"), "{:.1f}", "low"),
    ("latency", "deliveries/s", lambda r: r.get("deliveries_per_s"), "{:,.0f}", "high"),
    ("latency", "lost", lambda r: r.get("lost"), "{:,}", ""),
    ("latency", "join time s (500)", lambda r: r.get("join_s"), "{:.2f}", "low"),
    ("latency", "server CPU (cores)", lambda r: r.get("server_cpu_cores"), "{:.2f}", ""),
    ("latency", "generator CPU (cores)", lambda r: r.get("gen_cpu_cores"), "{:.2f}", ""),
]


def fmt(fmtstr: str, value) -> str:
    if value is None or value != value:
        return "-"
    return fmtstr.format(value)


def table(results: dict) -> str:
    lines: list[str] = []
    if any(key in results for key, *_ in ROWS):
        lines.append(f"{'scenario':<9} {'metric':<24} {'lobby':>13} {'ngircd':>13} {'lobby/ngircd':>13}")
        lines.append("-" * len(lines[0]))
    for key, label, get, f, _ in ROWS:
        if key not in results:
            continue
        lob = get(results[key].get("lobby", {})) if "lobby" in results[key] else None
        ngi = get(results[key].get("ngircd", {})) if "ngircd" in results[key] else None
        ratio = f"{lob / ngi:.2f}" if isinstance(lob, int | float) and isinstance(ngi, int | float) and ngi else "-"
        lines.append(f"{key:<9} {label:<24} {fmt(f, lob):>13} {fmt(f, ngi):>13} {ratio:>13}")
    if "bridge" in results and "lobby" in results["bridge"]:
        b = results["bridge"]["lobby"]
        lines.append("")
        lines.append(f"bridge (Lobby only; {b.get('lost', '?')} lost of {b.get('expected', '?')}): "
                     "latency by path, sender->receiver")
        for pair, s in b.get("paths", {}).items():
            lines.append(f"  {pair:<8} p50 {s['p50_ms']:7.2f} ms   p99 {s['p99_ms']:7.2f} ms   "
                         f"max {s['max_ms']:7.1f} ms   ({s['samples']} samples)")
        add = bridge_added(b)
        if add:
            lines.append(f"  the bridge adds, p50: {add['one_hop_p50_ms']:.2f} ms per hop (tcp->ws minus tcp->tcp), "
                         f"{add['browser_to_browser_p50_ms']:.2f} ms browser to browser (ws->ws minus tcp->tcp)")
    if "cluster" in results:
        lines += ["", *cluster_table(results["cluster"])] if lines else cluster_table(results["cluster"])
    scale = scale_table(results)
    if scale:
        lines += ["", *scale] if lines else scale
    return "\n".join(lines)


def scale_keys(results: dict) -> list[str]:
    """The scale-N scenarios in results, smallest N first."""
    return sorted((k for k in results if k.startswith("scale-")), key=lambda k: int(k.split("-")[1]))


def scale_table(results: dict) -> list[str]:
    """One line per room size and server: joining all at once, then 20 messages/s in the room."""
    keys = scale_keys(results)
    if not keys:
        return []
    head = (f"{'clients':>7} {'server':<9} {'joined':>7} {'dropped':>7} {'join s':>7} {'settled':>7} {'RSS MB':>7} "
            f"{'threads':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'lost':>7} {'CPU':>5}")
    lines = ["scale: N clients join one room all at once, then 20 messages/s there (join s: until the last "
             "one joined; settled: until the last JOIN line reached anyone; -: not all did)", head, "-" * len(head)]
    for key in keys:
        for name, r in results[key].items():
            if "error" in r:
                lines.append(f"{key.split('-')[1]:>7} {name:<9} failed: {r['error'][:80]}")
                continue
            lat = r.get("latency", {})
            lines.append(
                f"{r['clients']:>7,} {name:<9} {fmt('{:,}', r.get('joined')):>7} {fmt('{:,}', r.get('dropped')):>7} "
                f"{fmt('{:.1f}', r.get('join_s') if r.get('join_complete') else None):>7} "
                f"{fmt('{:.1f}', r.get('settled_s') if r.get('join_complete') else None):>7} "
                f"{fmt('{:.0f}', r.get('server_peak_rss_mb')):>7} {fmt('{:,}', r.get('server_threads')):>7} "
                f"{fmt('{:.0f}', lat.get('p50_ms')):>7} {fmt('{:.0f}', lat.get('p99_ms')):>7} "
                f"{fmt('{:.0f}', lat.get('max_ms')):>7} {fmt('{:,}', r.get('lost')):>7} "
                f"{fmt('{:.2f}', r.get('server_cpu_cores')):>5}")
    return lines


CLUSTER_ROWS = [
    ("deliveries/s", lambda r: r.get("deliveries_per_s"), "{:,.0f}"),
    ("lost", lambda r: r.get("lost"), "{:,}"),
    ("p50 latency ms", lambda r: r.get("latency", {}).get("p50_ms"), "{:.1f}"),
    ("p99 latency ms", lambda r: r.get("latency", {}).get("p99_ms"), "{:.1f}"),
    ("server CPU (cores)", lambda r: r.get("server_cpu_cores"), "{:.2f}"),
    ("  of which Redis", lambda r: r.get("redis_cpu_cores"), "{:.2f}"),
    ("generator CPU (cores)", lambda r: r.get("gen_cpu_cores"), "{:.2f}"),
]


def cluster_table(cluster: dict) -> list[str]:
    """Lobby on one node against two nodes sharing one Redis, the same fan-out workload."""
    one, two = cluster.get("lobby", {}), cluster.get("lobby-2nodes", {})
    cores = os.cpu_count()
    lines = [
        "cluster: the fan-out workload on Lobby, 1 node vs 2 nodes sharing one Redis (clients spread evenly)",
        f"  all on this machine: both nodes, Redis and the load generator share its {cores} cores, so a second",
        "  node adds work here (every message also crosses Redis), not capacity; server CPU of 2 nodes",
        "  counts both nodes and Redis.",
        f"  {'metric':<24} {'1 node':>13} {'2 nodes':>13} {'2/1':>13}",
    ]
    if one.get("reused_from"):
        lines[0] += f"; the 1-node column is the {one['reused_from']} run"
    for label, get, f in CLUSTER_ROWS:
        a, b = get(one), get(two)
        ratio = f"{b / a:.2f}" if isinstance(a, int | float) and isinstance(b, int | float) and a else "-"
        lines.append(f"  {label:<24} {fmt(f, a):>13} {fmt(f, b):>13} {ratio:>13}")
    for path, lat in two.get("paths", {}).items():
        lines.append(f"  2 nodes, {path + ':':<14} p50 {lat['p50_ms']:7.1f} ms   p99 {lat['p99_ms']:7.1f} ms   "
                     f"({lat['samples']} samples)")
    for name, r in (("1 node", one), ("2 nodes", two)):
        if "error" in r:
            lines.append(f"  {name} failed: {r['error']}")
    return lines


def bridge_added(b: dict) -> dict | None:
    p = b.get("paths", {})
    if not all(k in p for k in ("tcp->tcp", "tcp->ws", "ws->ws")):
        return None
    return {
        "one_hop_p50_ms": p["tcp->ws"]["p50_ms"] - p["tcp->tcp"]["p50_ms"],
        "browser_to_browser_p50_ms": p["ws->ws"]["p50_ms"] - p["tcp->tcp"]["p50_ms"],
        "one_hop_p99_ms": p["tcp->ws"]["p99_ms"] - p["tcp->tcp"]["p99_ms"],
        "browser_to_browser_p99_ms": p["ws->ws"]["p99_ms"] - p["tcp->tcp"]["p99_ms"],
    }


def plot(results: dict, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"lobby": "#3b7dd8", "ngircd": "#999999", "1 node": "#3b7dd8", "2 nodes": "#8fb4ea"}
    cluster = results.get("cluster", {})
    fig, axes = plt.subplots(1, 5 if cluster else 4, figsize=(21 if cluster else 17, 4.2))

    def bars(ax, labels, series, ylabel, heading, log=False):
        width = 0.8 / max(1, len(series))
        for i, (name, values) in enumerate(series.items()):
            xs = [x + (i - (len(series) - 1) / 2) * width for x in range(len(labels))]
            vals = [v if isinstance(v, int | float) and v == v else 0 for v in values]
            ax.bar(xs, vals, width, label=name, color=colors.get(name))
            for x, v in zip(xs, values, strict=True):
                text = "n/a" if v is None else (f"{v:,.0f}" if abs(v) >= 100 else f"{v:.2f}")
                ax.annotate(text, (x, max(v or 0, 0)), ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_title(heading, fontsize=9)
        if log:
            ax.set_yscale("log")
        if series:
            ax.legend(fontsize=7)

    names = [n for n in ("lobby", "ngircd")]
    f = results.get("fanout", {})
    bars(axes[0], ["deliveries/s"], {n: [f.get(n, {}).get("deliveries_per_s")] for n in names if n in f},
         "deliveries per second", "fan-out: 100 clients, 10 senders, 32 in flight")
    lat = results.get("latency", {})
    bars(axes[1], ["p50", "p99", "max"],
         {n: [lat[n]["latency"][k] for k in ("p50_ms", "p99_ms", "max_ms")] for n in names if n in lat},
         "ms", "latency: 500 clients, 200 msgs/s offered", log=True)
    keys = scale_keys(results)
    s = results[keys[-1]] if keys else {}
    bars(axes[2], ["join time s", "RSS MB", "joined/100"],
         {n: [s[n].get("join_s") if s[n].get("join_complete") else None, s[n].get("server_rss_mb"),
              s[n].get("joined", 0) / 100] for n in names if n in s},
         "", f"scale: {next(iter(s.values()), {}).get('clients', '?')} clients (n/a: did not all join)")
    b = results.get("bridge", {}).get("lobby", {}).get("paths", {})
    pairs = list(b)
    bars(axes[3], pairs, {"lobby": [b[p]["p50_ms"] for p in pairs]}, "p50 ms",
         "bridge: latency by path (sender->receiver)")
    if cluster:
        runs = {"1 node": cluster.get("lobby", {}), "2 nodes": cluster.get("lobby-2nodes", {})}
        bars(axes[4], ["deliveries/s"], {k: [r.get("deliveries_per_s")] for k, r in runs.items()},
             "deliveries per second", "cluster fan-out: 1 node vs 2 + Redis, same cores")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_scale(results: dict, path: str, title: str) -> None:
    """Issue 19's figures by room size: time until all joined, RSS, p99 at 20 messages/s, per server."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = scale_keys(results)
    servers = list(dict.fromkeys(n for k in keys for n in results[k]))
    colors = {"lobby": "#3b7dd8", "lobby before": "#a9c4ee", "inspircd": "#d8833b", "ngircd": "#999999"}
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    panels = [("until all joined and every JOIN delivered (s)",
               lambda r: r.get("settled_s") if r.get("join_complete") else None),
              ("peak RSS (MB)", lambda r: r.get("server_peak_rss_mb")),
              ("p99 latency at 20 msgs/s (ms)", lambda r: r.get("latency", {}).get("p99_ms"))]
    for ax, (label, get) in zip(axes, panels, strict=True):
        width = 0.8 / max(1, len(servers))
        for i, name in enumerate(servers):
            xs = [x + (i - (len(servers) - 1) / 2) * width for x in range(len(keys))]
            vals = [get(results[k][name]) if name in results[k] and "error" not in results[k][name] else None
                    for k in keys]
            ax.bar(xs, [v or 0 for v in vals], width, label=name, color=colors.get(name))
            for x, v in zip(xs, vals, strict=True):
                ax.annotate("n/a" if v is None else f"{v:,.1f}" if v < 100 else f"{v:,.0f}", (x, v or 0),
                            ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(keys)), [f"{int(k.split('-')[1]):,} clients" for k in keys], fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(title + " (n/a: not all joined)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine() -> dict:
    info = {"nproc": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        info["mem_total_gb"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["ngircd"] = subprocess.run(["ngircd", "--version"], capture_output=True, text=True,
                                        timeout=5).stdout.splitlines()[0]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["inspircd"] = subprocess.run(["inspircd", "--version"], capture_output=True, text=True,
                                          timeout=5).stdout.strip()
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                     cwd=os.path.dirname(HERE), timeout=5).stdout.strip()
    return info


def same_run(results: dict, chosen: list[Scenario], sc: Scenario, name: str) -> dict | None:
    """The cluster scenario's 1-node run when this invocation already made it as fanout's Lobby run."""
    if sc.key != "cluster" or name != "lobby":
        return None
    fanout = next((s for s in chosen if s.key == "fanout"), None)
    earlier = results.get("fanout", {}).get("lobby")
    if fanout is None or earlier is None or "error" in earlier:
        return None
    keep = {"key": "", "title": "", "servers": ()}
    return earlier if replace(fanout, **keep) == replace(sc, **keep) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short smoke run (about a minute)")
    parser.add_argument("--only", nargs="*", default=None,
                        help="scenarios to run (fanout cluster latency scale bridge)")
    parser.add_argument("--servers", nargs="*", default=["lobby", "ngircd", "inspircd"],
                        help="servers to run (lobby ngircd inspircd; lobby includes its 2-node cluster)")
    parser.add_argument("--procs", type=int, default=3, help="load-generator worker processes (default 3)")
    parser.add_argument("--seconds", type=float, default=None, help="override each load phase's length")
    parser.add_argument("--scale-clients", type=int, nargs="*", default=[],
                        help="room sizes for the scale scenario (default 2000; 1000 with --quick)")
    parser.add_argument("--profile", action="store_true", help="py-spy record Lobby during each load phase")
    parser.add_argument("--label", default="", help="a note stored with the results")
    parser.add_argument("--lobby-root", default=None,
                        help="run Lobby from this checkout instead (e.g. `git archive OLD | tar -x -C DIR`)")
    parser.add_argument("--no-save", action="store_true", help="print only: write no results files")
    args = parser.parse_args(argv)

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    if args.lobby_root:
        servers.LOBBY_ROOT = os.path.abspath(args.lobby_root)
    # Thousands of sockets in this process's children (the servers and the load generator).
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    chosen = [s for s in scenarios(args.quick, tuple(args.scale_clients))
              if args.only is None or s.key in args.only or s.key.split("-")[0] in args.only]
    if args.seconds:
        chosen = [replace(s, seconds=args.seconds) for s in chosen]
    results: dict = {}
    started = time.time()
    try:
        for sc in chosen:
            for name in sc.servers:
                if name not in args.servers and SERVERS[name].family not in args.servers:
                    continue
                print(f"[{time.time() - started:5.0f}s] {sc.key} on {name}: {sc.title}, {sc.clients} clients",
                      flush=True)
                same = same_run(results, chosen, sc, name) if not args.profile else None
                if same is not None:
                    r = {**same, "reused_from": "fanout"}
                    print("    the same run as fanout's: not repeated", flush=True)
                    results.setdefault(sc.key, {})[name] = r
                    continue
                try:
                    r = run_one(name, sc, args.procs, args.profile)
                except RuntimeError as err:
                    r = {"error": str(err)}
                    print(f"  failed: {err}", file=sys.stderr)
                results.setdefault(sc.key, {})[name] = r
                brief = {k: r.get(k) for k in ("joined", "join_s", "deliveries_per_s", "lost", "server_rss_mb")
                         if r.get(k) is not None}
                if "latency" in r:
                    brief["p99_ms"] = r["latency"]["p99_ms"]
                print("   ", ", ".join(f"{k}={v:,.2f}" if isinstance(v, float) else f"{k}={v}"
                                       for k, v in brief.items()), flush=True)
    except KeyboardInterrupt:
        print("interrupted: stopping servers and workers", file=sys.stderr)
        return 130
    finally:
        stop_all()
    if "bridge" in results and "lobby" in results["bridge"]:
        add = bridge_added(results["bridge"]["lobby"])
        if add:
            results["bridge"]["lobby"]["bridge_adds"] = add
    print()
    print(table(results))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
    doc = {
        "timestamp": stamp,
        "quick": args.quick,
        "label": args.label,
        "lobby_root": args.lobby_root,
        "duration_s": round(time.time() - started, 1),
        "machine": machine(),
        "scenarios": {s.key: asdict(s) for s in chosen},
        "results": results,
    }
    if args.no_save:
        return 0
    os.makedirs(RESULTS, exist_ok=True)
    for name in (f"{stamp}.json", "latest.json"):
        with open(os.path.join(RESULTS, name), "w") as f:
            json.dump(doc, f, indent=1)
    with contextlib.suppress(ImportError):
        m = doc["machine"]
        if scale_keys(results):
            plot_scale(results, os.path.join(RESULTS, "latest-scale.png"),
                       f"One room, all joining at once, {stamp}, {m['nproc']} cores")
        plot(results, os.path.join(RESULTS, "latest.png"),
             f"Lobby vs ngircd, {stamp}, {m['nproc']} cores ({m.get('cpu', '?')}), Python {m['python']}"
             + (" [quick]" if args.quick else ""))
    print(f"\nwrote benchmarks/results/{stamp}.json, latest.json, latest.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
