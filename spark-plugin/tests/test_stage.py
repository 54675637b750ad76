"""How the barrier stage gets its W partitions from the frame."""

from __future__ import annotations

import types
from typing import Any, Optional


class _Plan:
    def __init__(self, text: str, partitions: int) -> None:
        self.text = text
        self.partitions = partitions

    def toString(self) -> str:
        return self.text

    def execute(self) -> Any:
        if "Exchange" in self.text:
            raise AssertionError("executing a plan with an exchange runs its shuffle")
        return types.SimpleNamespace(getNumPartitions=lambda: self.partitions)


class _Frame:
    """A frame as partitioned() sees it: its physical plan, and a repartition that says so."""

    def __init__(self, planned: Optional[int], plan: str = "FileScan parquet [x#0,part#1]") -> None:
        self.columns = ["x", "part"]
        if planned is not None:  # None: as over Spark Connect, no JVM handle
            execution = types.SimpleNamespace(executedPlan=lambda: _Plan(plan, planned))
            self._jdf = types.SimpleNamespace(queryExecution=lambda: execution)

    def repartition(self, n: int, *cols: str) -> tuple[str, int, tuple[str, ...]]:
        return ("repartitioned", n, cols)


def test_a_frame_planned_as_w_partitions_goes_to_the_stage_without_a_shuffle() -> None:
    from sparkring.driver.stage import partitioned

    spec = types.SimpleNamespace(workers=2, partition_by=None)
    frame = _Frame(2)
    assert partitioned(frame, spec) is frame  # type: ignore[arg-type]
    assert partitioned(_Frame(6), spec) == ("repartitioned", 2, ())  # type: ignore[arg-type]
    assert partitioned(_Frame(1), spec) == ("repartitioned", 2, ())  # type: ignore[arg-type]
    assert partitioned(_Frame(None), spec) == ("repartitioned", 2, ())  # type: ignore[arg-type]
    shuffled = _Frame(2, "AdaptiveSparkPlan isFinalPlan=false\n+- HashAggregate\n   +- Exchange hashpartitioning")
    assert partitioned(shuffled, spec) == ("repartitioned", 2, ())  # type: ignore[arg-type]
    by_part = types.SimpleNamespace(workers=2, partition_by="part")
    assert partitioned(_Frame(2), by_part) == ("repartitioned", 2, ("part",))  # type: ignore[arg-type]
