"""One attempt of a training run: the barrier stage over the frame's W partitions, and what its
failure was (the worker's own report, data an executor could not open, a lost executor, a silent
worker), as an error report. Never raises: lifecycle.py decides what comes next."""

from __future__ import annotations

import json
import re
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Optional

from sparkring.error_codes import DATA_COLUMN, DATA_PATH, EXECUTOR_LOST, SPARK, WORKER_SILENT
from sparkring.failures import JOB_WIDE, JobError, error_report, find_failure
from sparkring.driver.heartbeats import HeartbeatWatch
from sparkring.driver.host_watch import HostWatch, LostHost
from sparkring.driver.lost import LostTask, describe
from sparkring.driver.spark_session import DriverSpark
from sparkring.driver.spec import JobSpec


@dataclass
class AttemptOutcome:
    ok: bool
    # By rank: each worker's report (task.py), when ok.
    ranks: Optional[list[dict[str, Any]]] = None
    error: Optional[dict[str, Any]] = None
    # Codes of the errors the workers reported themselves during the attempt.
    heard_codes: tuple[str, ...] = ()
    started: float = 0.0
    finished: float = 0.0
    # The host the host watch found gone (its executors removed already), where that ended the attempt.
    lost_host: Optional[LostHost] = None


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
        return error_report(
            failure.code,
            failure.message,
            rank=failure.rank,
            stack=failure.stack,
            logTail=failure.log_tail,
            lostPeer=failure.lost_peer,
            host=failure.host,
            phase=failure.phase,
        )
    unread = unreadable_data(data, text)
    if unread is not None:
        return error_report(DATA_PATH, unread)
    gone = lost()
    if gone is not None:
        return error_report(
            EXECUTOR_LOST, describe(gone), rank=gone.rank, detail=text[-4000:], lostPeer={"rank": gone.rank, "host": gone.host}
        )
    return error_report(SPARK, first_line, detail=text[-4000:])


def planned_partitions(df: Any) -> Optional[int]:
    """How many partitions the frame's plan has, where Spark can say without running anything: a
    plan with no exchange or subquery (a file scan, with its filters and projections), whose
    execute() only builds RDDs. None otherwise (executing an adaptive plan runs its shuffles), and
    over Spark Connect (no JVM handle)."""
    try:
        plan = df._jdf.queryExecution().executedPlan()
        if any(word in str(plan.toString()) for word in ("Exchange", "Subquery", "AdaptiveSparkPlan")):
            return None
        return int(plan.execute().getNumPartitions())
    except Exception:
        return None


def partitioned(df: Any, spec: JobSpec) -> Any:
    """The frame as the barrier stage's W partitions, one per worker. A frame Spark already plans as
    W partitions goes as it is (each rank reads its own splits, as XGBoost's Spark estimator feeds
    them): no shuffle before the stage. Otherwise a round-robin repartition deals the rows."""
    if spec.partition_by is None:
        return df if planned_partitions(df) == spec.workers else df.repartition(spec.workers)
    if spec.partition_by not in df.columns:
        raise JobError(
            f"--partition-by {spec.partition_by}: no such column; the data has {', '.join(df.columns)}",
            DATA_COLUMN,
        )
    return df.repartition(spec.workers, spec.partition_by)


def run_attempt(driver: DriverSpark, frame: Any, spec: JobSpec, task: Any, job_group: str) -> AttemptOutcome:
    """The barrier stage of attempt `spec.attempt` in job group (or tag) `job_group`, watched for
    silent workers where the run has Redis (a silent worker cancels the group)."""
    from sparkring.executor.task import RESULT_SCHEMA

    watch = (
        HeartbeatWatch(
            spec.redis,
            spec.heartbeat_timeout_ms,
            lambda _rank, _s: driver.cancel(job_group),
            spec.attempt,
            spec.secret,
            spec.workers,
        )
        if spec.redis is not None
        else None
    )
    hosts = (
        HostWatch(lambda: driver.placed_tasks(job_group) or [], driver.give_up_executors, lambda: driver.cancel(job_group))
        if not driver.connect  # a Connect client has no status store to see the tasks' placement in
        else None
    )
    started = time.time()
    try:
        with driver.job_scope(job_group, f"sparkring {spec.name} attempt {spec.attempt + 1}"):
            rows = partitioned(frame, spec).mapInArrow(task, RESULT_SCHEMA, barrier=True).collect()
        per_rank = {int(r["rank"]): json.loads(r["result"]) for r in rows}
        return AttemptOutcome(True, ranks=[per_rank[k] for k in sorted(per_rank)], started=started, finished=time.time())
    except JobError as e:
        return AttemptOutcome(False, error=error_report(e.code, str(e)), started=started, finished=time.time())
    except Exception as e:  # the barrier stage failed: find the worker's own report
        silent = watch.silent if watch is not None else None
        lost_host = hosts.lost if hosts is not None else None
        if lost_host is not None:
            error = lost_host.error()
        elif silent is not None:
            rank, seconds = silent
            error = error_report(WORKER_SILENT, f"worker {rank} sent no heartbeat for {round(seconds)} s", rank=rank)
        else:
            lines = [ln for ln in str(e).splitlines() if ln.strip()]
            error = stage_error(
                f"{e}\n{traceback.format_exc()}",
                spec.data,
                lambda: driver.first_lost(job_group),
                lines[0] if lines else type(e).__name__,
            )
        return AttemptOutcome(
            False,
            error=error,
            heard_codes=tuple(watch.codes) if watch else (),
            started=started,
            finished=time.time(),
            lost_host=lost_host,
        )
    finally:
        if watch is not None:
            watch.stop()
        if hosts is not None:
            hosts.stop()
