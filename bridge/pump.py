"""One thread relays server -> browser for every WebSocket of an app.

A thread per browser meant that each line the chat server sent to N browsers woke
N threads, and each had to win the GIL to pass one line on: in a storm of
browsers joining a big room, thousands of runnable threads, and a user of the
IRC port waiting seconds for its turn. The Pump watches every relay's socket to
the chat server with one selector and passes on what each is owed, all of it in
one write per wake-up.

It never blocks on a browser: writes are non-blocking. While a browser has
output still waiting, the Pump stops reading that browser's chat-server socket
and watches the browser's socket for room instead, so a slow browser's backlog
stays in the chat server's send queue (and its SendQ limit), as it did with a
thread blocked in send.

What the Pump needs of a channel (a Relay) is the Channel protocol; every call
into a channel happens on the Pump's thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import threading
from typing import Protocol

from simple_websocket import ConnectionClosed

log = logging.getLogger("lobby.bridge")


class Channel(Protocol):
    """What the Pump calls on each relay it serves (on the Pump's thread only)."""

    upstream: socket.socket

    def pump_readable(self) -> bool:
        """The chat server's socket is readable: pass on what came; False once it has ended."""
        ...

    def pump_flush(self) -> bool:
        """The browser's socket has room: write what waits; True once nothing is left."""
        ...

    def pump_backlog(self) -> bool:
        """Whether output waits for the browser's socket to have room."""
        ...

    def pump_browser_fd(self) -> int | None:
        """The browser socket's descriptor (to watch for room), if there is one."""
        ...

    def pump_ended(self) -> None:
        """The Pump has let go of this channel's sockets: it may close them now."""
        ...


class Pump:
    """A thread and a selector that serve many channels; started on first use, stop() ends it."""

    def __init__(self, name: str = "relay-pump") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._requests: list[tuple[str, Channel]] = []
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._channels: dict[Channel, int | None] = {}  # channel -> our dup of its browser fd while writing
        self._stopping = False
        self.thread: threading.Thread | None = None

    def attach(self, channel: Channel) -> bool:
        """Start serving a channel; False if the Pump has stopped (the caller must end it itself)."""
        return self._request("attach", channel)

    @property
    def stopped(self) -> bool:
        """Whether stop() was called: the Pump serves no one any more."""
        with self._lock:
            return self._stopping

    def want_write(self, channel: Channel) -> None:
        """Another thread queued output for the channel's browser: watch for room."""
        self._request("write", channel)

    def _request(self, what: str, channel: Channel) -> bool:
        with self._lock:
            if self._stopping:
                return False
            self._requests.append((what, channel))
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
                self.thread.start()
        with contextlib.suppress(BlockingIOError):
            self._wake_w.send(b"x")
        return True

    def stop(self) -> threading.Thread | None:
        """End every channel still served, then the thread; return it for the caller to join."""
        with self._lock:
            self._stopping = True
            thread = self.thread
        if thread is None:
            self._close()
            return None
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        return thread

    # -- the Pump's thread ----------------------------------------------------------

    def _loop(self) -> None:
        try:
            while True:
                for key, _ in self._selector.select():
                    if key.data is None:
                        if not self._take_requests():
                            return
                        continue
                    channel, writing = key.data
                    try:
                        if writing:
                            if channel.pump_flush():
                                self._read_mode(channel)
                        elif not channel.pump_readable():
                            self._end(channel)
                        elif channel.pump_backlog():
                            self._write_mode(channel)
                    except Exception as err:  # one relay's failure must not stop the others
                        if not isinstance(err, OSError | ConnectionClosed):
                            log.debug("relay pump ended", exc_info=True)
                        self._end(channel)
        finally:
            for channel in list(self._channels):
                self._end(channel)
            self._close()

    def _take_requests(self) -> bool:
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(4096):
                pass
        with self._lock:
            requests, self._requests = self._requests, []
            stopping = self._stopping
        for what, channel in requests:
            try:
                if what == "attach" and channel not in self._channels:
                    self._channels[channel] = None
                    self._selector.register(channel.upstream, selectors.EVENT_READ, (channel, False))
                elif what == "write" and channel in self._channels and self._channels[channel] is None:
                    self._write_mode(channel)
            except (OSError, ValueError, KeyError):
                self._end(channel)  # its sockets are already gone
        return not stopping

    def _write_mode(self, channel: Channel) -> None:
        fd = channel.pump_browser_fd()
        if fd is None:
            return
        # Our own duplicate: the browser's socket may be closed under us by its reader
        # thread, and a descriptor number reused while still in the selector would clash.
        dup = os.dup(fd)
        self._selector.unregister(channel.upstream)
        self._channels[channel] = dup
        self._selector.register(dup, selectors.EVENT_WRITE, (channel, True))

    def _read_mode(self, channel: Channel) -> None:
        dup = self._channels.get(channel)
        if dup is None:
            return
        self._selector.unregister(dup)
        os.close(dup)
        self._channels[channel] = None
        self._selector.register(channel.upstream, selectors.EVENT_READ, (channel, False))

    def _end(self, channel: Channel) -> None:
        if channel not in self._channels:
            return
        dup = self._channels.pop(channel)
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._selector.unregister(dup if dup is not None else channel.upstream)
        if dup is not None:
            os.close(dup)
        try:
            channel.pump_ended()
        except Exception:
            log.debug("ending a relay failed", exc_info=True)

    def _close(self) -> None:
        with contextlib.suppress(Exception):
            self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
