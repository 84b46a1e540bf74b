"""`lobby serve` as a user runs it: a real process, its printed address, signals."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.ircclient import connect


def start_serve(*extra: str) -> tuple[subprocess.Popen[str], dict[str, tuple[str, int]]]:
    """Start `lobby serve` on free ports; return the process and the addresses it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--irc-port", "0", "--web-port", "0", "--db", ":memory:",
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    found: dict[str, tuple[str, int]] = {}
    deadline = time.monotonic() + 30
    assert proc.stdout is not None
    while "chat" not in found and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if m := re.match(r"chat server on (\S+):(\d+)$", line.strip()):
            found["chat"] = (m[1], int(m[2]))
        elif m := re.match(r"web on http://(\S+):(\d+)$", line.strip()):
            found["web"] = (m[1], int(m[2]))
    assert "chat" in found, proc.stderr.read() if proc.poll() is not None else "no address printed"
    return proc, found


@pytest.fixture
def serve_process() -> Iterator[tuple[subprocess.Popen[str], dict[str, tuple[str, int]]]]:
    proc, found = start_serve()
    yield proc, found
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_tells_every_client_and_exits_zero_within_two_seconds(sig: signal.Signals) -> None:
    proc, found = start_serve()
    try:
        alice = connect(found["chat"], "alice")
        bob = connect(found["chat"], "bob")
        proc.send_signal(sig)
        assert proc.wait(10) == 0
        for c in (alice, bob):
            lines = c.expect_closed()
            assert any(line.startswith("ERROR ") and "shutting down" in line for line in lines), lines
            c.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def test_port_in_use_is_a_clear_error(serve_process) -> None:
    _, found = serve_process
    port = found["chat"][1]
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", "serve", "--irc-port", str(port), "--web-port", "0", "--db", ":memory:"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_help_lists_the_commands() -> None:
    result = subprocess.run([sys.executable, "-m", "backend.cli", "--help"], capture_output=True, text=True,
                            timeout=30, env={**os.environ, "COLUMNS": "100"})
    assert result.returncode == 0
    assert "serve" in result.stdout and "connect" in result.stdout
