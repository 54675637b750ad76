"""Spark's delay scheduling, off while sparkring's barrier stages are scheduled.

A barrier stage starts only when every one of its tasks is offered a slot in the same round, and
delay scheduling offers a task only slots at its preferred locality until spark.locality.wait (3 s
unless set) has passed, level by level. A repartitioned frame's reducers all prefer the executor
that holds the map output (one file, one map task: every reducer), so a W-task barrier stage sat
3 s and more before it started, on every attempt and on every stage after a resize. The ranks read
their partitions once, in seconds at most; placement by locality buys them nothing. So while the
job runs, the live SparkConf that Spark's task sets read (getConf() is a copy) says 0 s, unless the
application set spark.locality.wait itself; several jobs at once (search rounds) share it."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator

LOCALITY_WAIT = "spark.locality.wait"

_lock = threading.Lock()
# Jobs inside the scope, by SparkConf (one per SparkContext): the last one out restores the conf.
_holders: dict[int, int] = {}


@contextmanager
def no_locality_wait(sc: Any) -> Iterator[None]:
    conf = sc._jsc.sc().conf()
    key = id(sc)
    with _lock:
        if key not in _holders and conf.contains(LOCALITY_WAIT):
            ours = False  # the application's own setting stands
        else:
            ours = True
            if key not in _holders:
                conf.set(LOCALITY_WAIT, "0s")
            _holders[key] = _holders.get(key, 0) + 1
    try:
        yield
    finally:
        if ours:
            with _lock:
                _holders[key] -= 1
                if _holders[key] == 0:
                    del _holders[key]
                    conf.remove(LOCALITY_WAIT)
