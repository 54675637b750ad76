"""Spark-side halves of the benchmarks (bench/startup.ts, bench/handoff.ts).

    spark-submit spark-plugin/sparkring_bench.py noop-barrier OUT.json WORKERS
    spark-submit spark-plugin/sparkring_bench.py handoff SPEC.json OUT.json ROWS COLUMNS
"""

from __future__ import annotations

import json
import socket
import sys
import time
from typing import Any, Iterator

import pyarrow as pa

from sparkring.driver.shared_dir import leave_token


def noop_barrier(out: str, workers: int) -> None:
    """A barrier job that only does one allGather: the floor for any barrier-stage startup."""
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("sparkring-bench-noop").getOrCreate()

    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import BarrierTaskContext

        ctx = BarrierTaskContext.get()
        ctx.allGather(str(ctx.partitionId()))
        yield pa.RecordBatch.from_pydict({"at": [time.time() * 1000]})

    rows = spark.range(workers).repartition(workers).mapInArrow(task, "at double", barrier=True).collect()
    with open(out, "w") as f:
        json.dump({"allGatherAt": max(r["at"] for r in rows)}, f)
    spark.stop()


def handoff(spec_path: str, out: str, rows: int, columns: int, rounds: int = 5) -> None:
    """Per-task seconds to pull a cached DataFrame partition: without Node (a no-op mapInArrow),
    then handed to Node workers through sparkring's task."""
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import to_arrow_schema

    from sparkring.driver.run_files import experiment_dir
    from sparkring.driver.spec import JobSpec
    from sparkring.executor.task import RESULT_SCHEMA, make_task

    spec = JobSpec.load(spec_path)
    spark = SparkSession.builder.appName("sparkring-bench-handoff").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    df = spark.range(rows).select(*[(F.rand(seed=c) * 100).cast("float").alias(f"f{c}") for c in range(columns)])
    df = df.repartition(spec.workers).persist()
    df.count()

    def noop(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import BarrierTaskContext

        # Like sparkring's task, start pulling batches after an allGather: Spark has been filling
        # the socket to this worker meanwhile, which both paths then begin with.
        BarrierTaskContext.get().allGather("")
        started = time.time()
        n = 0
        nbytes = 0
        for b in batches:
            n += b.num_rows
            nbytes += b.nbytes
        yield pa.RecordBatch.from_pydict({"rows": [n], "bytes": [nbytes], "seconds": [time.time() - started]})

    results: dict[str, Any] = {"rows": rows, "columns": columns, "workers": spec.workers, "noop": [], "sparkring": []}
    run_dir = experiment_dir(spec.experiments, spark.sparkContext.applicationId, spec.name)
    token = leave_token(run_dir, spec.attempt)
    task = make_task(spec, run_dir, to_arrow_schema(df.schema), token, socket.gethostname())
    for round in range(rounds + 1):  # round 0 warms both paths up
        base = df.mapInArrow(noop, "rows long, bytes long, seconds double", barrier=True).collect()
        ours = [json.loads(r["result"]) for r in df.mapInArrow(task, RESULT_SCHEMA, barrier=True).collect()]
        if round == 0:
            continue
        results["noop"].append({"seconds": max(r["seconds"] for r in base), "bytes": sum(r["bytes"] for r in base)})
        results["sparkring"].append(
            {"seconds": max(r["handoff"]["seconds"] for r in ours), "rows": sum(r["rows"] for r in ours)}
        )
    with open(out, "w") as f:
        json.dump(results, f)
    spark.stop()


if __name__ == "__main__":
    if sys.argv[1] == "noop-barrier":
        noop_barrier(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "handoff":
        handoff(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]) if len(sys.argv) > 6 else 5)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
