"""One side of `npm run bench -- connect` (bench/connect.ts): a warm PySpark 4 session, classic or
Spark Connect, that trains the same small run once per line on stdin and prints one BENCH line of
JSON per run: the run's own submit-to-ring and the caller's wall time around sparkring.allreduce.

    python connect_runs.py classic|connect MASTER|URL ENTRY EXPERIMENTS
"""

from __future__ import annotations

import json
import sys
import time

from pyspark.sql import SparkSession, functions as F

import sparkring


def session(kind: str, target: str) -> SparkSession:
    if kind == "connect":
        return SparkSession.builder.remote(target).getOrCreate()
    spark = (
        SparkSession.builder.master(target)
        .appName("sparkring-bench-classic")
        .config("spark.executor.memory", "512m")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    # Its executors up before the rounds start, as the Connect server's are (cluster/spark-connect.ts):
    # neither side's first run then shares the machine with the other's JVMs starting.
    from sparkring.driver.executors import executor_ids

    while len(executor_ids(spark.sparkContext)) < 2:
        time.sleep(0.2)
    return spark


def main(kind: str, target: str, entry: str, experiments: str) -> None:
    spark = session(kind, target)
    df = (
        spark.range(0, 20000)
        .select("id", ((F.col("id") % 17 - 8) / 8).alias("a"), ((F.col("id") * 7 % 13 - 6) / 4).alias("b"))
        .withColumn("y", F.when(F.col("a") - 0.5 * F.col("b") + 0.25 > 0, 1.0).otherwise(0.0))
    )
    print("BENCH " + json.dumps({"ready": True, "spark": spark.version}), flush=True)
    for _ in sys.stdin:
        started = time.time()
        run = sparkring.allreduce(
            entry, df, num_workers=2, hparams={"steps": 40, "lr": 0.5}, experiments=experiments, tf_backend="cpu", progress=False
        )
        wall = time.time() - started
        print("BENCH " + json.dumps({"wall_ms": wall * 1000, "submit_to_ring_ms": run.timings.get("submitToRingMs")}), flush=True)
    spark.stop()


if __name__ == "__main__":
    main(*sys.argv[1:5])
