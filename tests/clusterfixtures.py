"""Fixtures for tests of several nodes: a private redis-server on a free loopback port.

Test modules load these with `pytest_plugins = ["tests.clusterfixtures"]`. Without
redis-server the tests that use it are skipped, except on CI (CI=true), where that
is a failure. The server keeps nothing on disk and is killed after each test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port() -> int:
    """A loopback port nobody listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisProcess:
    """A private redis-server on a free loopback port, without persistence."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it (again, on the same port) and wait until it answers PING."""
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=self.port)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    if time.monotonic() > deadline or self.proc.poll() is not None:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None


def redis_missing() -> None:
    """Skip when redis-server isn't installed, except on CI, where that is a failure."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{REDIS_SERVER} is missing, and cluster tests must run on CI (apt-get install redis-server)")
    pytest.skip("redis-server is not installed")


@pytest.fixture
def redis_server() -> Iterator[RedisProcess]:
    """A redis-server the test may kill and start again; killed at teardown."""
    if not os.path.exists(REDIS_SERVER):
        redis_missing()
    server = RedisProcess()
    try:
        server.start()
        yield server
    finally:
        server.kill()


@pytest.fixture
def redis_url(redis_server: RedisProcess) -> str:
    return redis_server.url
