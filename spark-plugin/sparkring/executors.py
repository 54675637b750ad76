"""The application's executors, through the JVM gateway: which there are, and giving them back."""

from __future__ import annotations

import time
from typing import Any, Optional


def executor_ids(sc: Any) -> list[str]:
    jsc = sc._jsc.sc()
    return [str(x) for x in sc._jvm.scala.collection.JavaConverters.seqAsJavaList(jsc.getExecutorIds())]


def release_executors(sc: Any, timeout_s: float = 60) -> Optional[float]:
    """Kills every executor of this application (barrier jobs cannot use dynamic allocation, so
    we give them back ourselves); returns ms until Spark reports them gone, None if none."""
    ids = executor_ids(sc)
    if not ids:
        return None
    started = time.time()
    sc._jsc.sc().killExecutors(sc._jvm.PythonUtils.toSeq(ids))
    while executor_ids(sc) and time.time() - started < timeout_s:
        time.sleep(0.02)
    return (time.time() - started) * 1000
