"""The application's executors, through the JVM gateway: which there are, and giving them back."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional


def executor_ids(sc: Any) -> list[str]:
    jsc = sc._jsc.sc()
    return [str(x) for x in sc._jvm.scala.collection.JavaConverters.seqAsJavaList(jsc.getExecutorIds())]


@dataclass
class Release:
    """How giving the executors back went: ms until Spark listed none, or the executors (with their
    host:port) still listed when the wait ended; or, where this session cannot give them back (Spark
    Connect), the `left_to` line that says who will."""

    ms: float
    remaining: dict[str, str]
    left_to: Optional[str] = None

    @property
    def released_ms(self) -> Optional[float]:
        """The result's releaseMs: the time they took, or None when some did not go (or none were given back)."""
        return None if self.remaining or self.left_to else self.ms

    def line(self) -> str:
        if self.left_to:
            return self.left_to
        if not self.remaining:
            return f"executors released in {self.ms:.0f} ms"
        which = ", ".join(f"executor {i} ({h})" if h else f"executor {i}" for i, h in self.remaining.items())
        return (
            f"executors not all released after {self.ms / 1000:.0f} s: {which} still listed; Spark drops an"
            " executor it cannot reach after spark.network.timeout (120 s unless set)"
        )


def executor_hosts(sc: Any) -> dict[str, str]:
    """Executor id -> host:port from Spark's status store (empty where this Spark does not offer it)."""
    try:
        summaries = sc._jvm.scala.collection.JavaConverters.seqAsJavaList(sc._jsc.sc().statusStore().executorList(True))
        return {str(s.id()): str(s.hostPort()) for s in summaries}
    except Exception:  # noqa: BLE001 - statusStore is Spark's own API, not a promise; hosts are a courtesy
        return {}


def release_executors(sc: Any, timeout_s: float = 60) -> Optional[Release]:
    """Kills every executor of this application (barrier jobs cannot use dynamic allocation, so
    we give them back ourselves) and waits up to `timeout_s` for Spark to report them gone; None if
    there were none."""
    ids = executor_ids(sc)
    if not ids:
        return None
    hosts = executor_hosts(sc)
    started = time.time()
    sc._jsc.sc().killExecutors(sc._jvm.PythonUtils.toSeq(ids))
    left = ids
    while left and time.time() - started < timeout_s:
        time.sleep(0.02)
        left = executor_ids(sc)
    return Release((time.time() - started) * 1000, {i: hosts.get(i, "") for i in left})
