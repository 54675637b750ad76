"""elastic.py: the size of the stage after a failed attempt (--min-workers), over a fake driver
whose free slots follow a script; and the hint a run that cannot be placed again gets."""

from __future__ import annotations

from typing import Optional

from sparkring.driver.elastic import Resize, give_up_lost_host, shrunk, unplaceable_hint
from sparkring.driver.slots import SlotNeed

LOST = {"code": "SR_PEER_LOST", "message": "ring peer rank 3 ... was lost", "rank": 1, "lostPeer": {"rank": 3, "host": "10.0.0.12"}}


class FakeDriver:
    """free_slots returns the scripted counts in turn (the last one from then on)."""

    def __init__(self, free: list[Optional[int]], gone: list[str]) -> None:
        self.free = free
        self.gone = gone
        self.asked_hosts: list[str] = []

    def free_slots(self, need: SlotNeed) -> Optional[int]:
        return self.free.pop(0) if len(self.free) > 1 else self.free[0]

    def give_up_host(self, host: str) -> list[str]:
        self.asked_hosts.append(host)
        return self.gone


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def resize(driver: FakeDriver, error: Optional[dict[str, object]] = LOST, min_workers: int = 2) -> Optional[Resize]:
    clock = Clock()
    given_up = give_up_lost_host(driver, error)  # type: ignore[arg-type]
    return shrunk(driver, SlotNeed(4, 1, 0), min_workers, error, given_up, wait_s=10, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]


def test_a_lost_host_not_given_back_shrinks_to_the_free_slots_and_names_it() -> None:
    driver = FakeDriver([0, 1, 2], gone=["2", "3"])
    r = resize(driver)
    assert r == Resize(4, 2, "10.0.0.12", 3, ("2", "3"))
    assert driver.asked_hosts == ["10.0.0.12"]
    assert r is not None and r.line(2).startswith("workers 4 -> 2: host 10.0.0.12 (rank 3) was lost")


def test_slots_given_back_within_the_wait_keep_the_size() -> None:
    assert resize(FakeDriver([2, 3, 4], gone=[])) is None


def test_fewer_free_slots_than_min_workers_do_not_shrink() -> None:
    assert resize(FakeDriver([1], gone=["1", "2", "3"]), min_workers=2) is None


def test_a_session_that_cannot_count_slots_does_not_shrink() -> None:
    assert resize(FakeDriver([None], gone=[])) is None


def test_a_failure_that_names_no_host_gives_up_no_executor() -> None:
    driver = FakeDriver([2], gone=["9"])
    r = resize(driver, error={"code": "SR_WORKER_EXIT", "message": "exited", "rank": 2})
    assert r == Resize(4, 2, None, None, ())
    assert driver.asked_hosts == []


def test_a_run_that_cannot_be_placed_again_names_the_lost_host_and_the_setting() -> None:
    hint = unplaceable_hint(LOST, 0, None, 2)
    assert hint == (
        "; attempt 1 lost host 10.0.0.12 (rank 3): --min-workers 2 (min_workers=2) would let the run go on with the 2 workers free"
    )
    assert unplaceable_hint(LOST, 0, 2, 1) == "; attempt 1 lost host 10.0.0.12 (rank 3)"
    assert unplaceable_hint(None, 0, None, 2) == ""


def test_the_peer_a_worker_lost_reaches_the_attempts_error() -> None:
    from sparkring.driver.stage import stage_error
    from sparkring.failures import SparkringWorkerError, WorkerFailure, lost_peer

    failure = WorkerFailure(1, "PeerFailedError: ring peer rank 3 ...", code="SR_PEER_LOST", lost_peer=lost_peer(LOST["lostPeer"]))
    text = f"org.apache.spark.SparkException: Job aborted\n{SparkringWorkerError(failure)}\n\tat ..."
    error = stage_error(text, None, lambda: None, "Job aborted")
    assert error["code"] == "SR_PEER_LOST"
    assert error["lostPeer"] == {"rank": 3, "host": "10.0.0.12"}
    assert lost_peer({"rank": "3", "host": 1}) is None


def test_grow_watch_asks_the_ranks_to_end_once_more_slots_stay_free(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    import time

    from sparkring.driver.elastic import GrowWatch, grown, resize_request

    counts = [2, 2, 4, 4, 4]
    request = resize_request(str(tmp_path), 3)
    watch = GrowWatch(lambda: counts.pop(0) if len(counts) > 1 else counts[0], 2, 4, request)
    until = time.time() + 10
    while watch.target is None and time.time() < until:
        time.sleep(0.1)
    assert watch.target == 4
    with open(request, encoding="utf-8") as f:
        assert json.load(f) == {"workers": 4}
    watch.stop()
    assert not (tmp_path / "resize-3").exists()
    assert grown(2, 4, 3) == Resize(2, 3, None, None, ())
    assert grown(2, 4, None) == Resize(2, 2, None, None, ())
    assert grown(2, 4, 6).line(2).startswith("workers 2 -> 4: executors returned")
