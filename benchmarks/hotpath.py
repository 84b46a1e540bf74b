"""What one room message costs the server's Python, without sockets: the core, the Outbox, the history.

    python benchmarks/hotpath.py [--members 100] [--senders 10] [--messages 31000] [--no-history] [--profile]

The fan-out scenario of run.py over loopback varies by ±10% between runs on a shared VM; this
runs the same path in one thread, so a change to it shows in a few seconds and can be profiled
with cProfile. `--members` clients register on a Chat (auto-joined to #lobby), each on a link
whose bytes go to a real Outbox, as a net.Connection's do; `--senders` of them say lines as a
client would send them, a batch at a time (a recv's worth: 31 lines, the fan-out scenario's
window), and after each batch every Outbox handed to the flusher is flushed into a counter (no
socket). The history is a real SQLite file in a temporary folder, its writer thread running
beside, as in `lobby serve`. What it does not measure: recv/send syscalls, the GIL's handoffs
between the reader threads and the flusher, and JOINs or private messages.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Collection

from backend.core.chat import Chat
from backend.core.client import Client
from backend.core.config import ChatConfig
from backend.core.dispatch import dispatch
from backend.irc import parse_line
from backend.net.outbox import Outbox
from backend.store.sqlite import History

BATCH = 31  # lines a sender's reader finds per recv in the fan-out scenario
PAD = "x" * 60


class Link:
    """A connection without a socket: what the core hands it goes to a real Outbox."""

    def __init__(self, ready: set[Link]) -> None:
        self._ready = ready
        self.outbox = Outbox(1 << 30)
        self.fan_out = self.outbox.fan_out
        self.deliver_bytes = self.outbox.fan_out_to(lambda: ready.add(self), self._full)
        self.sent = 0

    def _full(self) -> None:
        raise RuntimeError("an Outbox of 1 GiB filled up: flush more often")

    def send_bytes(self, data: bytes) -> None:
        self.sent += len(data)

    def kill(self, reason: str, flush: bool = True) -> None:
        pass

    def rehost(self, host: str) -> bool:
        return True

    def local_host(self) -> str | None:
        return "127.0.0.1"

    def send_now(self, data: bytes) -> int:
        self.sent += len(data)
        return len(data)

    def flush(self) -> bool:
        return self.outbox.flush(self.send_now)


class Bench:
    """A chat with members on Links, and the loop that makes senders talk."""

    def __init__(self, members: int, senders: int, history: History | None) -> None:
        self.ready: set[Link] = set()
        self.handed: dict[int, Collection[Link]] = {}
        self.chat = Chat(ChatConfig(motd="", auto_join=("#lobby",)), history=history)
        self.chat.fan_out_ready = self._hand_over
        self.clients: list[Client] = []
        for i in range(members):
            client = self.chat.client(Link(self.ready), "127.0.0.1")
            for line in (f"NICK u{i}", f"USER u{i} 0 * :u{i}"):
                dispatch(self.chat, client, parse_line(line))
            self.clients.append(client)
        self.flush_all()
        self.senders = self.clients[:senders]
        self.seq = 0

    def _hand_over(self, links: Collection[Link]) -> None:
        # As net.Flusher.ready: the audience's tuple is kept by identity, made a set per pass.
        self.handed[id(links)] = links

    def flush_all(self) -> None:
        """The flusher's pass, until nothing is left (the JOINs of a join go out in batches)."""
        while self.chat.joins.busy or self.ready or self.handed:
            if self.chat.joins.busy:
                self.chat.joins.drain()
            batch = self.ready.union(*self.handed.values())
            self.ready.clear()
            self.handed.clear()
            for link in batch:
                if link.flush():
                    self.ready.add(link)

    def run(self, messages: int) -> int:
        """Each sender says BATCH lines, then a flusher pass, round after round; messages said."""
        said = 0
        while said < messages:
            for sender in self.senders:
                for _ in range(BATCH):
                    line = f"PRIVMSG #lobby :{sender.nick} {self.seq} {time.monotonic_ns()} {PAD}"
                    dispatch(self.chat, sender, parse_line(line))
                    self.seq += 1
                    said += 1
                self.flush_all()
        return said


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--messages", type=int, default=31_000)
    parser.add_argument("--no-history", action="store_true", help="no history store (what storing costs)")
    parser.add_argument("--profile", action="store_true", help="cProfile a second run of the main thread")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        history = None
        if not args.no_history:
            history = History(os.path.join(folder, "history.db"), recent_lines=50)
            history.open()
        try:
            bench = Bench(args.members, args.senders, history)
            bench.run(args.messages // 10)  # warm up: caches, the room's audience, SQLite's pages
            started = time.perf_counter()
            said = bench.run(args.messages)
            took = time.perf_counter() - started
            recipients = args.members - 1
            print(f"{took / said * 1e6:.1f} µs a message: {said / took:,.0f} messages/s, "
                  f"{said * recipients / took:,.0f} deliveries/s ({args.members} members, "
                  f"{'no history' if history is None else 'history on SQLite'})")
            if args.profile:
                profile = cProfile.Profile()
                profile.enable()
                bench.run(args.messages)
                profile.disable()
                pstats.Stats(profile).sort_stats("tottime").print_stats(25)
        finally:
            if history is not None:
                history.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
