"""`sparkring predict`'s driver (kind "predict" in the spec spark-submit gets): reads --data,
appends the model's predictions on the executors (scoring.py), writes --out, releases the
executors and writes the result for the client."""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Optional

from sparkring.error_codes import DATA_COLUMN, DATA_PATH
from sparkring.driver.train_job import read_data
from sparkring.driver.envelope import Job, job_envelope
from sparkring.failures import JobError
from sparkring.driver.spark_session import ClassicSpark
from sparkring.executor.scoring import ScoreCounters, prepare, with_predictions
from sparkring.driver.spec import RedisEndpoint


@dataclass(frozen=True)
class PredictSpec:
    model: str
    data: str
    out: str
    overwrite: bool
    features: Optional[list[str]]
    batch_size: int
    output: Optional[str]
    # Score only the rows whose column equals the value (as ctx.data.where does in training).
    where: Optional[tuple[str, float]]
    node: str
    script: str
    tf_backend: str
    result_path: str
    # The run's secret and Redis: the driver signs its result on the run's last event with it (envelope.py).
    secret: str
    redis: RedisEndpoint

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "PredictSpec":
        return PredictSpec(
            model=str(d["model"]),
            data=str(d["data"]),
            out=str(d["out"]),
            overwrite=bool(d["overwrite"]),
            features=list(d["features"]) if d.get("features") else None,
            batch_size=int(d["batchSize"]),
            output=d.get("output"),
            where=(str(d["where"]["column"]), float(d["where"]["value"])) if d.get("where") else None,
            node=str(d["node"]),
            script=str(d["script"]),
            tf_backend=str(d["tfBackend"]),
            result_path=str(d["resultPath"]),
            secret=str(d["secret"]),
            redis=RedisEndpoint(str(d["redis"]["url"]), str(d["redis"]["stream"]), d["redis"]["ca"]),
        )


def _progress(sc: Any, job_group: str, stop: threading.Event) -> None:
    """One line on stderr every few seconds while the partitions scored change, and a last one."""
    tracker = sc.statusTracker()
    last = ""
    while True:
        stopped = stop.wait(3)
        done = total = 0
        for job_id in tracker.getJobIdsForGroup(job_group):
            job = tracker.getJobInfo(job_id)
            for stage_id in job.stageIds if job else []:
                stage = tracker.getStageInfo(stage_id)
                if stage:
                    done += stage.numCompletedTasks
                    total += stage.numTasks
        line = f"sparkring predict: {done}/{total} partitions scored"
        if total and line != last:
            print(line, file=sys.stderr, flush=True)
            last = line
        if stopped:
            return


def write_frame(df: Any, out: str, overwrite: bool) -> None:
    fmt = "parquet"
    for ext, f in ((".csv", "csv"), (".json", "json"), (".orc", "orc")):
        if out.endswith(ext):
            fmt = f
    writer = df.write.format(fmt).mode("overwrite" if overwrite else "errorifexists")
    if fmt == "csv":
        writer = writer.option("header", "true")
    writer.save(out)


def run(spec: PredictSpec) -> dict[str, Any]:
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("sparkring-predict").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    stop = threading.Event()
    try:
        with job_envelope(ClassicSpark(spark), spec.result_path, spec.secret, spec.redis) as job:
            score(spark, spec, job, stop)
    finally:
        stop.set()
        spark.stop()
    return job.result


def score(spark: Any, spec: PredictSpec, job: Job, stop: threading.Event) -> None:
    """The scoring's middle: the data read and filtered, the predictions appended and written, the executors released."""
    sc = spark.sparkContext
    result = job.result
    result["out"] = spec.out
    df = read_data(spark, spec.data)
    if spec.where is not None:
        column, value = spec.where
        if column not in df.columns:
            raise JobError(f"--where {column}=...: no such column; the data has {', '.join(df.columns)}", DATA_COLUMN)
        df = df.filter(df[column] == value)
    setup = prepare(spark, df, spec.model, spec.features, spec.batch_size, spec.output, spec.node, spec.script, spec.tf_backend)
    counters = ScoreCounters(sc.accumulator(0), sc.accumulator(0), sc.accumulator(0))
    scored = with_predictions(df, setup, counters)
    if os.path.exists(spec.out) and not spec.overwrite:
        raise JobError(f"--out {spec.out} exists: remove it, or pass --overwrite", DATA_PATH)
    job_group = f"sparkring-predict-{sc.applicationId}"
    sc.setJobGroup(job_group, "sparkring predict")
    progress = threading.Thread(target=_progress, args=(sc, job_group, stop), daemon=True)
    progress.start()
    started = time.time()
    write_frame(scored, spec.out, spec.overwrite)
    stop.set()
    progress.join(timeout=5)
    result["scoreMs"] = (time.time() - started) * 1000
    result["rows"] = counters.rows.value
    result["loads"] = counters.loads.value
    result["tasks"] = counters.tasks.value
    result["output"] = setup.output
    result["features"] = list(setup.features)
    release = ClassicSpark(spark).release_executors()
    result["releaseMs"] = release.released_ms if release else None
    if release and release.remaining:
        result["releaseNote"] = release.line()
    result["ok"] = True
