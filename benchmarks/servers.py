"""The servers under test: Lobby (`lobby serve`), ngircd, InspIRCd, and two Lobby nodes on one Redis.

Each runs as a child process in its own process group, started on loopback and stopped
for sure: stop() sends SIGTERM, waits, then SIGKILLs the group. /proc/PID/status and
/proc/PID/stat give RSS, threads and CPU (for the cluster: summed over its processes).
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Which checkout's Lobby runs (run.py --lobby-root: e.g. an older commit, for before/after).
LOBBY_ROOT = ROOT
HOST = "127.0.0.1"
NGIRCD = shutil.which("ngircd") or "/usr/sbin/ngircd"
INSPIRCD = shutil.which("inspircd") or "/usr/sbin/inspircd"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Everything started, so that Ctrl-C or an error anywhere still stops it.
LIVE: set[Server] = set()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def proc_stats(pid: int) -> dict[str, float]:
    """RSS (KiB), peak RSS, thread count and CPU seconds (user+system) of a process."""
    out: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0])
                elif key == "Threads":
                    out["threads"] = int(value)
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out["cpu"] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, ValueError, IndexError):
        pass
    return out


class Server:
    name = "?"
    family = "?"  # what --servers selects it by
    room = "#lobby"
    send_join = True
    web_port: int | None = None
    sender_setup: tuple[str, ...] = ()
    settle = 0.0  # seconds to wait after everyone joined, before measuring

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.tmp = tempfile.mkdtemp(prefix=f"bench-{self.name}-")
        self.port = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def ports(self) -> tuple[int, ...]:
        """The chat ports clients are spread over: one per node."""
        return (self.port,)

    def stats(self) -> dict[str, float]:
        return proc_stats(self.pid)

    def log_tail(self, n: int = 15) -> str:
        try:
            with open(os.path.join(self.tmp, "server.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def _await_irc(self, timeout: float) -> None:
        """Return once the spawned IRC server takes connections on self.port (it is told QUIT)."""
        self._await(timeout, b"QUIT\r\n")

    def _await(self, timeout: float, hello: bytes, answer: bytes = b"") -> None:
        """Return once the spawned server takes a connection on self.port, is sent hello, and
        (when given) answers with answer; raise if it exits or the timeout passes first."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=1) as s:
                    s.sendall(hello)
                    if not answer or s.recv(16).startswith(answer):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not answer:\n{self.log_tail()}")
            time.sleep(0.05)

    def _spawn(self, argv: list[str], **kw) -> None:
        log = open(os.path.join(self.tmp, "server.log"), "wb")  # noqa: SIM115 - lives as long as the server
        self.proc = subprocess.Popen(argv, stderr=log, start_new_session=True, stdin=subprocess.DEVNULL, **kw)
        log.close()
        LIVE.add(self)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        LIVE.discard(self)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Lobby(Server):
    name = "lobby"
    family = "lobby"
    send_join = False  # registration puts everyone in #lobby

    def __init__(self, extra_args: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.extra_args = extra_args

    def start(self, timeout: float = 20.0) -> None:
        argv = [sys.executable, "-m", "backend.cli", "serve", "--host", HOST, "--irc-port", "0", "--web-port", "0",
                "--db", ":memory:", "--flood", "off", "--max-per-ip", "100000", "--max-clients", "100000",
                *self.extra_args]
        self._spawn(argv, cwd=LOBBY_ROOT, stdout=subprocess.PIPE)
        fd = self.proc.stdout.fileno()
        text = b""
        deadline = time.monotonic() + timeout
        while b"web on" not in text:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError(f"lobby serve did not start: {text!r}\n{self.log_tail()}")
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    continue
                text += chunk
        self.port = int(re.search(rb"chat server on [^\s]+:(\d+)", text)[1])
        self.web_port = int(re.search(rb"web on http://[^\s]+:(\d+)", text)[1])


NGIRCD_CONF = """\
[Global]
Name = bench.ngircd
Info = benchmark server
Listen = {host}
Ports = {port}
MotdPhrase = benchmark
PidFile = {tmp}/ngircd.pid
HelpFile = {tmp}/help.txt
ServerUID = 0
ServerGID = 0

[Limits]
MaxConnections = 0
MaxConnectionsIP = 0
MaxJoins = 0
MaxNickLength = 30
MaxPenaltyTime = 0
PingTimeout = 600
PongTimeout = 600

[Operator]
Name = bench
Password = bench
Mask = *

[Options]
DNS = no
Ident = no
PAM = no
MorePrivacy = no
"""


class Ngircd(Server):
    name = "ngircd"
    family = "ngircd"
    send_join = True
    # ngircd reads at most 3 commands per client per pass and throttles clients that send more
    # than 256 bytes a second; user mode +F (set by an operator) lifts both for the senders.
    sender_setup = ("OPER bench bench", "MODE {nick} +F")

    def start(self, timeout: float = 10.0) -> None:
        if not os.path.exists(NGIRCD):
            raise RuntimeError("ngircd is not installed: apt-get install -y ngircd")
        self.port = free_port()
        conf = os.path.join(self.tmp, "ngircd.conf")
        with open(conf, "w") as f:
            f.write(NGIRCD_CONF.format(host=HOST, port=self.port, tmp=self.tmp))
        open(os.path.join(self.tmp, "help.txt"), "w").close()
        self._spawn([NGIRCD, "-n", "-f", conf], stdout=subprocess.DEVNULL)
        self._await_irc(timeout)


INSPIRCD_CONF = """\
<config format="xml">
<server name="bench.inspircd" description="benchmark server" network="bench">
<admin name="bench" nick="bench" email="bench@localhost">
<bind address="{host}" port="{port}" type="clients">
<pid file="{tmp}/inspircd.pid">
<files motd="{tmp}/motd.txt">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="{tmp}/inspircd.log">
<performance netbuffersize="65536" somaxconn="{backlog}" softlimit="{softlimit}" clonesonconnect="no"
             quietbursts="yes" timeskipwarn="0">
<connect name="bench" allow="*" maxchans="20" timeout="600" pingfreq="600" hardsendq="64M" softsendq="1M"
         recvq="1M" threshold="1000000" commandrate="1000000000" fakelag="no" localmax="1000000"
         globalmax="1000000" maxconnwarn="no" resolvehostnames="no" useident="no" limit="1000000">
<options defaultmodes="nt">
<security announceinvites="dynamic" hideulines="no" flatlinks="no" hidebans="no" hidesplits="no"
          maxtargets="20" customversion="" operspywhois="no" restrictbannedusers="yes" genericoper="no"
          userstats="Pu">
<limits maxnick="30" maxchan="64" maxmodes="20" maxident="11" maxhost="64" maxquit="255" maxtopic="307"
        maxkick="255" maxreal="128" maxaway="200">
<channels users="100" opers="100">
<dns timeout="1">
<whowas groupsize="0" maxgroups="0" maxkeep="0">
"""


class Inspircd(Server):
    """Debian's InspIRCd 3 (C++, one thread, epoll), the server the scale scenario is measured against.

    Its config (written to a temporary directory) listens on loopback only, raises every per-IP,
    per-class and flood limit so that 10,000 clients from 127.0.0.1 get in at once and are
    neither throttled nor dropped, and does no DNS or ident lookups.
    """

    name = "inspircd"
    family = "inspircd"
    send_join = True  # after 001: it answers a JOIN sent earlier with 451

    def start(self, timeout: float = 10.0) -> None:
        if not os.path.exists(INSPIRCD):
            raise RuntimeError("inspircd is not installed: apt-get install -y inspircd")
        self.port = free_port()
        conf = os.path.join(self.tmp, "inspircd.conf")
        with open(conf, "w") as f:
            f.write(INSPIRCD_CONF.format(host=HOST, port=self.port, tmp=self.tmp, backlog=listen_backlog(),
                                         softlimit=resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 64))
        open(os.path.join(self.tmp, "motd.txt"), "w").close()
        argv = [INSPIRCD, "--nofork", "--nopid", "--config", conf]
        if os.geteuid() == 0:
            argv.append("--runasroot")
        self._spawn(argv, stdout=subprocess.DEVNULL)
        self._await_irc(timeout)

    def log_tail(self, n: int = 15) -> str:
        tail = super().log_tail(n)
        with contextlib.suppress(OSError), open(os.path.join(self.tmp, "inspircd.log"), errors="replace") as f:
            tail += "".join(f.readlines()[-n:])
        return tail


def listen_backlog() -> int:
    """The kernel's cap on a listen queue (net.core.somaxconn)."""
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 4096


class Redis(Server):
    """A private redis-server for the cluster: loopback, a free port, nothing kept on disk."""

    name = "redis"
    family = "redis"

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        if not os.path.exists(REDIS_SERVER):
            raise RuntimeError("redis-server is not installed: apt-get install -y redis-server")
        self.port = free_port()
        self._spawn([REDIS_SERVER, "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no",
                     "--logfile", os.path.join(self.tmp, "server.log")], stdout=subprocess.DEVNULL)
        self._await(timeout, b"PING\r\n", b"+PONG")


class LobbyCluster(Server):
    """Two `lobby serve --redis URL` nodes on one private Redis, all on this machine.

    port/web_port are the first node's; ports lists both, and the load generator spreads
    its clients over them. stats() sums both nodes and Redis (cpu, RSS, threads) and
    also gives Redis's CPU alone.
    """

    name = "lobby-2nodes"
    family = "lobby"
    send_join = False
    settle = 1.0  # the JOINs of the last clients reach the other node's mirror

    def __init__(self, nodes: int = 2) -> None:
        super().__init__()
        self.redis = Redis()
        self.nodes = [Lobby() for _ in range(nodes)]

    @property
    def pid(self) -> int:
        return self.nodes[0].pid

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(node.port for node in self.nodes)

    def start(self, timeout: float = 20.0) -> None:
        LIVE.add(self)
        self.redis.start()
        for node in self.nodes:
            node.extra_args = ("--redis", self.redis.url)
            node.start(timeout)
        self.port = self.nodes[0].port
        self.web_port = self.nodes[0].web_port

    def stats(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for part in [*self.nodes, self.redis]:
            if part.proc is None:
                continue
            for key, value in part.stats().items():
                total[key] = total.get(key, 0) + value
        if self.redis.proc is not None:
            total["redis_cpu"] = self.redis.stats().get("cpu", 0)
        return total

    def log_tail(self, n: int = 15) -> str:
        return "".join(node.log_tail(n) for node in self.nodes)

    def stop(self) -> None:
        LIVE.discard(self)
        for node in self.nodes:
            node.stop()
        self.redis.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


SERVERS: dict[str, type[Server]] = {"lobby": Lobby, "ngircd": Ngircd, "inspircd": Inspircd,
                                    "lobby-2nodes": LobbyCluster}


def stop_all() -> None:
    for server in list(LIVE):
        server.stop()
