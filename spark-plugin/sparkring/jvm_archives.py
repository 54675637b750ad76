"""Class-data archives (Java's AppCDS) of the embedded local-cluster's JVMs, made once at setup.

A Spark JVM spends most of its start loading and verifying some ten thousand classes. A JVM started
with -XX:SharedArchiveFile maps the classes an earlier run of the same kind loaded instead: here the
executors of a 2-worker local-cluster registered about 1.7 s sooner and the first job ran 2 s
sooner. This module makes the two archives (the driver's and an executor's) from one small
application that does what a sparkring run does: a Parquet read, a barrier mapInArrow stage, an RDD
job. The archive belongs to the pyspark jars and the JVM it was made with; a JVM that finds them
changed ignores it and starts as before (client/submission/jvm-archives.ts adds it only where it is).

    python -m sparkring.jvm_archives OUT_DIR JAVA_OPTIONS
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Iterator

ARCHIVES = ("driver.jsa", "executor.jsa")


def _exercise(spark: Any, work: str) -> None:
    """The jobs whose classes a sparkring run loads: a Parquet read, a barrier mapInArrow stage, an RDD job."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = os.path.join(work, "rows.parquet")
    pq.write_table(pa.table({"x": pa.array([float(i) for i in range(64)]), "label": pa.array(list(range(64)))}), path)

    def identity(batches: Iterator[Any]) -> Iterator[Any]:
        from pyspark import BarrierTaskContext

        BarrierTaskContext.get().barrier()
        yield from batches

    frame = spark.read.parquet(path)
    frame.mapInArrow(identity, frame.schema, barrier=True).collect()
    spark.sparkContext.parallelize(range(2), 1).map(lambda v: v).collect()


def _wait_for_exit(pattern: str, timeout_s: float) -> None:
    """Waits until no process's command line holds `pattern` (the executor writes its archive as it exits)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if subprocess.run(["pgrep", "-f", pattern], stdout=subprocess.DEVNULL).returncode != 0:
            return
        time.sleep(0.2)


def make(out: str, java_options: str) -> None:
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    os.makedirs(out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="sparkring-jvm-archives-", dir=out)
    try:
        dump = {name: os.path.join(work, name) for name in ARCHIVES}
        spark = (
            SparkSession.builder.master("local-cluster[1,1,1024]")
            .appName("sparkring-jvm-archives")
            .config("spark.ui.enabled", "false")
            .config("spark.executor.memory", "512m")
            .config("spark.driver.defaultJavaOptions", f"{java_options} -XX:ArchiveClassesAtExit={dump['driver.jsa']}")
            .config("spark.executor.defaultJavaOptions", f"{java_options} -XX:ArchiveClassesAtExit={dump['executor.jsa']}")
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        try:
            _exercise(spark, work)
        finally:
            gateway = SparkContext._gateway
            spark.stop()
            # The driver JVM writes its archive as it exits: it exits when its stdin closes.
            if gateway is not None:
                gateway.shutdown()
                proc = getattr(gateway, "proc", None)
                if proc is not None:
                    if proc.stdin:
                        proc.stdin.close()
                    proc.wait(timeout=120)
        _wait_for_exit(f"ArchiveClassesAtExit={dump['executor.jsa']}", 120)
        missing = [name for name, path in dump.items() if not os.path.isfile(path)]
        if missing:
            raise RuntimeError(f"the JVMs wrote no {' or '.join(missing)}")
        for name, path in dump.items():
            os.replace(path, os.path.join(out, name))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    make(sys.argv[1], sys.argv[2])
