"""The ranks' rendezvous over a real redis-server: every rank gets every note, a dead stage
attempt's notes are never taken, and a rank that never comes is named."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from sparkring.driver.driver_events import append_signed
from sparkring.driver.spec import RedisEndpoint
from sparkring.executor.rendezvous import Rendezvous, stream_tail
from sparkring.failures import SparkringWorkerError
from sparkring.run_keys import run_key

SECRET = "run-secret"


@pytest.fixture
def endpoint(redis_url: str) -> RedisEndpoint:
    return RedisEndpoint(url=redis_url, stream="sparkring:run:r1:events")


def gather_all(endpoint: RedisEndpoint, tids: list[int], timeout_s: float = 10) -> dict[int, Any]:
    after = stream_tail(endpoint)
    assert after is not None
    out: dict[int, Any] = {}

    def rank(r: int) -> None:
        rv = Rendezvous(endpoint, SECRET, after, r, len(tids), 0, tids[r], [f"h{i}" for i in range(len(tids))], timeout_s)
        try:
            out[r] = rv.gather(f"note of rank {r}")
        except SparkringWorkerError as e:
            out[r] = e

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(len(tids))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def test_every_rank_gets_every_note_in_rank_order(endpoint: RedisEndpoint) -> None:
    out = gather_all(endpoint, [12, 10, 11])
    assert all(out[r] == ["note of rank 0", "note of rank 1", "note of rank 2"] for r in range(3))


def test_the_notes_of_a_dead_stage_attempt_are_never_taken(endpoint: RedisEndpoint) -> None:
    import redis

    key = run_key(SECRET, "events")
    client = redis.Redis.from_url(endpoint.url)
    after = stream_tail(endpoint)
    # A stage attempt that failed after posting (its tasks have the lower ids, and never confirm).
    for r in range(2):
        append_signed(client, endpoint.stream, key, {"type": "rendezvous", "rank": r, "attempt": 0, "tid": r + 1, "note": f"dead {r}"})
    out: dict[int, Any] = {}

    def rank(r: int) -> None:
        time.sleep(0.3 * r)  # rank 1 comes late: rank 0 holds the dead note of rank 1 meanwhile
        rv = Rendezvous(endpoint, SECRET, str(after), r, 2, 0, 10 + r, ["h0", "h1"], 10)
        out[r] = rv.gather(f"live {r}")

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == {0: ["live 0", "live 1"], 1: ["live 0", "live 1"]}


def test_a_rank_that_never_comes_is_named_with_its_host(endpoint: RedisEndpoint) -> None:
    after = stream_tail(endpoint)
    rv = Rendezvous(endpoint, SECRET, str(after), 0, 2, 0, 5, ["h0", "h1"], 1)
    with pytest.raises(SparkringWorkerError, match=r"rank 1 on h1 did not reach the rendezvous .* within 1 s"):
        rv.gather("alone")


def test_one_rank_needs_no_redis() -> None:
    unreachable = RedisEndpoint(url="redis://127.0.0.1:1", stream="s")
    assert Rendezvous(unreachable, SECRET, "0-0", 0, 1, 0, 1, ["h0"], 1).gather("me") == ["me"]
    assert stream_tail(unreachable) is None and stream_tail(None) is None
