"""Hyperparameter search, the driver's half: the non-barrier twin of the training job.

The driver runs rounds of one search task per executor (search_tasks.py) until every trial has its
final result: a trial whose executor died after the others left goes back to the queue (the client
reaps expired leases) and gets a new round. Dynamic allocation stays on, so executors go back to the
cluster as the queue drains. The search's middle runs inside the job envelope (envelope.py).
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from typing import Any, Callable, Iterator, Optional

from sparkring.error_codes import SEARCH
from sparkring.driver.envelope import Job, job_envelope
from sparkring.failures import JobError, find_failure
from sparkring.driver.driver_events import EventSender, connect as connect_redis
from sparkring.driver.spark_session import DriverSpark, driver_spark
from sparkring.driver.run_files import experiment_dir
from sparkring.executor.search_tasks import AGENT_SCHEMA, SearchSpec, make_agent_task

# How long the driver waits, after the last trial, for the executors to go back (for the result's releaseMs).
RELEASE_TIMEOUT_S = 60.0


class ExecutorWatch:
    """Polls the application's executors, remembering when each was last seen (for release timing);
    idle where the session cannot list them (Spark Connect)."""

    def __init__(self, driver: DriverSpark) -> None:
        self._driver = driver
        self._stop = threading.Event()
        self.gone_at: dict[str, float] = {}
        self.present: set[str] = set()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                listed = self._driver.executor_ids()
            except Exception:  # the context is stopping
                return
            if listed is None:
                return
            now = set(listed)
            at = time.time()
            for gone in self.present - now:
                self.gone_at[gone] = at
            for back in now:
                self.gone_at.pop(back, None)
            self.present = now
            time.sleep(0.05)

    def wait_all_gone(self, timeout_s: float) -> Optional[float]:
        """The time the last executor went away, or None if some are still there after timeout_s."""
        deadline = time.time() + timeout_s
        while self.present and time.time() < deadline:
            time.sleep(0.05)
        if self.present:
            return None
        return max(self.gone_at.values(), default=time.time())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def round_job(driver: DriverSpark, tasks: int, task: Callable[[Iterator[Any]], Iterator[Any]]) -> Callable[[], Any]:
    """One round's job: `task` in each of `tasks` tasks. A classic session runs it as an RDD job,
    which starts at once. The first DataFrame of a session first starts its SQL catalog and analyzer
    (1.5-3 s here), and executors that registered meanwhile sit idle: dynamic allocation gives back an
    executor idle for executorIdleTimeout (2 s), so the first round lost its executors and waited for
    new ones. A Spark Connect session has only the DataFrame API."""
    if driver.connect:
        return driver.spark.range(0, tasks, 1, tasks).mapInArrow(task, AGENT_SCHEMA).collect
    return driver.spark.sparkContext.parallelize(range(tasks), tasks).mapPartitions(task).collect


def run_round(driver: DriverSpark, group: str, collect: Callable[[], Any], r: Any, spec: SearchSpec, events: EventSender) -> None:
    """Runs one round of agent tasks. A task whose agent hangs or is frozen holds no lease once
    the client reaped its trial, and would keep the round (and the search) waiting for ever: when
    no trial has run for `idle_round_leases` leases while the round's tasks are still there, the round is
    cancelled, and the search goes on with a new round for what waits."""
    outcome: dict[str, BaseException] = {}

    def body() -> None:
        try:
            with driver.job_scope(group, "sparkring search round"):
                collect()
        except BaseException as e:  # handed to the caller
            outcome["error"] = e

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    idle_since: Optional[float] = None
    while thread.is_alive():
        try:
            thread.join(timeout=0.5)
        except KeyboardInterrupt:  # the caller's Ctrl-C reaches this thread, not the round's
            driver.cancel(group)
            thread.join(timeout=30)
            raise
        if not thread.is_alive():
            break
        try:
            idle = int(r.scard(spec.running_key)) == 0
        except Exception:  # Redis restarting: keep waiting
            idle = False
        idle_since = (idle_since or time.time()) if idle else None
        if idle_since is not None and time.time() - idle_since > spec.idle_round_leases * spec.lease_ms / 1000:
            events.send(
                "driver", stage="round-cancelled", reason=f"no trial ran for {spec.idle_round_leases} leases while a search task still ran"
            )
            driver.cancel(group)
            thread.join(timeout=60)
            return
    if "error" in outcome:
        raise outcome["error"]


def run(spec: SearchSpec) -> dict[str, Any]:
    """The search of a spark-submit: its own SparkSession, whose executors go back to the cluster
    as the queue drains (releaseMs times that), stopped when the search ends."""
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName(f"sparkring-search-{spec.name}").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    try:
        return run_search(spark, spec, time_release=True)
    finally:
        spark.stop()


def run_search(spark: Any, spec: SearchSpec, time_release: bool) -> dict[str, Any]:
    """Rounds of agent tasks on `spark` until every trial has its final result; the result as
    result.json and the signed last event (envelope.py). `time_release`: wait (up to RELEASE_TIMEOUT_S)
    for the executors to go, for the result's releaseMs; off in a caller's session, whose executors stay."""
    driver = driver_spark(spark)
    run_dir = experiment_dir(spec.experiments, driver.app_id, spec.name)
    os.makedirs(os.path.join(run_dir, "logs"), exist_ok=True)
    r = connect_redis(spec.redis, timeout_s=30)
    watch = ExecutorWatch(driver)
    try:
        with job_envelope(driver, spec.result_path, spec.secret, spec.redis) as job:
            job.result.update(dir=run_dir, executors=spec.executors)
            job.events.send("driver", stage="started", appId=driver.app_id, dir=run_dir)
            run_rounds(driver, spec, r, watch, job, time_release)
    finally:
        watch.stop()
        r.close()
    return job.result


def run_rounds(driver: DriverSpark, spec: SearchSpec, r: Any, watch: ExecutorWatch, job: Job, time_release: bool) -> None:
    """The search's middle: rounds of agent tasks while trials wait or run, each round one job
    of a task per executor (round_job)."""
    events = job.events
    task = make_agent_task(spec, str(job.result["dir"]))
    rounds = 0
    failed_rounds = 0
    last_round_end: Optional[float] = None
    while True:
        pending, running = int(r.llen(spec.pending_key)), int(r.scard(spec.running_key))
        if pending == 0 and running == 0:
            break
        if pending == 0:
            # Trials of executors that died after the others left: their leases run out and the
            # client puts them back. Without the client nobody would.
            if not r.exists(spec.client_key):
                raise JobError(
                    f"{running} trials lost their executors and the client that launched the search is gone; "
                    "nothing can put them back in the queue",
                    SEARCH,
                )
            time.sleep(0.2)
            continue
        tasks = min(spec.executors, pending)
        rounds += 1
        events.send("driver", stage="round", round=rounds, tasks=tasks, pending=pending)
        try:
            run_round(driver, f"sparkring-search-{spec.run_id}-{rounds}", round_job(driver, tasks, task), r, spec, events)
        except Exception as e:  # the stage failed: excluded executors, or lost ones beyond retries
            if driver.stopped():
                raise JobError("the Spark application was stopped", SEARCH) from None
            failed_rounds += 1
            failure = find_failure(f"{e}\n{traceback.format_exc()}")
            reason = failure.message if failure else (str(e).strip().splitlines() or [type(e).__name__])[0]
            events.send("driver", stage="round-failed", round=rounds, reason=reason)
            if failed_rounds >= spec.max_failed_rounds:
                raise JobError(f"{failed_rounds} rounds of search tasks failed; the last: {reason}", SEARCH) from None
        last_round_end = time.time()
    result = job.result
    result["rounds"] = rounds
    result["lastTrialEndAt"] = int((last_round_end or time.time()) * 1000)
    result["releaseMs"] = None
    if time_release:
        gone = watch.wait_all_gone(RELEASE_TIMEOUT_S)
        result["releaseMs"] = None if gone is None or last_round_end is None else max(0.0, gone - last_round_end) * 1000
        events.send("driver", stage="released", releaseMs=result["releaseMs"])
    result["ok"] = True
