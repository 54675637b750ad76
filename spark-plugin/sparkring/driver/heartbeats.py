"""The driver's watch over one attempt's workers, from the run's Redis stream (the workers XADD
heartbeats, `done` and `error` events; src/events/sender.ts): a worker still training that is
silent for the timeout (stopped, swapping, wedged in native code) fails the attempt, which Spark
alone would never notice. Also keeps the codes of the errors the workers reported themselves.
Only entries signed with the run's events key count, and only ranks of the attempt's world: a
Redis shared with others may hold anything under the run's key."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable, Optional

from sparkring.driver.driver_events import connect, signed_event
from sparkring.driver.spec import RedisEndpoint
from sparkring.run_keys import run_key

POLL_MS = 500


class HeartbeatWatch:
    """Follows the stream from now on in a thread; calls `on_silent(rank, silent_s)` once, for the
    first worker that sent a heartbeat and then nothing for `timeout_ms` (less the `busyMs` it
    announced) before its `done`. Only attempt `attempt`'s events count: a failed attempt's worker
    can still be sending as the next attempt starts, and its rank's new worker may take longer than
    the timeout to send its first."""

    def __init__(
        self,
        endpoint: RedisEndpoint,
        timeout_ms: float,
        on_silent: Callable[[int, float], None],
        attempt: int,
        secret: str,
        world_size: int,
    ) -> None:
        self._endpoint = endpoint
        self._attempt = attempt
        self._key = run_key(secret, "events")
        self._world_size = world_size
        self._timeout_s = timeout_ms / 1000
        self._on_silent = on_silent
        self._due: dict[int, float] = {}  # rank -> when it was last heard from, plus its busyMs
        self._done: set[int] = set()
        self.codes: list[str] = []  # the codes of the workers' own error events, as they came
        self.silent: Optional[tuple[int, float]] = None
        self._stop = threading.Event()
        self._redis: Any = connect(endpoint, timeout_s=5)
        # Where the stream ends now, read in the thread: a Redis that is down as the attempt starts
        # delays the watch, never the attempt.
        self._last_id: Optional[str] = None
        self._thread = threading.Thread(target=self._follow, name="sparkring-heartbeats", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    if self._last_id is None:
                        newest = self._redis.xrevrange(self._endpoint.stream, count=1)
                        self._last_id = newest[0][0].decode() if newest else "0-0"
                    replies = self._redis.xread({self._endpoint.stream: self._last_id}, count=1000, block=POLL_MS)
                except Exception as e:  # Redis restarting: the watch resumes when it is back
                    print(f"sparkring: heartbeat watch: {e}", file=sys.stderr)
                    self._stop.wait(1)
                    continue
                if self._stop.is_set():
                    break
                for _stream, entries in replies or []:
                    for entry_id, fields in entries:
                        self._last_id = entry_id.decode()
                        self._heard(signed_event(self._key, fields))
                self._check(time.time())
        finally:
            self._redis.close()

    def _heard(self, event: Optional[dict[str, Any]]) -> None:
        try:
            rank = int((event or {})["rank"])
        except (ValueError, KeyError, TypeError):
            return  # unsigned, or the driver's own (which carry no rank)
        assert event is not None
        if not 0 <= rank < self._world_size:
            return
        if event.get("attempt", self._attempt) != self._attempt:
            return
        kind = event.get("type")
        if kind == "heartbeat" and rank not in self._done:
            self._due[rank] = time.time() + float(event.get("busyMs") or 0) / 1000
        elif kind == "done":
            self._done.add(rank)
            self._due.pop(rank, None)
        elif kind == "error" and isinstance(event.get("code"), str):
            self.codes.append(event["code"])

    def _check(self, now: float) -> None:
        if self.silent is not None:
            return
        for rank, at in self._due.items():
            if now - at > self._timeout_s:
                self.silent = (rank, now - at)
                self._on_silent(rank, now - at)
                return

    def stop(self) -> None:
        """Stops the watch at once: its thread, in a blocking read of up to POLL_MS, ends by itself
        (and closes its connection) without holding up the attempt's outcome."""
        self._stop.set()
