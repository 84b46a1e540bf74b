"""Line framing: a byte stream in, IRC lines out (CRLF or bare LF), bounded in memory.

Pure: the caller owns the socket and feeds what it received.
"""

from __future__ import annotations

from .message import MAX_FRAME_BYTES, LineTooLong


class LineBuffer:
    """Frames a byte stream into lines, accepting CRLF or bare LF.

    feed() returns complete lines without their ending. A line that grows past
    max_bytes without an ending is cut off: it comes back once as a LineTooLong
    marker and its remaining bytes are skipped up to the next newline, so a peer
    that never sends a newline cannot make us hold unbounded memory.
    """

    def __init__(self, max_bytes: int = MAX_FRAME_BYTES) -> None:
        self.max_bytes = max_bytes
        self._buf = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> list[bytes | LineTooLong]:
        """Add received bytes; return the lines (or overflow markers) they complete."""
        self._buf += data
        out: list[bytes | LineTooLong] = []
        while True:
            end = self._buf.find(b"\n")
            if end < 0:
                break
            line = bytes(self._buf[:end])
            del self._buf[: end + 1]
            if self._skipping:
                self._skipping = False
                continue
            if len(line) > self.max_bytes:
                out.append(LineTooLong("line too long"))
                continue
            out.append(line[:-1] if line.endswith(b"\r") else line)
        if len(self._buf) > self.max_bytes:
            if not self._skipping:
                out.append(LineTooLong("line too long"))
            self._skipping = True
            self._buf.clear()
        return out
