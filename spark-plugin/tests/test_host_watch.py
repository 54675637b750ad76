"""The host watch's judgement, with the Spark side given as functions: a host is lost only when none
of its executors has answered for a while and tries begun since have timed out; a refused
connection is a live host."""

from __future__ import annotations

import socket
import threading
import time

from sparkring.driver.host_watch import HostWatch, PlacedTask, reachable

TASKS = [
    PlacedTask(0, "0", "10.0.0.1", "10.0.0.1:4001"),
    PlacedTask(1, "1", "10.0.0.1", "10.0.0.1:4002"),
    PlacedTask(2, "2", "10.0.0.2", "10.0.0.2:4001"),
    PlacedTask(3, "3", "10.0.0.2", "10.0.0.2:4002"),
]


def watch_with(answers: dict[str, bool], wait_s: float = 0.5) -> tuple[HostWatch, list[list[str]], threading.Event]:
    given_up: list[list[str]] = []
    cancelled = threading.Event()
    w = HostWatch(
        lambda: TASKS, given_up.append, cancelled.set, check=lambda hp, _t: answers.get(hp, True), poll_s=0.01, lost_after_s=0.05
    )
    cancelled.wait(wait_s)
    w.stop()
    return w, given_up, cancelled


def test_a_host_none_of_whose_executors_answers_is_lost_with_its_ranks_and_executors() -> None:
    w, given_up, cancelled = watch_with({"10.0.0.2:4001": False, "10.0.0.2:4002": False})
    assert cancelled.is_set()
    assert w.lost is not None and w.lost.host == "10.0.0.2" and w.lost.ranks == (2, 3)
    assert given_up == [["2", "3"]]
    error = w.lost.error()
    assert error["code"] == "SR_HOST_LOST" and error["lostPeer"] == {"rank": 2, "host": "10.0.0.2"}
    assert error["message"].startswith("host 10.0.0.2 (ranks 2, 3) stopped answering")


def test_one_executor_answering_keeps_its_host() -> None:
    w, given_up, cancelled = watch_with({"10.0.0.2:4001": False}, wait_s=0.2)
    assert not cancelled.is_set() and w.lost is None and given_up == []


def test_a_single_miss_is_not_a_loss() -> None:
    calls: dict[str, int] = {}

    def flaky(hp: str, _t: float) -> bool:
        calls[hp] = calls.get(hp, 0) + 1
        return not (hp.startswith("10.0.0.2") and calls[hp] % 2 == 1)  # every other check misses

    cancelled = threading.Event()
    w = HostWatch(lambda: TASKS, lambda _ids: None, cancelled.set, check=flaky, poll_s=0.01, lost_after_s=0.05)
    time.sleep(0.2)
    w.stop()
    assert not cancelled.is_set() and w.lost is None


def test_tries_overlap_and_the_loss_is_judged_no_sooner_than_lost_after_s_past_the_last_answer() -> None:
    # Each try of the lost host takes its whole timeout (0.3 s here): the next tries begin meanwhile,
    # so the judgement waits on the time since the last answer, not on rounds of timeouts.
    lost_at = time.monotonic() + 0.1
    lock = threading.Lock()
    trying = {"now": 0, "most": 0}

    def check(hp: str, _t: float) -> bool:
        if not hp.startswith("10.0.0.2") or time.monotonic() < lost_at:
            return True
        with lock:
            trying["now"] += 1
            trying["most"] = max(trying["most"], trying["now"])
        time.sleep(0.3)
        with lock:
            trying["now"] -= 1
        return False

    cancelled = threading.Event()
    w = HostWatch(lambda: TASKS, lambda _ids: None, cancelled.set, check=check, poll_s=0.02, lost_after_s=0.4)
    assert cancelled.wait(5)
    seen = time.monotonic() - lost_at
    w.stop()
    assert w.lost is not None and w.lost.host == "10.0.0.2"
    assert seen >= 0.4 - 0.02  # the last answer began at most a poll before the loss
    assert trying["most"] >= 2


def test_a_watch_whose_tries_never_end_judges_nothing() -> None:
    # Tries that neither answer nor time out (a starved driver) are no evidence of a loss.
    release = threading.Event()

    def stuck(_hp: str, _t: float) -> bool:
        release.wait(2)
        return True

    cancelled = threading.Event()
    w = HostWatch(lambda: TASKS, lambda _ids: None, cancelled.set, check=stuck, poll_s=0.01, lost_after_s=0.05)
    time.sleep(0.3)
    release.set()
    w.stop()
    assert not cancelled.is_set() and w.lost is None


def test_a_refused_connection_is_a_live_host() -> None:
    # (A host cut off, which times out, is test/multihost/elastic.test.ts's.)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        assert reachable(f"127.0.0.1:{port}", 1.0)
