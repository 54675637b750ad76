"""One sparkring training job as a Spark barrier stage, in the Spark driver (submit.py runs it):

    spark-submit ... spark-plugin/sparkring_submit.py spec.json
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import time
import traceback
from typing import Any, Callable, Optional

from sparkring.codes import DATA_COLUMN, DATA_PATH, DYNAMIC_ALLOCATION, EXECUTOR_LOST, SLOTS, SPARK
from sparkring.errors import JOB_WIDE, JobError, error_report, find_failure
from sparkring.events import EventSender, signed_result
from sparkring.executors import executor_ids, release_executors
from sparkring.lost import LostTask, describe, first_lost
from sparkring.run_files import experiment_dir, write_json, write_result
from sparkring.shared_dir import leave_token, remove_token
from sparkring.slots import SlotNeed, SlotsError, local_cluster_shape, wait_for_slots
from sparkring.spec import JobSpec


def unreadable_data(data: Optional[str], text: str) -> Optional[str]:
    """The line for --data that the driver could list but an executor could not open (a path only
    the client's machine has), from the stage failure's text; None when that is not what happened."""
    if data is None or not re.search(r"FileNotFoundException|FILE_NOT_EXIST", text):
        return None
    where = re.search(r"\(([^()\s]+) executor ([^()\s]+)\)", text)
    host = f"the executor on host {where.group(1)}" if where else "an executor"
    return (
        f"cannot read --data {data}: {host} cannot open it (the path exists where the driver runs, not there); "
        "put the data where every executor host reads it: a shared mount at the same path, HDFS or S3"
    )


def stage_error(text: str, data: Optional[str], lost: Callable[[], Optional[LostTask]], first_line: str) -> dict[str, Any]:
    """The error report of a failed barrier stage, from Spark's exception text: the worker's own
    failure where a task marked one, else --data an executor could not open, else a lost executor,
    else Spark's first line."""
    failure = find_failure(text)
    if failure is not None and failure.code in JOB_WIDE:
        return error_report(failure.code, failure.message)
    if failure is not None:
        return error_report(failure.code, failure.message, rank=failure.rank, stack=failure.stack, logTail=failure.log_tail)
    unread = unreadable_data(data, text)
    if unread is not None:
        return error_report(DATA_PATH, unread)
    gone = lost()
    if gone is not None:
        return error_report(EXECUTOR_LOST, describe(gone), rank=gone.rank, detail=text[-4000:])
    return error_report(SPARK, first_line, detail=text[-4000:])


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
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise JobError(f"cannot read {flag} {path}: {first}", DATA_PATH) from None


def partitioned(df: Any, spec: JobSpec) -> Any:
    """The frame as the barrier stage's W partitions, one per worker."""
    if spec.partition_by is None:
        return df.repartition(spec.workers)
    if spec.partition_by not in df.columns:
        raise JobError(
            f"--partition-by {spec.partition_by}: no such column; the data has {', '.join(df.columns)}",
            DATA_COLUMN,
        )
    return df.repartition(spec.workers, spec.partition_by)


def run(spec: JobSpec) -> dict[str, Any]:
    from pyspark.sql import SparkSession

    events = EventSender(spec.redis, "driver")
    spark = SparkSession.builder.appName(f"sparkring-{spec.name}").getOrCreate()
    sc = spark.sparkContext
    sc.setLogLevel("ERROR")
    conf = sc.getConf()
    app_id = sc.applicationId
    run_dir = spec.run_dir or experiment_dir(spec.experiments, app_id, spec.name)
    os.makedirs(run_dir, exist_ok=True)
    events.send("driver", stage="started", appId=app_id, dir=run_dir)
    job_group = f"sparkring-{spec.run_id}-{spec.attempt}"
    result: dict[str, Any] = {
        "appId": app_id,
        "dir": run_dir,
        "workers": spec.workers,
        "attempt": spec.attempt,
        "versions": {"spark": spark.version, "python": sys.version.split()[0], "master": sc.master},
    }
    try:
        if conf.get("spark.dynamicAllocation.enabled", "false").lower() == "true":
            raise JobError(
                "spark.dynamicAllocation.enabled=true: Spark barrier stages refuse dynamic allocation (SPARK-24942); "
                "sparkring releases the executors itself when training ends",
                DYNAMIC_ALLOCATION,
            )
        need = SlotNeed(spec.workers, int(conf.get("spark.task.cpus", "1")), float(conf.get("spark.task.resource.gpu.amount", "0")))
        jsc = sc._jsc.sc()
        profile = jsc.resourceProfileManager().defaultResourceProfile()
        master = sc.master
        waited = wait_for_slots(
            need,
            master,
            lambda: int(jsc.maxNumConcurrentTasks(profile)),
            lambda: len(executor_ids(sc)),
            spec.slot_wait_seconds,
            local_cluster_shape(master, float(conf.get("spark.executor.resource.gpu.amount", "0"))),
        )
        events.send("driver", stage="slots", waitedMs=int(waited * 1000))

        df = load_frame(spark, spec)
        from pyspark.sql.pandas.types import to_arrow_schema

        from sparkring.task import RESULT_SCHEMA, make_task

        schema = to_arrow_schema(df.schema)
        token = leave_token(run_dir, spec.attempt)
        driver_host = conf.get("spark.driver.host", socket.gethostname())
        task = make_task(spec, run_dir, schema, token, driver_host)
        started = time.time()
        sc.setJobGroup(job_group, f"sparkring {spec.name} attempt {spec.attempt + 1}")
        rows = partitioned(df, spec).mapInArrow(task, RESULT_SCHEMA, barrier=True).collect()
        finished = time.time()
        per_rank = {int(r["rank"]): json.loads(r["result"]) for r in rows}
        result["ranks"] = [per_rank[k] for k in sorted(per_rank)]
        result["result"] = per_rank.get(0, {}).get("result")
        result["stageMs"] = (finished - started) * 1000
        result["trainEndAt"] = int(finished * 1000)
        release_ms = release_executors(sc) if spec.release_executors else None
        result["releaseMs"] = release_ms
        events.send("driver", stage="released", releaseMs=release_ms)
        result["ok"] = True
    except SlotsError as e:
        result.update(ok=False, error=error_report(SLOTS, str(e)))
    except JobError as e:
        result.update(ok=False, error=error_report(e.code, str(e)))
    except Exception as e:  # the barrier stage failed: find the worker's own report
        lines = [ln for ln in str(e).splitlines() if ln.strip()]
        result.update(
            ok=False,
            error=stage_error(
                f"{e}\n{traceback.format_exc()}", spec.data, lambda: first_lost(sc, job_group), lines[0] if lines else type(e).__name__
            ),
        )
    finally:
        remove_token(run_dir, spec.attempt)
        write_json(os.path.join(run_dir, "result.json"), result)
        write_result(spec.result_path, result)
        # The result rides on the last event too, for a client on another machine than the driver.
        events.send("driver", stage="done", ok=result.get("ok", False), **signed_result(spec.secret, result))
        events.close()
        spark.stop()
    return result
