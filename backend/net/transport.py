"""TLS for a connection served by two threads: one reads, one writes.

An ssl.SSLSocket must not be read and written from two threads at once (OpenSSL
forbids concurrent use of one SSL object), so we drive an ssl.SSLObject through
memory buffers ourselves: the TLS state is touched under a lock, and ciphertext
is moved to and from the socket outside it, in order.
"""

from __future__ import annotations

import socket
import ssl
import threading

RECV_BYTES = 16384


class TlsTransport:
    """recv()/sendall() of plaintext over a socket, with TLS done in memory."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        self.sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._state = threading.Lock()  # guards the SSLObject and its buffers
        self._wire = threading.Lock()  # keeps ciphertext in order on the socket

    def handshake(self, timeout: float) -> None:
        """Complete the TLS handshake (on the reader thread) or raise OSError/ssl.SSLError."""
        self.sock.settimeout(timeout)
        try:
            while True:
                try:
                    with self._state:
                        self._tls.do_handshake()
                    break
                except ssl.SSLWantReadError:
                    self._flush()
                    self._feed()
            self._flush()
        finally:
            self.sock.settimeout(None)

    def recv(self, size: int) -> bytes:
        """Up to size bytes of plaintext; b"" once the peer has closed."""
        while True:
            try:
                with self._state:
                    return self._tls.read(size)
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                return b""
            self._flush()  # TLS 1.3 may have something to say (tickets, key updates)
            if not self._feed():
                return b""

    def pending(self) -> bool:
        """Whether received ciphertext is waiting to be decrypted: recv() has input without the socket."""
        with self._state:
            return self._tls.pending() > 0 or self._incoming.pending > 0

    def sendall(self, data: bytes) -> None:
        """Encrypt and send all of data."""
        view = memoryview(data)
        with self._state:
            while view:
                written = self._tls.write(view)
                view = view[written:]
        self._flush()

    def _feed(self) -> bool:
        data = self.sock.recv(RECV_BYTES)
        if not data:
            return False
        with self._state:
            self._incoming.write(data)
        return True

    def _flush(self) -> None:
        with self._wire:
            with self._state:
                data = self._outgoing.read()
            if data:
                self.sock.sendall(data)


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server-side TLS context from PEM files (TLS 1.2 or newer)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context
