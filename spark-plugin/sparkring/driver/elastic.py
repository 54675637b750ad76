"""Elastic training (--min-workers): the size of each barrier stage. A Spark barrier stage has a
fixed size, so a run that loses a host goes on as a new stage of the size the cluster can give now,
resumed from the last checkpoint (ctx.fit's is global, written by rank 0). While a shrunk run
trains, GrowWatch asks its ranks, through a file in the run directory, to end their stage at the
next epoch's end once the cluster has slots for more of them; the next stage is then larger."""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from sparkring.driver.slots import SlotNeed
from sparkring.driver.spark_session import DriverSpark

# How long the cluster has to give a lost host's slots back (an executor replaced elsewhere, which
# Spark starts in a few seconds where it has room) before the run goes on with fewer workers.
REGAIN_WAIT_S = 2.0


@dataclass(frozen=True)
class Resize:
    """A stage's size after a loss: `to_workers` of `from_workers`, and what was lost."""

    from_workers: int
    to_workers: int
    lost_host: Optional[str]
    lost_rank: Optional[int]
    # Executors on the lost host that no longer answered, removed from the application.
    given_up: tuple[str, ...]

    def event(self) -> dict[str, Any]:
        return {
            "fromWorkers": self.from_workers,
            "toWorkers": self.to_workers,
            "lostHost": self.lost_host,
            "lostRank": self.lost_rank,
            "givenUp": list(self.given_up),
        }

    @property
    def lost(self) -> str:
        """`host H (rank r)`, or `a worker` where the failure named no host."""
        if not self.lost_host:
            return "a worker"
        return f"host {self.lost_host}" + (f" (rank {self.lost_rank})" if self.lost_rank is not None else "")

    @property
    def why(self) -> str:
        return "executors returned" if self.to_workers > self.from_workers else f"lost {self.lost}"

    def worker_note(self) -> dict[str, Any]:
        """What the next stage's workers get as ctx.resized (runtime/control.ts)."""
        return {"from": self.from_workers, "to": self.to_workers, "why": self.why}

    def line(self, min_workers: int) -> str:
        if self.to_workers > self.from_workers:
            return (
                f"workers {self.from_workers} -> {self.to_workers}: executors returned; the ranks checkpointed at an "
                "epoch's end and the run goes on from there"
            )
        return (
            f"workers {self.from_workers} -> {self.to_workers}: {self.lost} was lost and the cluster did not give its slots back "
            f"within {REGAIN_WAIT_S:g} s; going on from the last checkpoint (--min-workers {min_workers})"
        )


def lost_peer(error: Optional[dict[str, Any]]) -> tuple[Optional[str], Optional[int]]:
    """The host and rank a failed attempt lost, where its error names them (failures.py's lostPeer)."""
    lost = (error or {}).get("lostPeer")
    if isinstance(lost, dict) and isinstance(lost.get("host"), str):
        rank = lost.get("rank")
        return lost["host"], rank if isinstance(rank, int) else None
    return None, None


def give_up_lost_host(driver: DriverSpark, error: Optional[dict[str, Any]]) -> tuple[str, ...]:
    """Before the next stage: the executors of the host a failed attempt lost, where that host no
    longer answers, removed (and replaced where the cluster has room); their ids."""
    host, _ = lost_peer(error)
    return tuple(driver.give_up_host(host)) if host else ()


def shrunk(
    driver: DriverSpark,
    need: SlotNeed,
    min_workers: int,
    error: Optional[dict[str, Any]],
    given_up: tuple[str, ...] = (),
    wait_s: float = REGAIN_WAIT_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Optional[Resize]:
    """The smaller size the next stage takes after a failed attempt of `need.workers` workers, or
    None: the cluster gives the old size back within `wait_s` (retry at that size), fewer than
    `min_workers` slots are free, or this session cannot count slots. `given_up`: the lost host's
    executors removed (give_up_lost_host)."""
    host, rank = lost_peer(error)
    deadline = clock() + wait_s
    while True:
        free = driver.free_slots(need)
        if free is None or free >= need.workers:
            return None
        if clock() >= deadline:
            break
        sleep(0.2)
    if free < min_workers:
        return None
    return Resize(need.workers, free, host, rank, given_up)


def unplaceable_hint(error: Optional[dict[str, Any]], attempt: int, min_workers: Optional[int], free: Optional[int]) -> str:
    """What to add to a slot error after attempt `attempt` failed: the host it lost, and the setting
    that would have let the run go on (where the run had none)."""
    host, rank = lost_peer(error)
    if host is None:
        return ""
    lost = f"; attempt {attempt + 1} lost host {host}" + (f" (rank {rank})" if rank is not None else "")
    if min_workers is None and free:
        return f"{lost}: --min-workers {free} (min_workers={free}) would let the run go on with the {free} workers free"
    return lost


def resize_request(run_dir: str, attempt: int) -> str:
    """The file by which the driver asks attempt `attempt`'s ranks to end at an epoch's end (runtime/main.ts)."""
    return os.path.join(run_dir, f"resize-{attempt}")


class GrowWatch:
    """While a shrunk stage of `workers` runs: once the application has slots for more of them
    (executors returned) in two polls a second apart, asks the ranks to end at the next epoch's end
    (ctx.fit checkpoints, then ends the stage), and keeps the size the next stage can take."""

    def __init__(self, free_slots: Callable[[], Optional[int]], workers: int, max_workers: int, request: str) -> None:
        self.free_slots = free_slots
        self.workers = workers
        self.max_workers = max_workers
        self.request = request
        self.target: Optional[int] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="sparkring-grow-watch", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        seen = 0
        while not self._stop.wait(1.0):
            try:
                total = self.free_slots()
            except Exception:  # noqa: BLE001 - the application may be stopping under us
                return
            seen = seen + 1 if total is not None and total > self.workers else 0
            if seen >= 2 and total is not None:
                self.target = min(total, self.max_workers)
                with open(self.request, "w", encoding="utf-8") as f:
                    json.dump({"workers": self.target}, f)
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            os.unlink(self.request)
        except FileNotFoundError:
            pass


def grown(workers: int, max_workers: int, free: Optional[int]) -> Resize:
    """The next stage's size after the ranks ended theirs to grow: what is free now, up to max."""
    return Resize(workers, max(workers, min(max_workers, free or workers)), None, None, ())
