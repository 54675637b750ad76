"""What every bench peers runner shares: its arguments, the data, and the one JSON line it prints.

A runner prints `{"first_step_at": ms, "epochs": [{"at": ms, "acc": float}], "saved_at": ms, ...}`
with epoch-ms wall-clock times (the bench compares them with the time it started the runner).
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Workload:
    model: str
    epochs: int
    batch: int
    lr: float
    data: str
    workers: int
    threads: int


def workload() -> Workload:
    """argv: MODEL EPOCHS BATCH LR DATA_DIR WORKERS [THREADS]"""
    a = sys.argv[1:]
    return Workload(a[0], int(a[1]), int(a[2]), float(a[3]), a[4], int(a[5]), int(a[6]) if len(a) > 6 else 1)


def now_ms() -> float:
    return time.time() * 1000


def load_arrays(w: Workload) -> tuple[Any, Any]:
    import numpy as np

    x = np.load(os.path.join(w.data, "x.npy"))
    y = np.load(os.path.join(w.data, "y.npy"))
    return (x.reshape(-1, 28, 28, 1) if w.model == "cnn" else x), y


def report(result: dict[str, Any]) -> None:
    print(json.dumps(result), flush=True)


def local_cluster(workers: int, executor_env: dict[str, str]) -> Any:
    """The SparkSession every Spark system of the bench runs on: local-cluster[W,1,1024], one core a task."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(f"local-cluster[{workers},1,1024]").config("spark.task.cpus", "1")
    for name, value in executor_env.items():
        builder = builder.config(f"spark.executorEnv.{name}", value)
    return builder.getOrCreate()
