"""The one lifecycle of a training run, in the Spark driver, for the CLI's spark-submit
(train_job.py) and the Python API (api.py) alike: the slot checks, the attempts (each a barrier
stage in this same Spark application, resuming from the run directory's checkpoints), the run
events, the result files and the executors' release. The failure policy lives here alone: an
attempt is retried unless its error's code is final (error_codes.py) or it was the last; with
--min-workers, a run that lost a host the cluster does not give back goes on with fewer workers
(elastic.py), and that shrink does not count as an attempt."""

from __future__ import annotations

import os
import socket
import sys
import time
from dataclasses import replace
from typing import Any, Callable, Optional

from sparkring.error_codes import DYNAMIC_ALLOCATION, RESIZE, SLOTS, is_final
from sparkring.failures import JobError
from sparkring.driver.elastic import REGAIN_WAIT_S, GrowWatch, give_up_lost_host, grown, resize_request, shrunk, unplaceable_hint
from sparkring.driver.envelope import job_envelope
from sparkring.driver.run_files import experiment_dir, write_json
from sparkring.driver.shared_dir import leave_token, remove_token
from sparkring.driver.slots import SlotNeed, SlotsError
from sparkring.driver.spark_session import DriverSpark, driver_spark
from sparkring.driver.spec import JobSpec
from sparkring.driver.stage import AttemptOutcome, run_attempt


def refuse_dynamic_allocation(driver: DriverSpark) -> None:
    if driver.conf("spark.dynamicAllocation.enabled", "false").lower() == "true":
        raise JobError(
            "spark.dynamicAllocation.enabled=true: Spark barrier stages refuse dynamic allocation (SPARK-24942); "
            "sparkring releases the executors itself when training ends",
            DYNAMIC_ALLOCATION,
        )


def slot_need(driver: DriverSpark, workers: int) -> SlotNeed:
    return SlotNeed(workers, int(driver.conf("spark.task.cpus", "1")), float(driver.conf("spark.task.resource.gpu.amount", "0")))


def wait_for_workers(driver: DriverSpark, spec: JobSpec) -> Optional[float]:
    """Seconds waited until the application has a slot for every worker (SlotsError if it never
    will); None where this session cannot count them (Spark then waits for them itself)."""
    return driver.wait_for_slots(slot_need(driver, spec.workers), spec.slot_wait_seconds)


def attempt_failed_for_good(outcome: AttemptOutcome) -> bool:
    error = outcome.error or {}
    return is_final(str(error.get("code"))) or any(is_final(c) for c in outcome.heard_codes)


def run_job(spark: Any, make_frame: Callable[[], Any], spec: JobSpec) -> dict[str, Any]:
    """Runs the job `spec` in `spark`'s application over the frame `make_frame` gives (read once,
    its plan run by each attempt's stage); returns the result, also written to <run>/result.json,
    spec.result_path and the run's last event (envelope.py). Never raises for a failed run: the result says."""
    from pyspark.sql.pandas.types import to_arrow_schema

    from sparkring.executor.task import make_task

    driver = driver_spark(spark)
    run_dir = spec.run_dir or experiment_dir(spec.experiments, driver.app_id, spec.name)
    os.makedirs(run_dir, exist_ok=True)
    with job_envelope(driver, spec.result_path, spec.secret, spec.redis, keep_in_run_dir=True) as job:
        result, events = job.result, job.events
        result.update(dir=run_dir, workers=spec.workers, attempts=0)
        events.send("driver", stage="started", appId=driver.app_id, dir=run_dir)
        refuse_dynamic_allocation(driver)
        if spec.worker.get("ringEncrypt") is None:  # --ring-encrypt by default where Spark's RPC is encrypted
            spec.worker["ringEncrypt"] = driver.conf("spark.network.crypto.enabled", "false").strip().lower() == "true"
        frame = make_frame()
        schema = to_arrow_schema(frame.schema)
        # Where the run directory was made: over Spark Connect, this client's machine.
        driver_host = socket.gethostname() if driver.connect else driver.conf("spark.driver.host", socket.gethostname())
        workers = spec.workers
        grow_to = spec.max_workers or spec.workers  # --max-workers
        resizes: list[dict[str, Any]] = []
        # Attempts that count against max_attempts: each stage but those that follow a shrink.
        counted = spec.attempt
        attempt = spec.attempt
        last_error: Optional[dict[str, Any]] = None
        follows_resize = False
        # ctx.resized of the stages after a resize (runtime/control.ts).
        resized: Optional[dict[str, Any]] = None
        while counted < spec.max_attempts:
            worker = {**spec.worker, "resized": resized} if resized else spec.worker
            this = replace(spec, attempt=attempt, run_dir=run_dir, workers=workers, worker=worker)
            result["attempts"] = attempt + 1
            counted += 1
            try:
                waited = wait_for_workers(driver, this)
            except SlotsError as e:
                hint = unplaceable_hint(last_error, attempt - 1, spec.min_workers, driver.free_slots(slot_need(driver, workers)))
                raise JobError(f"{e}{hint}", SLOTS) from None
            events.send("driver", stage="slots", waitedMs=None if waited is None else int(waited * 1000))
            events.send(
                "driver", stage="attempt", attempt=attempt, maxAttempts=spec.max_attempts, workers=workers, resized=follows_resize
            )
            token = leave_token(run_dir, attempt)
            watch = (
                GrowWatch(
                    lambda: driver.free_slots(slot_need(driver, grow_to)),
                    workers,
                    grow_to,
                    resize_request(run_dir, attempt),
                )
                if spec.min_workers and workers < grow_to
                else None
            )
            try:
                task = make_task(this, run_dir, schema, token, driver_host)
                outcome = run_attempt(driver, frame, this, task, f"sparkring-{spec.run_id}-{attempt}")
            finally:
                remove_token(run_dir, attempt)
                if watch is not None:
                    watch.stop()
            if outcome.ok:
                ranks = outcome.ranks or []
                result["ranks"] = ranks
                result["result"] = ranks[0].get("result") if ranks else None
                result["stageMs"] = (outcome.finished - outcome.started) * 1000
                result["trainEndAt"] = int(outcome.finished * 1000)
                result["releaseMs"] = None
                if spec.release_executors and not spec.release_after_result:
                    release = driver.release_executors()
                    if release is not None:
                        result["releaseMs"] = release.released_ms
                        events.send("driver", stage="released", releaseMs=result["releaseMs"], line=release.line())
                result["ok"] = True
                break
            if watch is not None and (outcome.error or {}).get("code") == RESIZE:
                grow = grown(workers, grow_to, driver.free_slots(slot_need(driver, grow_to)))
                counted -= 1  # growing is never a failure
                follows_resize = True
                workers = grow.to_workers
                resized = grow.worker_note()
                resizes.append({"attempt": attempt, **grow.event()})
                result.update(workers=workers, resizes=resizes)
                events.send("driver", stage="resized", attempt=attempt, grew=True, line=grow.line(spec.min_workers or 0), **grow.event())
                attempt += 1
                continue
            result.update(ok=False, error=outcome.error)
            last_error = outcome.error
            if attempt_failed_for_good(outcome) or (counted >= spec.max_attempts and not spec.min_workers):
                break
            lost_host = outcome.lost_host
            given_up = lost_host.executors if lost_host else give_up_lost_host(driver, outcome.error)
            need = slot_need(driver, workers)
            # The cluster's time to give the slots back runs from the loss, where the host watch saw it.
            wait_s = max(0.0, REGAIN_WAIT_S - (time.time() - lost_host.at)) if lost_host else REGAIN_WAIT_S
            resize = shrunk(driver, need, spec.min_workers, outcome.error, given_up, wait_s) if spec.min_workers else None
            follows_resize = resize is not None
            if resize is not None:
                counted -= 1  # a shrink is not a retry: the run goes on
                workers = resize.to_workers
                resized = resize.worker_note()
                resizes.append({"attempt": attempt, **resize.event()})
                result.update(workers=workers, resizes=resizes)
                events.send(
                    "driver",
                    stage="resized",
                    attempt=attempt,
                    error=outcome.error,
                    line=resize.line(spec.min_workers or 0),
                    **resize.event(),
                )
            elif counted >= spec.max_attempts:
                break
            else:
                events.send("driver", stage="retry", attempt=attempt, error=outcome.error, failedAt=int(outcome.finished * 1000))
            attempt += 1
    if result.get("ok") and spec.release_executors and spec.release_after_result:
        release_after_result(driver, result)
    return result


def release_after_result(driver: DriverSpark, result: dict[str, Any]) -> None:
    """The release once the client has its result (it may have gone): recorded in the run
    directory's result.json, and said on the driver's output, not on the run's events."""
    release = driver.release_executors()
    if release is None:
        return
    result["releaseMs"] = release.released_ms
    write_json(os.path.join(str(result["dir"]), "result.json"), result)
    print(f"sparkring: {release.line()}", file=sys.stderr, flush=True)
