"""The servers under test: Lobby (`lobby serve`) and ngircd, each started on loopback and stopped for sure.

Both run as child processes in their own process group; stop() sends SIGTERM, waits,
then SIGKILLs the group. /proc/PID/status and /proc/PID/stat give RSS, threads and CPU.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"
NGIRCD = shutil.which("ngircd") or "/usr/sbin/ngircd"
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
    room = "#lobby"
    send_join = True
    web_port: int | None = None
    sender_setup: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.tmp = tempfile.mkdtemp(prefix=f"bench-{self.name}-")
        self.port = 0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stats(self) -> dict[str, float]:
        return proc_stats(self.pid)

    def log_tail(self, n: int = 15) -> str:
        try:
            with open(os.path.join(self.tmp, "server.log"), errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

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
    send_join = False  # registration puts everyone in #lobby

    def start(self, timeout: float = 20.0) -> None:
        argv = [sys.executable, "-m", "backend.cli", "serve", "--host", HOST, "--irc-port", "0", "--web-port", "0",
                "--db", ":memory:", "--flood", "off", "--max-per-ip", "100000", "--max-clients", "10000"]
        self._spawn(argv, cwd=ROOT, stdout=subprocess.PIPE)
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
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ngircd exited at start:\n{self.log_tail()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=1) as s:
                    s.sendall(b"QUIT\r\n")
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"ngircd did not listen:\n{self.log_tail()}") from None
                time.sleep(0.05)


SERVERS = {"lobby": Lobby, "ngircd": Ngircd}


def stop_all() -> None:
    for server in list(LIVE):
        server.stop()
