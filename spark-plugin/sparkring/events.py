"""Best-effort JSON-lines events to the client's event server (progress, stages, timings)."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from typing import Any, Optional

from sparkring.spec import EventsEndpoint


class EventSender:
    def __init__(self, endpoint: Optional[EventsEndpoint], source: str) -> None:
        self._sock: Optional[socket.socket] = None
        self._lock = threading.Lock()
        self._source = source
        if endpoint is None:
            return
        try:
            self._sock = socket.create_connection((endpoint.host, endpoint.port), timeout=10)
            self._sock.sendall((json.dumps({"token": endpoint.token}) + "\n").encode())
        except OSError as e:
            print(f"sparkring: events to {endpoint.host}:{endpoint.port} unavailable ({e}); progress will not be shown", file=sys.stderr)
            self._sock = None

    def send(self, kind: str, **fields: Any) -> None:
        if self._sock is None:
            return
        line = json.dumps({"type": kind, "source": self._source, "at": int(time.time() * 1000), **fields}) + "\n"
        with self._lock:
            try:
                self._sock.sendall(line.encode())
            except OSError:
                self._sock = None

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None
