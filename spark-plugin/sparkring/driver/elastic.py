"""Elastic training (--min-workers): the size of the barrier stage after a failed attempt. A Spark
barrier stage has a fixed size, so a run that loses a host goes on as a new stage of the size the
cluster can give now, resumed from the last checkpoint (ctx.fit's is global, written by rank 0).
Growing back when executors return is not done here yet: a run keeps the size it shrank to."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from sparkring.driver.slots import SlotNeed
from sparkring.driver.spark_session import DriverSpark

# How long the cluster has to give a lost host's slots back (an executor replaced elsewhere, which
# Spark starts in a few seconds where it has room) before the run goes on with fewer workers.
REGAIN_WAIT_S = 3.0


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

    def line(self, min_workers: int) -> str:
        lost = f"host {self.lost_host} (rank {self.lost_rank}) was lost" if self.lost_host else "a worker was lost"
        return (
            f"workers {self.from_workers} -> {self.to_workers}: {lost} and the cluster did not give its slots back "
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
