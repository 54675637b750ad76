"""One sparkring training job submitted with spark-submit (submit.py runs it), reading its data
from --data, through the run lifecycle (lifecycle.py):

    spark-submit ... spark-plugin/sparkring_submit.py spec.json
"""

from __future__ import annotations

from typing import Any

from sparkring.error_codes import DATA_PATH
from sparkring.failures import JobError
from sparkring.driver.lifecycle import run_job
from sparkring.driver.spec import JobSpec
from sparkring.driver.stage import unreadable_data


def load_frame(spark: Any, spec: JobSpec) -> Any:
    if spec.data is None:
        return spark.range(spec.workers)
    return read_data(spark, spec.data)


def read_data(spark: Any, path: str, flag: str = "--data") -> Any:
    """The table at `path` (parquet, or by extension csv, json, orc); an error names the flag."""
    fmt = "parquet"
    for ext, f in ((".csv", "csv"), (".json", "json"), (".orc", "orc")):
        if path.endswith(ext):
            fmt = f
    reader = spark.read.format(fmt)
    if fmt == "csv":
        reader = reader.option("header", "true").option("inferSchema", "true")
    try:
        return reader.load(path)
    except Exception as e:  # AnalysisException: path does not exist, unreadable format
        # Reading parquet's schema runs a job: an executor that cannot open the file fails it.
        unread = unreadable_data(path, str(e))
        if unread is not None:
            raise JobError(unread, DATA_PATH) from None
        raise JobError(f"cannot read {flag} {path}: {cause_line(str(e)) or type(e).__name__}", DATA_PATH) from None


def cause_line(text: str) -> str:
    """The line of an error's text that says why: past Py4J's own "An error occurred while calling
    o274.load." (a Java exception: the JVM's message follows, after ": "), else the first line."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    for ln in lines:
        if not ln.startswith("An error occurred while calling"):
            return ln.removeprefix(": ").strip()
    return lines[0] if lines else ""


def run(spec: JobSpec) -> dict[str, Any]:
    """The job of a spark-submit: its own SparkSession, stopped when the run ends."""
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName(f"sparkring-{spec.name}").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        return run_job(spark, lambda: load_frame(spark, spec), spec)
    finally:
        spark.stop()
