"""Fixtures the test files share."""

from __future__ import annotations

import socket
import subprocess
import time
from typing import Iterator

import pytest


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real redis-server of its own on loopback, for the test's length (make redis installs it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        server.kill()
        server.wait()
