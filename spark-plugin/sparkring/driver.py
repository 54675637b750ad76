"""spark-submit entry point: runs one sparkring training job as a Spark barrier stage.

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
from typing import Any, Optional

from sparkring.errors import JobError, find_failure
from sparkring.events import EventSender, signed_result
from sparkring.lost import describe, first_lost
from sparkring.shared_dir import NOT_SHARED, leave_token, remove_token
from sparkring.slots import SlotNeed, SlotsError, local_cluster_shape, wait_for_slots
from sparkring.spec import JobSpec

NUMERIC = ("byte", "short", "int", "long", "float", "double", "boolean")


def experiment_dir(experiments: str, app_id: str, name: str) -> str:
    """<experiments>/<appId>/run.<n>/<name>/ with the next free n (HopsML's layout)."""
    base = os.path.join(experiments, app_id)
    os.makedirs(base, exist_ok=True)
    n = 1
    while True:
        candidate = os.path.join(base, f"run.{n}", name)
        try:
            os.makedirs(candidate)
            return candidate
        except FileExistsError:
            n += 1


def write_json(path: str, value: Any) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)
    os.replace(tmp, path)


def write_result(path: str, value: Any) -> None:
    """The client's copy of the result; a driver on another machine than the client may fail to write it."""
    try:
        write_json(path, value)
    except OSError as e:
        print(f"sparkring: could not write the result to {path} ({e}); the client reads it from the run's events", file=sys.stderr)


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


# Failures that the same cluster would repeat on every attempt.
SETUP_CODES = (NOT_SHARED,)


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


def load_frame(spark: Any, spec: JobSpec) -> Any:
    if spec.data is None:
        return spark.range(spec.workers)
    path = spec.data
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
            raise JobError(unread) from None
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise JobError(f"cannot read --data {path}: {first}") from None


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
                "sparkring releases the executors itself when training ends"
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
        import pyarrow as pa
        from pyspark.sql.pandas.types import to_arrow_schema

        from sparkring.task import RESULT_SCHEMA, make_task

        schema = to_arrow_schema(df.schema)
        token = leave_token(run_dir, spec.attempt)
        driver_host = conf.get("spark.driver.host", socket.gethostname())
        task = make_task(spec, run_dir, schema, token, driver_host)
        started = time.time()
        sc.setJobGroup(job_group, f"sparkring {spec.name} attempt {spec.attempt + 1}")
        rows = df.repartition(spec.workers).mapInArrow(task, RESULT_SCHEMA, barrier=True).collect()
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
        del pa
    except SlotsError as e:
        result.update(ok=False, error={"message": str(e), "kind": "slots"})
    except JobError as e:
        result.update(ok=False, error={"message": str(e), "kind": "job"})
    except Exception as e:  # the barrier stage failed: find the worker's own report
        text = f"{e}\n{traceback.format_exc()}"
        failure = find_failure(text)
        unread = unreadable_data(spec.data, text)
        if failure is not None and failure.code in SETUP_CODES:
            result.update(ok=False, error={"kind": "setup", "code": failure.code, "message": failure.message})
        elif failure is not None:
            result.update(
                ok=False,
                error={
                    "kind": "worker",
                    "rank": failure.rank,
                    "message": failure.message,
                    "stack": failure.stack,
                    "logTail": failure.log_tail,
                },
            )
        elif unread is not None:
            result.update(ok=False, error={"kind": "job", "code": "SR_DATA_PATH", "message": unread})
        elif (lost := first_lost(sc, job_group)) is not None:
            result.update(ok=False, error={"kind": "worker", "rank": lost.rank, "message": describe(lost), "detail": text[-4000:]})
        else:
            lines = [ln for ln in str(e).splitlines() if ln.strip()]
            result.update(ok=False, error={"kind": "spark", "message": lines[0] if lines else type(e).__name__, "detail": text[-4000:]})
    finally:
        remove_token(run_dir, spec.attempt)
        write_json(os.path.join(run_dir, "result.json"), result)
        write_result(spec.result_path, result)
        # The result rides on the last event too, for a client on another machine than the driver.
        events.send("driver", stage="done", ok=result.get("ok", False), **signed_result(spec.secret, result))
        events.close()
        spark.stop()
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: driver.py SPEC.json", file=sys.stderr)
        return 2
    spec_path = argv[1]
    if not os.path.exists(spec_path) and os.path.exists(os.path.basename(spec_path)):
        spec_path = os.path.basename(spec_path)  # cluster mode: the spec came with the job's files
    with open(spec_path, encoding="utf-8") as f:
        raw = json.load(f)
    if raw.get("kind") == "search":
        from sparkring import search

        result = search.run(search.SearchSpec.from_dict(raw))
    else:
        result = run(JobSpec.from_dict(raw))
    if not result.get("ok"):
        error = result.get("error") or {}
        who = f"worker {error['rank']} failed: " if error.get("kind") == "worker" else ""
        # One line for whoever reads only the driver's output (a Livy batch's log).
        print(f"sparkring: {who}{error.get('message', 'the job failed')}", file=sys.stderr)
    return 0 if result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
