"""How the barrier stage gets its W partitions from the frame."""

from __future__ import annotations

import types
from typing import Any, Optional


class _Frame:
    """A frame as partitioned() sees it: its planned partitions, and a repartition that says so."""

    def __init__(self, planned: Optional[int]) -> None:
        self.planned = planned
        self.columns = ["x", "part"]

    @property
    def rdd(self) -> Any:
        if self.planned is None:
            raise RuntimeError("[NOT_IMPLEMENTED] rdd is not implemented.")  # as over Spark Connect
        return types.SimpleNamespace(getNumPartitions=lambda: self.planned)

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
    by_part = types.SimpleNamespace(workers=2, partition_by="part")
    assert partitioned(_Frame(2), by_part) == ("repartitioned", 2, ("part",))  # type: ignore[arg-type]
