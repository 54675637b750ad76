"""The driver's heartbeat watch against a real redis-server: only its own attempt's workers count,
and only entries signed with the run's events key, of ranks in its world."""

from __future__ import annotations

import json
import time
from typing import Callable

import pytest
import redis

from sparkring.driver.heartbeats import HeartbeatWatch
from sparkring.driver.spec import RedisEndpoint
from sparkring.run_keys import mac, run_key

STREAM = "run-events"
SECRET = "the-run-secret"


@pytest.fixture
def endpoint(redis_url: str) -> RedisEndpoint:
    return RedisEndpoint(url=redis_url, stream=STREAM)


def send(endpoint: RedisEndpoint, secret: str | None = SECRET, **event: object) -> None:
    """An entry as a worker signs it (src/events/sender.ts); secret=None: unsigned, as a neighbour adds one."""
    text = json.dumps({"source": "test", "at": 0, **event})
    fields = {"e": text} if secret is None else {"e": text, "m": mac(run_key(secret, "events"), text)}
    client = redis.Redis.from_url(endpoint.url)
    client.xadd(endpoint.stream, fields)  # type: ignore[arg-type]
    client.close()


def wait_until(cond: Callable[[], bool], seconds: float) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_a_failed_attempts_heartbeats_do_not_stand_for_the_next_attempts_workers(endpoint: RedisEndpoint) -> None:
    silent: list[tuple[int, float]] = []
    watch = HeartbeatWatch(endpoint, 1000, lambda rank, s: silent.append((rank, s)), attempt=1, secret=SECRET, world_size=2)
    try:
        time.sleep(0.7)  # the watch has read where the stream ends
        # The previous attempt's worker, not yet torn down: its heartbeat and error are not this attempt's.
        send(endpoint, type="heartbeat", rank=0, attempt=0)
        send(endpoint, type="error", rank=0, attempt=0, message="x", code="SR_OLD")
        assert not wait_until(lambda: bool(silent), 2.5)
        assert watch.codes == []
        # This attempt's rank 1 is heard once, then stops.
        send(endpoint, type="heartbeat", rank=1, attempt=1)
        send(endpoint, type="error", rank=1, attempt=1, message="y", code="SR_NEW")
        assert wait_until(lambda: bool(silent), 5)
        assert silent[0][0] == 1 and silent[0][1] >= 1
        assert watch.codes == ["SR_NEW"]
    finally:
        watch.stop()


def test_forged_and_out_of_world_entries_change_nothing(endpoint: RedisEndpoint) -> None:
    silent: list[tuple[int, float]] = []
    watch = HeartbeatWatch(endpoint, 1000, lambda rank, s: silent.append((rank, s)), attempt=0, secret=SECRET, world_size=2)
    try:
        time.sleep(0.7)
        # A neighbour on a shared Redis: unsigned, signed with another run's secret, or a rank this
        # run has not got (signed: a worker's key cannot vouch for a rank beyond the world).
        send(endpoint, secret=None, type="heartbeat", rank=0, attempt=0)
        send(endpoint, secret=None, type="error", rank=0, attempt=0, message="x", code="SR_ENTRY_LOAD")
        send(endpoint, secret="another-run", type="heartbeat", rank=1, attempt=0)
        send(endpoint, type="heartbeat", rank=99, attempt=0)
        client = redis.Redis.from_url(endpoint.url)
        for i in range(500):
            client.xadd(endpoint.stream, {"e": f"junk {i}"})
        client.close()
        assert not wait_until(lambda: bool(silent), 2.5)
        assert watch.codes == []
    finally:
        watch.stop()
