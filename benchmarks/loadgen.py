"""The load generator: one worker process drives a share of the clients with selectors.

Every client is a non-blocking socket in one selector loop per process. A client
connects, registers (NICK/USER; for servers that don't auto-join, JOIN once 001 has
come) and waits for the end of the room's NAMES (the numeric 366, nothing else that
merely contains " 366 "). Then senders send room messages
whose text is "<sender> <seq> <monotonic-ns> xxx..." padded to the message size.

Receivers come in two sorts, so that the generator stays cheaper than the server:
- counters count deliveries with bytes.count(b"PRIVMSG") over whatever recv()
  returned (plus the 6 bytes either side of a chunk boundary), never a line at a time;
- probes split their stream into lines and parse every message, recording its
  latency (receive time minus the send stamp, both CLOCK_MONOTONIC, which all
  processes share). A probe in the same process as some senders is their
  "watcher": the highest sequence number it saw of each of them is what those
  senders count as delivered, which is how the in-flight window works on
  servers without echo-message (ngircd). Against several nodes (clients spread
  over their ports) a process has a watcher on each node, and a message counts
  as delivered once every one of them has seen it.

The parent (run.py) drives the phases over a Pipe: connect, load, hold, quit.
Every loop has a deadline.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import math
import os
import re
import resource
import selectors
import socket
import time
import traceback
from array import array
from dataclasses import dataclass

PRIV = b"PRIVMSG"
LAT_RE = re.compile(rb"PRIVMSG \S+ :(\d+) (\d+) (\d+) ")
RECV = 262144
PAD = b"x" * 1024
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE

NEW, CONNECTING, HANDSHAKE, REGISTERING, JOINED, CLOSED = range(6)


@dataclass
class ClientSpec:
    """One simulated user: its global index, transport and role."""

    idx: int
    kind: str = "tcp"  # "tcp" or "ws"
    sender: bool = False
    probe: bool = False
    # A sender's offset in its schedule, as a fraction of one interval: senders at a fixed
    # rate take turns instead of all sending at the same instants.
    phase: float = 0.0
    node: int = 0  # which of the server's nodes (Target.irc_ports) a TCP client connects to


@dataclass
class Target:
    """Where and how to connect, and what the server needs to be told."""

    host: str
    irc_port: int
    web_port: int | None
    room: str
    send_join: bool  # ngircd needs an explicit JOIN; Lobby puts everyone in #lobby
    nick_prefix: str
    # Lines a sender sends after registering, e.g. ngircd's OPER + MODE +F (no flood throttling).
    sender_setup: tuple[str, ...] = ()
    # Several nodes of one cluster: ClientSpec.node picks the port; empty means irc_port.
    irc_ports: tuple[int, ...] = ()


def ws_frame(payload: bytes, opcode: int = 1) -> bytes:
    """A client frame (FIN set). The mask key is zero: legal, and the payload needs no XOR."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + b"\0\0\0\0" + payload


def split_lines(buf: bytes) -> tuple[list[bytes], bytes]:
    """The whole lines in buf (without CR/LF) and the unfinished rest."""
    cut = buf.rfind(b"\n") + 1
    if not cut:
        return [], buf
    return [line.rstrip(b"\r") for line in buf[:cut].split(b"\n")[:-1]], buf[cut:]


def numeric(line: bytes) -> bytes | None:
    """The command of a server line if it is a three-digit numeric ("366"), else None.

    Only the command counts: a LUSERS line such as "Current local users: 366 Max: 366"
    must not be taken for the end of NAMES.
    """
    parts = line.split(b" ", 3)
    if line.startswith(b"@"):  # message tags come first
        parts = parts[1:]
    if parts and parts[0].startswith(b":"):  # then the source
        parts = parts[1:]
    if parts and len(parts[0]) == 3 and parts[0].isdigit():
        return parts[0]
    return None


def count_boundary(tail: bytes, data: bytes, needle: bytes = PRIV) -> int:
    """Occurrences of needle in data plus those split across the previous chunk's tail and data."""
    n = data.count(needle)
    if tail:
        n += (tail + data[: len(needle) - 1]).count(needle)
    return n


class Client:
    __slots__ = ("count", "error", "events", "idx", "inbuf", "joined_at", "kind", "lat_sid", "lat_us", "node", "out",
                 "phase", "probe", "retries", "seen", "sender", "seq", "sock", "state", "tail", "wsbuf")

    def __init__(self, spec: ClientSpec) -> None:
        self.idx = spec.idx
        self.kind = spec.kind
        self.sender = spec.sender
        self.probe = spec.probe
        self.phase = spec.phase
        self.node = spec.node
        self.seen: dict[int, int] = {}  # a probe's highest sequence number seen per sender
        self.sock: socket.socket | None = None
        self.state = NEW
        self.events = 0
        self.out = bytearray()
        self.inbuf = b""
        self.wsbuf = b""
        self.tail = b""
        self.count = 0
        self.seq = 0
        self.joined_at = 0
        self.retries = 0  # WebSocket handshakes answered 503 and tried again, as the page does
        self.error = ""
        self.lat_sid = array("i")
        self.lat_us = array("q")


class Worker:
    def __init__(self, wid: int, specs: list[ClientSpec], target: Target, pipe) -> None:
        self.wid = wid
        self.target = target
        self.pipe = pipe
        self.clients = [Client(s) for s in specs]
        self.senders = [c for c in self.clients if c.sender]
        self.acked = {c.idx: -1 for c in self.senders}
        self.probes = [c for c in self.clients if c.probe]
        self.sel = selectors.DefaultSelector()
        self.sel.register(pipe.fileno(), READ, None)
        self.pipe_ready = False
        self.queue: list[Client] = []
        self.retry_at: list[tuple[float, Client]] = []
        self.max_pending = 1 << 30
        self.pending = 0
        self.last_rx = 0.0
        self.sending = False
        self.mode = "rate"
        self.t0 = self.t1 = 0.0
        self.rate = 0.0
        self.window = 32
        self.size = 80
        self.closed_during_load = 0
        # When a JOIN line last arrived: a server may send a member others' JOINs after the
        # last joiner has its 366, and the room is settled only once they have all arrived.
        self.last_join = 0.0

    # -- sockets ----------------------------------------------------------------

    def registration(self, c: Client) -> list[bytes]:
        nick = f"{self.target.nick_prefix}{c.idx}".encode()
        lines = [b"NICK " + nick, b"USER " + nick + b" 0 * :bench"]
        if c.sender:
            lines += [line.replace("{nick}", nick.decode()).encode() for line in self.target.sender_setup]
        return lines

    def start_connect(self, c: Client) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if c.kind == "ws":
            port = self.target.web_port
        else:
            port = self.target.irc_ports[c.node] if self.target.irc_ports else self.target.irc_port
        err = s.connect_ex((self.target.host, port))
        c.sock = s
        if err not in (0, errno.EINPROGRESS):
            self.close(c, f"connect: {os.strerror(err)}")
            return
        c.state = CONNECTING
        c.events = WRITE
        self.sel.register(s, WRITE, c)
        self.pending += 1

    def close(self, c: Client, why: str) -> None:
        if c.state == CLOSED:
            return
        if c.state in (CONNECTING, HANDSHAKE, REGISTERING):
            self.pending -= 1
        if c.state == JOINED and self.sending:
            self.closed_during_load += 1
        c.state = CLOSED
        c.error = c.error or why
        if c.sock is not None:
            with contextlib.suppress(Exception):
                self.sel.unregister(c.sock)
            c.sock.close()

    def flush(self, c: Client) -> None:
        if c.out:
            try:
                sent = c.sock.send(c.out)
            except BlockingIOError:
                sent = 0
            except OSError as err:
                self.close(c, f"send: {err}")
                return
            del c.out[:sent]
        want = READ | (WRITE if c.out else 0)
        if want != c.events and c.state != CLOSED:
            c.events = want
            self.sel.modify(c.sock, want, c)

    def queue_lines(self, c: Client, lines: list[bytes]) -> None:
        if c.kind == "ws":
            c.out += b"".join(ws_frame(line) for line in lines)
        else:
            c.out += b"".join(line + b"\r\n" for line in lines)

    def on_writable(self, c: Client) -> None:
        if c.state == CONNECTING:
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.close(c, f"connect: {os.strerror(err)}")
                return
            if c.kind == "ws":
                c.state = HANDSHAKE
                key = base64.b64encode(os.urandom(16)).decode()
                host = f"{self.target.host}:{self.target.web_port}"
                c.out += (
                    f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                    f"Sec-WebSocket-Protocol: text.ircv3.net\r\nOrigin: http://{host}\r\n\r\n"
                ).encode()
            else:
                c.state = REGISTERING
                self.queue_lines(c, self.registration(c))
        self.flush(c)

    def on_readable(self, c: Client) -> None:
        try:
            data = c.sock.recv(RECV)
        except BlockingIOError:
            return
        except OSError as err:
            self.close(c, f"recv: {err}")
            return
        if not data:
            self.close(c, "EOF" + (f" after {c.inbuf[-200:]!r}" if c.state != JOINED else ""))
            return
        if c.kind == "ws":
            if c.state == HANDSHAKE:
                c.inbuf += data
                end = c.inbuf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head, data = c.inbuf[:end], c.inbuf[end + 4:]
                c.inbuf = b""
                status = head.split(b"\r\n", 1)[0]
                if b" 503 " in status:
                    self.retry(c, head)
                    return
                if b" 101 " not in status:
                    self.close(c, f"handshake refused: {head[:100]!r}")
                    return
                c.state = REGISTERING
                self.queue_lines(c, self.registration(c))
                self.flush(c)
            data = self.ws_lines(c, data)
            if not data:
                return
        if b" JOIN " in data:
            self.last_join = time.monotonic()
        if c.state == JOINED:
            if c.probe:
                self.parse(c, data)
            else:
                n = count_boundary(c.tail, data)
                c.tail = data[-6:]
                if n:
                    c.count += n
                    self.last_rx = time.monotonic()
            if b"PING " in data:
                self.pong(c, data)
        elif c.state == REGISTERING:
            c.inbuf += data
            if b"PING " in data:
                self.pong(c, data)
            lines, c.inbuf = split_lines(c.inbuf)
            for line in lines:
                code = numeric(line)
                # The JOIN waits for 001: InspIRCd answers one sent before registration with 451.
                if code == b"001" and self.target.send_join:
                    self.queue_lines(c, [b"JOIN " + self.target.room.encode()])
                    self.flush(c)
                elif code == b"366":
                    c.state = JOINED
                    c.joined_at = time.monotonic_ns()
                    self.pending -= 1
                    c.inbuf = b""
                    return
                elif line.startswith(b"ERROR "):
                    self.close(c, line[:120].decode(errors="replace"))
                    return
            if len(c.inbuf) > 4 << 20:
                self.close(c, "no end of NAMES within 4 MiB")

    def retry(self, c: Client, head: bytes) -> None:
        """A 503 to the handshake: connect again after its Retry-After (with jitter), as the page would."""
        found = re.search(rb"(?im)^retry-after:\s*(\d+)", head)
        delay = float(found[1]) if found else 1.0
        self.close(c, "503")
        c.state, c.error, c.inbuf, c.wsbuf, c.out = NEW, "", b"", b"", bytearray()
        c.retries += 1
        self.retry_at.append((time.monotonic() + delay * (0.75 + 0.5 * (c.idx % 100) / 100), c))

    def pong(self, c: Client, data: bytes) -> None:
        for line in data.split(b"\n"):
            line = line.strip()
            if line.startswith(b"PING "):
                self.queue_lines(c, [b"PONG " + line[5:]])
        self.flush(c)

    def ws_lines(self, c: Client, data: bytes) -> bytes:
        """Take whole frames out of the stream; answer pings; return text lines joined with CRLF."""
        buf = c.wsbuf + data if c.wsbuf else data
        lines = []
        i, size = 0, len(buf)
        while size - i >= 2:
            b0, b1 = buf[i], buf[i + 1]
            op, ln, h = b0 & 0x0F, b1 & 0x7F, 2
            if ln == 126:
                if size - i < 4:
                    break
                ln, h = int.from_bytes(buf[i + 2:i + 4], "big"), 4
            elif ln == 127:
                if size - i < 10:
                    break
                ln, h = int.from_bytes(buf[i + 2:i + 10], "big"), 10
            if b1 & 0x80:
                h += 4
            if size - i < h + ln:
                break
            payload = buf[i + h:i + h + ln]
            i += h + ln
            if op in (0, 1, 2):
                lines.append(payload)
            elif op == 9:
                c.out += ws_frame(payload, 0xA)
                self.flush(c)
            elif op == 8:
                self.close(c, f"websocket closed {payload[:60]!r}")
                return b""
        c.wsbuf = buf[i:]
        return b"\r\n".join(lines) + b"\r\n" if lines else b""

    def parse(self, c: Client, data: bytes) -> None:
        buf = c.inbuf + data if c.inbuf else data
        cut = buf.rfind(b"\n") + 1
        chunk, c.inbuf = buf[:cut], buf[cut:]
        found = LAT_RE.findall(chunk)
        if not found:
            return
        now = time.monotonic_ns()
        self.last_rx = now / 1e9
        c.count += len(found)
        acked, seen, probes = self.acked, c.seen, self.probes
        sids, lats = c.lat_sid, c.lat_us
        for sid, seq, ts in found:
            s = int(sid)
            sids.append(s)
            lats.append((now - int(ts)) // 1000)
            if s in acked:
                q = int(seq)
                if q > seen.get(s, -1):
                    seen[s] = q
                    # Delivered once every probe of this process has it (with one probe: once it has).
                    acked[s] = q if len(probes) == 1 else min(p.seen.get(s, -1) for p in probes)

    # -- sending ------------------------------------------------------------------

    def pump(self, now: float) -> None:
        if now >= self.t1:
            self.sending = False
            return
        room = self.target.room.encode()
        for c in self.senders:
            if c.state != JOINED:
                continue
            if self.mode == "window":
                n = self.window - (c.seq - self.acked[c.idx] - 1)
            else:
                n = math.floor((now - self.t0) * self.rate - c.phase) + 1 - c.seq
            if n <= 0:
                continue
            n = min(n, 256)
            ts = time.monotonic_ns()
            lines = []
            for _ in range(n):
                head = b"%d %d %d " % (c.idx, c.seq, ts)
                lines.append(b"PRIVMSG " + room + b" :" + head + PAD[: max(0, self.size - len(head))])
                c.seq += 1
            self.queue_lines(c, lines)
            self.flush(c)

    # -- the loop -------------------------------------------------------------------

    def spin(self, deadline: float, stop=None) -> None:
        sel = self.sel
        while True:
            now = time.monotonic()
            if now >= deadline:
                return
            if self.retry_at and min(t for t, _ in self.retry_at) <= now:
                self.queue += [c for t, c in self.retry_at if t <= now]
                self.retry_at = [(t, c) for t, c in self.retry_at if t > now]
            while self.queue and self.pending < self.max_pending:
                self.start_connect(self.queue.pop())
            timeout = min(deadline - now, 0.05)
            if self.sending:
                timeout = min(timeout, 0.002 if self.mode == "rate" else 0.01)
            for key, mask in sel.select(timeout):
                c = key.data
                if c is None:
                    self.pipe_ready = True
                    continue
                if mask & WRITE:
                    self.on_writable(c)
                if mask & READ and c.state != CLOSED:
                    self.on_readable(c)
            if self.sending:
                self.pump(time.monotonic())
            if stop is not None and stop():
                return

    def run(self) -> None:
        while True:
            self.pipe_ready = False
            self.spin(time.monotonic() + 900, lambda: self.pipe_ready)
            if not self.pipe.poll():
                continue
            try:
                cmd, arg = self.pipe.recv()
            except EOFError:
                return
            if cmd == "quit":
                return
            self.pipe.send(getattr(self, "cmd_" + cmd)(**arg))

    def cmd_connect(self, deadline_in: float, max_pending: int) -> dict:
        self.max_pending = max_pending
        self.queue = list(reversed(self.clients))
        deadline = time.monotonic() + deadline_in

        def settled() -> bool:
            return not self.queue and not self.retry_at and all(c.state in (JOINED, CLOSED) for c in self.clients)

        self.spin(deadline, settled)
        # Then until no JOIN line has come for a second (or the deadline).
        self.spin(deadline, lambda: time.monotonic() - self.last_join > 1.0)
        return {
            "last_join": self.last_join,
            "joined_at": [c.joined_at for c in self.clients if c.state == JOINED],
            "joined": sum(c.state == JOINED for c in self.clients),
            "closed": sum(c.state == CLOSED for c in self.clients),
            "retries": sum(c.retries for c in self.clients),
            "errors": [c.error for c in self.clients if c.error][:5],
        }

    def cmd_load(self, t0: float, seconds: float, mode: str, rate: float, window: int, size: int,
                 quiet: float, drain: float) -> dict:
        self.mode, self.rate, self.window, self.size = mode, rate, window, size
        self.t0, self.t1 = t0, t0 + seconds
        for c in self.clients:
            c.count, c.seq = 0, 0
            c.lat_sid, c.lat_us = array("i"), array("q")
            c.seen = {}
        for sid in self.acked:
            self.acked[sid] = -1
        self.spin(t0)
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        self.sending = True
        self.closed_during_load = 0
        self.last_rx = time.monotonic()
        self.spin(self.t1 + 0.001)
        self.sending = False
        end = self.t1 + drain
        self.spin(end, lambda: time.monotonic() - self.last_rx > quiet)
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        probes = {}
        for c in self.clients:
            if c.probe:
                probes[c.idx] = (c.kind, c.lat_sid.tobytes(), c.lat_us.tobytes())
        return {
            "sent": {c.idx: c.seq for c in self.senders},
            "received": sum(c.count for c in self.clients),
            "last_rx": self.last_rx,
            "cpu": (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime),
            "closed": sum(c.state == CLOSED for c in self.clients),
            "closed_during_load": self.closed_during_load,
            "errors": [c.error for c in self.clients if c.error][:5],
            "probes": probes,
        }

    def cmd_hold(self, seconds: float) -> dict:
        self.spin(time.monotonic() + seconds)
        return {
            "connected": sum(c.state == JOINED for c in self.clients),
            "closed": sum(c.state == CLOSED for c in self.clients),
            "errors": [c.error for c in self.clients if c.error][:5],
        }


def worker_main(wid: int, specs: list[ClientSpec], target: Target, pipe) -> None:
    """Entry point of a worker process."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends us
    worker = Worker(wid, specs, target, pipe)
    try:
        worker.run()
    except Exception:
        with contextlib.suppress(Exception):
            pipe.send({"fatal": traceback.format_exc()})
    finally:
        for c in worker.clients:
            if c.sock is not None:
                c.sock.close()
