"""The threaded TCP server: listeners, connections (reader thread, outbox, lazy writer), the flusher,
TLS, flood control and the plain-text users' codec. Everything here feeds the core and sends what it says."""
