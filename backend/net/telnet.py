"""Telnet's in-band commands (RFC 854/855), taken out of what a person at telnet types."""

from __future__ import annotations

IAC, SB, SE = 255, 250, 240
WILL, WONT, DO, DONT = 251, 252, 253, 254


class IacFilter:
    """Removes telnet commands (RFC 854: IAC sequences, RFC 855: subnegotiation) from a byte stream.

    Stateful, so a sequence split across two reads is still removed. A telnet user
    never negotiates anything with us; the bytes are simply not text.
    """

    def __init__(self) -> None:
        self._state = "data"

    def feed(self, data: bytes) -> bytes:
        """The bytes of data that are text, with every telnet command taken out."""
        if self._state == "data" and IAC not in data:
            return data
        out = bytearray()
        for byte in data:
            state = self._state
            if state == "data":
                if byte == IAC:
                    self._state = "iac"
                else:
                    out.append(byte)
            elif state == "iac":
                # IAC IAC is a literal 255, which is never part of UTF-8 text: drop it too.
                self._state = {SB: "sb", WILL: "option", WONT: "option", DO: "option", DONT: "option"}.get(
                    byte, "data"
                )
            elif state == "option":
                self._state = "data"
            elif state == "sb":
                if byte == IAC:
                    self._state = "sb-iac"
            elif state == "sb-iac":
                self._state = "data" if byte == SE else "sb"
        return bytes(out)


def strip_telnet(data: bytes) -> bytes:
    """data without telnet commands (one-shot, for looking at a connection's first bytes)."""
    return IacFilter().feed(data)
