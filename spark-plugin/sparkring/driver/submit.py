"""What spark-submit runs (spark-plugin/sparkring_submit.py): the driver of the job kind the spec
names. The built-in kinds are train (lifecycle.py through train_job.py), search (search_rounds.py) and
predict (predict_job.py). A kind of one's own (src/client/jobs/kind.ts) names its middle in the
spec as `driver`, a Python file with `middle(spark, spec, job)`: it runs inside the one envelope
(envelope.py), so it only fills the result."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from typing import Any, Callable

from sparkring.driver import predict_job, search_rounds, train_job
from sparkring.executor import search_tasks
from sparkring.driver.envelope import job_envelope
from sparkring.driver.spark_session import driver_spark
from sparkring.error_codes import SPARK
from sparkring.failures import JobError
from sparkring.driver.spec import JobSpec, RedisEndpoint

KINDS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "train": lambda raw: train_job.run(JobSpec.from_dict(raw)),
    "search": lambda raw: search_rounds.run(search_tasks.SearchSpec.from_dict(raw)),
    "predict": lambda raw: predict_job.run(predict_job.PredictSpec.from_dict(raw)),
}


def run_own_kind(raw: dict[str, Any]) -> dict[str, Any]:
    """A kind whose spec names its middle's file: run in its own SparkSession inside the envelope,
    which also reports a file that cannot be loaded."""
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName(f"sparkring-{raw['kind']}").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    redis = raw["redis"]
    try:
        with job_envelope(driver_spark(spark), str(raw["resultPath"]), str(raw["secret"]), RedisEndpoint(redis["url"], redis["stream"], redis["ca"])) as job:
            path = str(raw["driver"])
            loaded = importlib.util.spec_from_file_location(f"sparkring_kind_{raw['kind']}", path)
            if loaded is None or loaded.loader is None:
                raise JobError(f"the {raw['kind']} kind's driver {path} is not a Python file", SPARK)
            module = importlib.util.module_from_spec(loaded)
            loaded.loader.exec_module(module)
            module.middle(spark, raw, job)
    finally:
        spark.stop()
    return job.result


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: sparkring_submit.py SPEC.json", file=sys.stderr)
        return 2
    spec_path = argv[1]
    if not os.path.exists(spec_path) and os.path.exists(os.path.basename(spec_path)):
        spec_path = os.path.basename(spec_path)  # cluster mode: the spec came with the job's files
    with open(spec_path, encoding="utf-8") as f:
        raw = json.load(f)
    kind = str(raw.get("kind", "train"))
    if kind in KINDS:
        result = KINDS[kind](raw)
    elif raw.get("driver"):
        result = run_own_kind(raw)
    else:
        print(f"sparkring: the spec's kind {kind!r} is none of {', '.join(KINDS)} and names no driver", file=sys.stderr)
        return 2
    if not result.get("ok"):
        error = result.get("error") or {}
        who = f"worker {error['rank']} failed: " if "rank" in error else ""
        where = ", ".join(x for x in (f"on host {error['host']}" if error.get("host") else "", f"during {error['phase']}" if error.get("phase") else "") if x)
        # One line for whoever reads only the driver's output (a Livy batch's log).
        print(f"sparkring: {who}{error.get('message', 'the job failed')}{f' ({where})' if who and where else ''}", file=sys.stderr)
    return 0 if result.get("ok") else 1
