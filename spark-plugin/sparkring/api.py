"""The Python API: TypeScript training on the caller's own SparkSession and DataFrame.

    import sparkring
    run = sparkring.allreduce("train.ts", df, num_workers=2, hparams={"lr": 0.1}, max_attempts=3)
    run.result, run.attempts, run.dir
    search = sparkring.launch("trial.ts", grid={"lr": [0.1, 0.01]}, metric="loss", executors=2)
    search.best, search.trials

The DataFrame goes to the barrier stage as it stands: its plan runs in each attempt's stage,
straight into the workers' Arrow handoff, with nothing written on the way. This process is the
run's Spark driver (lifecycle.py, as for spark-submit); a Node process beside it (`sparkring
session`, src/client/jobs/session.ts) does the client's half: the compiled entry, the run's Redis,
its progress and its files.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Optional

from sparkring.error_codes import SPARK_CONNECT
from sparkring.driver.lifecycle import run_job
from sparkring.caller_progress import LineProgress, progress_for
from sparkring.executor.runtime_home import CLI, node_binary, runtime_home
from sparkring.driver.search_rounds import run_search
from sparkring.executor.search_tasks import SearchSpec
from sparkring.driver.spec import JobSpec
from sparkring.driver.spark_session import connect_refusal, driver_spark, is_connect, is_loopback


class RunError(RuntimeError):
    """A failed run: `kind` (input, setup, worker, slots, job, spark), the worker's `rank` and `stack`
    where a worker failed, the machine-readable `code` (error_codes.py) and the run's `dir` where it has one."""

    def __init__(
        self,
        message: str,
        kind: str,
        code: Optional[str] = None,
        rank: Optional[int] = None,
        stack: Optional[str] = None,
        dir: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.rank = rank
        self.stack = stack
        self.dir = dir


@dataclass(frozen=True)
class Run:
    """A finished run: rank 0's return value and what the run recorded."""

    result: Any
    attempts: int
    dir: str
    run_id: str
    app_id: str
    metrics: dict[str, float]
    timings: dict[str, Optional[float]]
    backends: list[str]
    # Each rank's report: host, rows, backend, handoff, timings.
    ranks: list[dict[str, Any]] = field(repr=False)


def active_session(df: Any, spark: Any, what: str) -> Any:
    if spark is None and df is not None:
        spark = df.sparkSession
    if spark is None:
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
    if spark is None:
        raise RunError("no active SparkSession: create one (SparkSession.builder...getOrCreate()) or pass spark=", "input")
    if is_connect(spark):
        import pyspark

        refusal = connect_refusal(what, pyspark.__version__, str(spark.version))
        if refusal is not None:
            raise RunError(refusal, "input", code=SPARK_CONNECT)
    return spark


class _Session:
    """The Node side of the run (`sparkring session`) and its messages. Once a run's first metrics
    arrive (or the run ends) one more is started and waits for the next run's options, so that
    Node's start-up is off that run's clock; it exits when this process does (its stdin closes)."""

    _spare: Optional["_Session"] = None
    # The reader thread of a running session starts the spare too (_read).
    _spare_lock = threading.Lock()

    @classmethod
    def open(cls, progress: LineProgress) -> "_Session":
        with cls._spare_lock:
            spare, cls._spare = cls._spare, None
        if spare is not None and spare._fits():
            spare._progress = progress
            return spare
        if spare is not None:
            spare.close()
        return cls(progress)

    @classmethod
    def keep_spare(cls) -> None:
        with cls._spare_lock:
            if cls._spare is None:
                try:
                    cls._spare = cls(None)
                except OSError:  # no Node: the next run says so itself
                    pass

    def __init__(self, progress: Optional[LineProgress]) -> None:
        home = runtime_home()
        self._cwd = os.getcwd()
        self._env = dict(os.environ)
        self._proc = subprocess.Popen(
            [node_binary(), os.path.join(home, CLI), "session"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self._cwd,
        )
        self._replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self._progress = progress
        self._spare_asked = False
        threading.Thread(target=self._read, args=(self._proc.stdout,), daemon=True).start()
        threading.Thread(target=self._relay, args=(self._proc.stderr,), daemon=True).start()

    def _fits(self) -> bool:
        """Whether this (spare) process was started as one started now would be."""
        return self._proc.poll() is None and self._cwd == os.getcwd() and self._env == dict(os.environ)

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            kind = message.get("type")
            if kind == "line" and self._progress is not None:
                self._progress.line(str(message["line"]))
            elif kind == "event" and self._progress is not None:
                event = dict(message["event"])
                self._progress.event(event)
                # The run's first metrics: its start-up is over, so the next run's session process
                # starts now (Node's start, 0.3 s, off both runs' start), not when this one returns,
                # as the next call may follow at once.
                if event.get("type") == "metrics" and not self._spare_asked:
                    self._spare_asked = True
                    _Session.keep_spare()
            else:
                self._replies.put(message)
        self._replies.put({"type": "error", "error": {"kind": "setup", "message": self._ended()}})

    def _ended(self) -> str:
        code = self._proc.wait()
        return f"the sparkring session process ended (status {code}) before it answered; its output is above"

    def _relay(self, stream: IO[bytes]) -> None:
        for raw in stream:  # Node's own warnings; the caller sees them where they see progress
            print(raw.decode(errors="replace").rstrip("\n"), file=sys.stderr, flush=True)

    def send(self, message: dict[str, Any]) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write((json.dumps(message) + "\n").encode())
        self._proc.stdin.flush()

    def reply(self) -> dict[str, Any]:
        message = self._replies.get()
        if message.get("type") == "error":
            e = message.get("error") or {}
            raise RunError(
                str(e.get("message", "the run failed")),
                str(e.get("kind", "spark")),
                code=e.get("code"),
                rank=e.get("rank"),
                stack=e.get("stack"),
                dir=e.get("dir"),
            )
        return message

    def close(self) -> None:
        if self._proc.stdin is not None and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()
            except BrokenPipeError:  # it ended first (an interrupt reached it too); its exit status is read below
                pass
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _drive(job: str, options: dict[str, Any], shown: LineProgress, spark: Any, drive: Callable[[str], Any]) -> dict[str, Any]:
    """One job through the session: its options to the Node side, the runtime archive it built
    (where the run ships one) added to the session, `drive(spec_path)` (this process's driver)
    between its spec and its result."""
    session = _Session.open(shown)
    try:
        session.send({"type": "options", "job": job, "options": options})
        spec = session.reply()
        try:
            if spec.get("archive"):
                driver_spark(spark).add_archive(str(spec["archive"]))
            drive(str(spec["path"]))
        except BaseException:
            try:
                session.send({"type": "abandoned"})
            except OSError:  # the session process is gone already; the caller's exception is the news
                pass
            raise
        session.send({"type": "ran"})
        return dict(session.reply()["result"])
    finally:
        session.close()
        shown.close()
        _Session.keep_spare()


def _given(**options: Any) -> dict[str, Any]:
    """The options the caller gave: the rest take their one default on the Node side
    (src/client/jobs/options.ts, search-options.ts), which the session applies."""
    return {k: v for k, v in options.items() if v is not None}


def _job_options(
    entry: str,
    spark: Any,
    experiments: Optional[str],
    name: Optional[str],
    tf_backend: Optional[str],
    redis: Optional[str],
    ship: Optional[bool],
) -> dict[str, Any]:
    driver = driver_spark(spark)
    options: dict[str, Any] = {"entry": os.path.abspath(entry), "master": driver.master}
    if driver.connect:
        # The server's master may be local to its machine, which is not necessarily this one; a
        # server elsewhere gets the runtime and the entry shipped, unless the caller says otherwise.
        host = str(spark.client.host)
        options["clusterHost"] = host
        if ship is None:
            ship = not is_loopback(host)
    return {
        **options,
        **_given(
            experiments=os.path.abspath(experiments) if experiments is not None else None,
            name=name,
            tfBackend=tf_backend,
            redis=redis,
            ship=ship,
        ),
    }


def allreduce(
    entry: str,
    df: Any = None,
    *,
    num_workers: int,
    hparams: Optional[dict[str, Any]] = None,
    max_attempts: Optional[int] = None,
    experiments: Optional[str] = None,
    name: Optional[str] = None,
    gpus_per_worker: Optional[float] = None,
    tf_backend: Optional[str] = None,
    heartbeat_timeout_s: Optional[float] = None,
    partition_by: Optional[str] = None,
    release_executors: bool = False,
    redis: Optional[str] = None,
    ship: Optional[bool] = None,
    spark: Any = None,
    progress: Optional[bool] = None,
    wire_precision: Optional[str] = None,
    min_workers: Optional[int] = None,
    max_workers: Optional[int] = None,
) -> Run:
    """Trains `entry` (a .ts or .js module whose default export is train(ctx)) on `num_workers`
    Spark executors of the active SparkSession, in one barrier stage per attempt, with `df`'s rows
    dealt to them (by `partition_by`'s values where given) as ctx.data. Returns the finished Run,
    or raises RunError. `release_executors` gives the session's executors back when training ends
    (off by default here: the session is the caller's). `redis`: a redis:// URL for the run's events
    that the executors and this process both reach, where the executors cannot reach this machine
    (a remote Spark Connect cluster); default: a Redis private to this run. `ship`: send the Node
    runtime and the compiled entry to the executors as an archive (default: over Spark Connect to a
    server not on this machine; else the executors run them at this machine's paths).
    `progress=False`: lines only, no notebook table. `wire_precision`: "fp16" or "bf16" sends the
    gradients of ctx.fit (and compileStep) on the ring in half the bytes, with error feedback;
    default "fp32". `min_workers`: when a host is lost and the cluster does not give its slots back,
    the run goes on with the workers that are free, at least this many, from the last checkpoint.
    `max_workers`: with `min_workers`, the ring grows up to this many at an epoch's end when the
    application gains executors (default `num_workers`)."""
    spark = active_session(df, spark, "sparkring.allreduce")
    shown = progress_for(progress)
    options = _job_options(entry, spark, experiments, name, tf_backend, redis, ship)
    options.update(
        workers=num_workers,
        hparams=hparams or {},
        releaseExecutors=release_executors,
        **_given(
            maxAttempts=max_attempts,
            gpusPerWorker=gpus_per_worker,
            heartbeatTimeoutMs=None if heartbeat_timeout_s is None else int(heartbeat_timeout_s * 1000),
            wirePrecision=wire_precision,
            minWorkers=min_workers,
            maxWorkers=max_workers,
        ),
    )
    if partition_by is not None:
        options["partitionBy"] = partition_by

    def drive(spec_path: str) -> None:
        spec = JobSpec.load(spec_path)
        shown.line(
            f"sparkring: training {spec.name} with {num_workers} worker{'s' if num_workers != 1 else ''} "
            f"in {driver_spark(spark).app_id}" + (f" (up to {spec.max_attempts} attempts)" if spec.max_attempts > 1 else "")
        )
        run_job(spark, lambda: df if df is not None else spark.range(num_workers), spec)

    r = _drive("train", options, shown, spark, drive)
    return Run(
        result=r.get("result"),
        attempts=int(r.get("attempts", 1)),
        dir=str(r["dir"]),
        run_id=str(r["runId"]),
        app_id=str(r["appId"]),
        metrics=dict(r.get("metrics") or {}),
        timings=dict(r.get("timings") or {}),
        backends=list(r.get("backends") or []),
        ranks=list(r.get("ranks") or []),
    )


@dataclass(frozen=True)
class Trial:
    """One trial of a search: its hyperparameters, its final status ("done" or "failed"; a trial
    ASHA or the median rule stopped is done with `stopped_early`), its metric, and what its
    train(ctx) returned."""

    id: str
    hparams: dict[str, Any]
    status: str
    metric: Optional[float]
    attempts: int
    steps: int
    stopped_early: bool
    error: Optional[str]
    executor: Optional[str]
    backend: Optional[str]
    result: Any

    @staticmethod
    def from_dict(t: dict[str, Any]) -> "Trial":
        return Trial(
            id=str(t["id"]),
            hparams=dict(t.get("hparams") or {}),
            status=str(t["status"]),
            metric=None if t.get("metric") is None else float(t["metric"]),
            attempts=int(t.get("attempts", 0)),
            steps=int(t.get("steps", 0)),
            stopped_early=bool(t.get("stoppedEarly")),
            error=t.get("error"),
            executor=t.get("executor"),
            backend=t.get("backend"),
            result=t.get("result"),
        )


@dataclass(frozen=True)
class Search:
    """A finished search: every trial, the best done one (None when none finished), its files."""

    best: Optional[Trial]
    trials: list[Trial]
    dir: str
    run_id: str
    app_id: str
    timings: dict[str, Optional[float]]


def _camel(d: dict[str, Any]) -> dict[str, Any]:
    """min_steps -> minSteps (the TypeScript options' spelling); camelCase keys pass as they are."""
    return {k.split("_")[0] + "".join(w.title() for w in k.split("_")[1:]): v for k, v in d.items()}


def launch(
    entry: str,
    *,
    grid: Optional[dict[str, list[Any]]] = None,
    random: Optional[dict[str, Any]] = None,
    trials: Optional[int] = None,
    seed: Optional[int] = None,
    hparams: Optional[dict[str, Any]] = None,
    metric: Optional[str] = None,
    direction: Optional[str] = None,
    executors: Optional[int] = None,
    asha: Optional[dict[str, Any]] = None,
    median: Optional[dict[str, Any]] = None,
    max_trial_attempts: Optional[int] = None,
    lease_s: Optional[float] = None,
    experiments: Optional[str] = None,
    name: Optional[str] = None,
    gpus_per_trial: Optional[float] = None,
    tf_backend: Optional[str] = None,
    redis: Optional[str] = None,
    ship: Optional[bool] = None,
    spark: Any = None,
    progress: Optional[bool] = None,
) -> Search:
    """Searches `entry`'s hyperparameters (a `grid`: every combination; or `random`
    distributions, `trials` draws of them, as `sparkring launch --random` takes them) on
    `executors` executors of the active SparkSession, one trial at a time each, each trial a fresh
    Node process; `asha` ({min_steps, eta, max_steps}) or `median` ({grace_steps, min_trials})
    stop poor trials early by `metric` (a trial hears a stop when it next renews its lease, every
    third of `lease_s`; a trial whose executor stops renewing it for `lease_s` runs again
    elsewhere; `redis` and `ship` as for allreduce). Returns the Search, or raises RunError."""
    spark = active_session(None, spark, "sparkring.launch")
    if asha is not None and median is not None:
        raise RunError("give asha= or median=, not both: a search has one early-stopping rule", "input")
    shown = progress_for(progress)
    options = _job_options(entry, spark, experiments, name, tf_backend, redis, ship)
    options.update(
        hparams=hparams or {},
        **_given(
            seed=seed,
            metric=metric,
            direction=direction,
            executors=executors,
            maxTrialAttempts=max_trial_attempts,
            leaseMs=None if lease_s is None else int(lease_s * 1000),
            gpusPerTrial=gpus_per_trial,
            grid=grid,
            random=random,
            trials=trials,
        ),
    )
    if asha is not None:
        options["earlyStop"] = {"kind": "asha", **_camel(asha)}
    if median is not None:
        options["earlyStop"] = {"kind": "median", **_camel(median)}

    def drive(spec_path: str) -> None:
        with open(spec_path, encoding="utf-8") as f:
            spec = SearchSpec.from_dict(json.load(f))
        shown.line(f"sparkring: searching {spec.name} on {spec.executors} executors in {driver_spark(spark).app_id}")
        run_search(spark, spec, time_release=False)  # a failed search: the session raises its error

    r = _drive("search", options, shown, spark, drive)
    best = r.get("best")
    return Search(
        best=None if best is None else Trial.from_dict(best),
        trials=[Trial.from_dict(t) for t in r.get("trials") or []],
        dir=str(r["dir"]),
        run_id=str(r["runId"]),
        app_id=str(r["appId"]),
        timings=dict(r.get("timings") or {}),
    )
