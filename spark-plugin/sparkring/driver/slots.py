"""Slot preflight: a barrier stage needs every task running at once. Spark alone would resubmit
the job every 15 s for 10 minutes; we check first and fail in seconds with what is missing."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Callable, Optional


@dataclass(frozen=True)
class SlotNeed:
    workers: int
    cpus_per_task: int
    gpus_per_task: float


@dataclass(frozen=True)
class ClusterShape:
    executors: int
    cores_per_executor: int
    gpus_per_executor: float


def local_cluster_shape(master: str, executor_gpus: float) -> Optional[ClusterShape]:
    """The fixed shape of a local-cluster[N,cores,mem] master; None for other masters."""
    m = re.fullmatch(r"local-cluster\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]", master.strip())
    if not m:
        return None
    return ClusterShape(int(m.group(1)), int(m.group(2)), executor_gpus)


def local_slots(master: str) -> Optional[int]:
    """Task slots of local / local[N] / local[*] / local[N,F] masters; None for other masters."""
    import os

    m = re.fullmatch(r"local(?:\[\s*(\d+|\*)\s*(?:,\s*\d+\s*)?\])?", master.strip())
    if not m:
        return None
    n = m.group(1)
    if n is None:
        return 1
    return os.cpu_count() or 1 if n == "*" else int(n)


def slots_of(shape: ClusterShape, need: SlotNeed) -> int:
    per_executor = shape.cores_per_executor // max(1, need.cpus_per_task)
    if need.gpus_per_task > 0:
        per_executor = min(per_executor, int(shape.gpus_per_executor // need.gpus_per_task))
    return shape.executors * per_executor


def describe_need(need: SlotNeed) -> str:
    gpu = f" and {need.gpus_per_task:g} GPU" if need.gpus_per_task > 0 else ""
    return f"{need.workers} barrier task slots ({need.workers} workers x {need.cpus_per_task} CPU{gpu} each)"


class SlotsError(RuntimeError):
    pass


def wait_for_slots(
    need: SlotNeed,
    master: str,
    free_slots: Callable[[], int],
    executor_count: Callable[[], int],
    timeout_s: float,
    shape: Optional[ClusterShape] = None,
) -> float:
    """Waits until `need.workers` tasks can run at once; returns the seconds waited.

    Fails at once when the master's fixed shape can never offer them, else after `timeout_s`.
    """
    fixed = slots_of(shape, need) if shape is not None else local_slots(master)
    if fixed is not None and fixed < need.workers:
        what = (
            f"{shape.executors} executors x {shape.cores_per_executor} core{'s' if shape.cores_per_executor != 1 else ''}"
            + (f", {shape.gpus_per_executor:g} GPUs" if need.gpus_per_task > 0 else "")
            if shape is not None
            else "local mode"
        )
        raise SlotsError(
            f"the job needs {describe_need(need)}, but {master} can only ever offer {fixed} ({what}); "
            f"lower --workers to {fixed} or use a bigger cluster"
        )
    started = time.time()
    while True:
        free = free_slots()
        if free >= need.workers:
            return time.time() - started
        if time.time() - started >= timeout_s:
            raise SlotsError(
                f"the job needs {describe_need(need)}, but after {timeout_s:g}s the cluster offers {free} "
                f"({executor_count()} executors registered); lower --workers, free or add executors, "
                "or check that executors can start (spark.executor.memory, GPUs)"
            )
        time.sleep(0.2)
