"""Outgoing messages, formatted once per kind of recipient and shared by all of them.

An Envelope is one event (a PRIVMSG, a JOIN, ...) stamped with its time and msgid.
Recipients differ only in which IRCv3 tags they asked for, so the bytes are built
once per "render key" and cached: a broadcast to 200 users formats at most a
handful of times, not 200.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..irc import Message

# A render key names one way of turning an Envelope into bytes. IRC clients use
# the tags they negotiated; other presentations (plain-text users) add their own.
RenderKey = str
# How Chat.publish reaches a member in one step: its render key, its link's fan_out (a list the
# bytes are appended to, for the flusher, nothing scheduled), and that link, handed to the
# flusher (core/client.py).
Route = tuple[RenderKey, list[bytes], object]
TAGS_ALL: RenderKey = "tags"
TAGS_TIME: RenderKey = "time"
TAGS_NONE: RenderKey = "untagged"
# message-tags and draft/multiline: a multiline message comes as one batch.
TAGS_MULTILINE: RenderKey = "tags+multiline"
# One line of a multiline message: its text, and whether it continues the line before it
# (draft/multiline-concat) instead of starting a new one.
Part = tuple[str, bool]

_msgid_prefix = os.urandom(4).hex()
_msgid_counter = itertools.count(1)


def new_msgid() -> str:
    """A msgid unique across restarts: a random per-process prefix and a counter."""
    return f"{_msgid_prefix}{next(_msgid_counter):x}"


def epoch_ms(ts: float) -> int:
    """Seconds since the epoch as whole milliseconds, the precision server-time shows."""
    return round(ts * 1000)


def format_time(ts: float) -> str:
    """Seconds since the epoch as IRCv3 server-time (UTC, millisecond precision)."""
    whole, millis = divmod(epoch_ms(ts), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def render_key_for(caps: frozenset[str] | set[str]) -> RenderKey:
    """Which tags a client with these capabilities receives."""
    if "message-tags" in caps:
        return TAGS_MULTILINE if "draft/multiline" in caps and "batch" in caps else TAGS_ALL
    if "server-time" in caps:
        return TAGS_TIME
    return TAGS_NONE


@dataclass(eq=False, slots=True)
class Envelope:
    """One outgoing event and its per-render-key byte cache."""

    message: Message
    time: float = field(default_factory=time.time)
    msgid: str = field(default_factory=new_msgid)
    extra_tags: dict[str, str] = field(default_factory=dict)
    # Set for a draft/multiline message: its lines (message then holds them joined, for storage).
    lines: tuple[Part, ...] | None = None
    _cache: dict[RenderKey, bytes] = field(default_factory=dict)

    def render(self, key: RenderKey, renderer: Callable[[Envelope], bytes] | None = None) -> bytes:
        """The bytes for this render key, formatting them on first use only.

        No lock: two threads rendering one key at once make the same bytes, and whichever
        lands in the cache last is as good as the first (a lock made per message cost more).
        """
        cached = self._cache.get(key)
        if cached is None:
            cached = self._cache[key] = renderer(self) if renderer else self._render_tags(key)
        return cached

    def parts(self) -> list[Envelope]:
        """A multiline message as one envelope per line (blank lines left out), for clients that read
        lines one by one and for storage; each has its own msgid. Any other envelope: itself."""
        if self.lines is None:
            return [self]
        m = self.message
        out: list[Envelope] = []
        for index, (text, _) in enumerate(self.lines):
            if text:
                msgid = self.msgid if not out else f"{self.msgid}-{index}"
                out.append(Envelope(Message(m.command, (m.params[0], text), m.source, m.tags), self.time, msgid,
                                    self.extra_tags))
        return out

    def _render_tags(self, key: RenderKey) -> bytes:
        if self.lines is not None:
            if key == TAGS_MULTILINE:
                return self._render_batch()
            return b"".join(part.render(key) for part in self.parts())
        if key == TAGS_MULTILINE:
            key = TAGS_ALL
        m = self.message
        if key != TAGS_ALL and m.command == "TAGMSG":
            return b""  # a message of tags alone, for clients that negotiated message-tags
        if key == TAGS_NONE:
            # Client-only tags (+draft/reply, ...) reach only clients that negotiated message-tags.
            return (Message(m.command, m.params, m.source) if m.tags else m).to_bytes()
        tags = {"time": format_time(self.time)}
        if key == TAGS_ALL:
            tags["msgid"] = self.msgid
            tags.update(m.tags)
            tags.update(self.extra_tags)
        return Message(m.command, m.params, m.source, tags).to_bytes()

    def _render_batch(self) -> bytes:
        """BATCH +ref draft/multiline <target> (carrying time, msgid and the client tags), the lines, BATCH -ref."""
        m = self.message
        ref = f"ml{self.msgid}"
        tags = {"time": format_time(self.time), "msgid": self.msgid, **m.tags, **self.extra_tags}
        out = [Message("BATCH", (f"+{ref}", "draft/multiline", m.params[0]), m.source, tags).to_bytes()]
        for text, concat in self.lines or ():
            line_tags = {"batch": ref, "draft/multiline-concat": ""} if concat else {"batch": ref}
            out.append(Message(m.command, (m.params[0], text), m.source, line_tags).to_bytes())
        out.append(Message("BATCH", (f"-{ref}",), m.source).to_bytes())
        return b"".join(out)
