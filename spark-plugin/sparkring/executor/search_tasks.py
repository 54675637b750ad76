"""Hyperparameter search, the task half: the search's spec, and the long-lived task each executor
runs, which starts a Node search agent (src/hpo/agent.ts) that takes trials from the Redis queue
until none waits, each in a fresh Node process. The driver's rounds of these tasks are
search_rounds.py."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

from sparkring.driver.spec import RedisEndpoint
from sparkring.run_keys import run_key

# Fields of search-spec.schema.json that only the client reads back.
CLIENT_ONLY = ("kind",)


@dataclass(frozen=True)
class SearchSpec:
    """spec.json of a search as src/client/jobs/job-spec.ts writes it (search-spec.schema.json): every
    field is written, so none has a default here."""

    run_id: str
    name: str
    entry: str
    executors: int
    node: str
    agent_main: str
    trial_main: str
    experiments: str
    result_path: str
    redis: RedisEndpoint
    pending_key: str
    running_key: str
    client_key: str
    metric: str
    lease_ms: int
    max_trial_attempts: int
    exclude_after: int
    # The rounds' rules (src/hpo/retry-policy.ts SEARCH_ROUNDS, rule 6): the search fails after this
    # many failed rounds, and a round in which no trial ran for this many leases is cancelled.
    max_failed_rounds: int
    idle_round_leases: int
    # The run's secret: the driver signs its result on the event stream with it.
    secret: str
    bundle: Optional[str]  # as JobSpec.bundle
    tf_backend: str  # auto | native | cpu (src/runtime/backend.ts)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "SearchSpec":
        redis = d["redis"]
        keys = d["queueKeys"]
        return SearchSpec(
            run_id=str(d["runId"]),
            name=str(d["name"]),
            entry=str(d["entry"]),
            executors=int(d["executors"]),
            node=str(d["node"]),
            agent_main=str(d["agentMain"]),
            trial_main=str(d["trialMain"]),
            experiments=str(d["experiments"]),
            result_path=str(d["resultPath"]),
            redis=RedisEndpoint(str(redis["url"]), str(redis["stream"]), redis["ca"]),
            pending_key=str(keys["pending"]),
            running_key=str(keys["running"]),
            client_key=str(keys["client"]),
            metric=str(d["metric"]),
            lease_ms=int(d["leaseMs"]),
            max_trial_attempts=int(d["maxTrialAttempts"]),
            exclude_after=int(d["excludeAfter"]),
            max_failed_rounds=int(d["maxFailedRounds"]),
            idle_round_leases=int(d["idleRoundLeases"]),
            secret=str(d["secret"]),
            bundle=d["bundle"],
            tf_backend=str(d["tfBackend"]),
        )


class ExecutorExcludedError(RuntimeError):
    """Raised by a task whose executor kept failing trials, so that Spark's excludeOnFailure
    counts it against the executor and runs the task elsewhere."""


def executor_identity() -> tuple[str, str]:
    """(executor id, host) of the executor running this Python worker: the id from the executor
    JVM's command line (--executor-id), found up the parent chain; else the parent's pid."""
    host = socket.gethostname()
    pid = os.getppid()
    for _ in range(8):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().decode("utf-8", "replace").split("\0")
            if "--executor-id" in args:
                return args[args.index("--executor-id") + 1], host
            with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        if pid <= 1:
            break
    return f"pid-{os.getppid()}", host


# What each agent task yields: its executor and the trials it ran (JSON).
AGENT_SCHEMA = "executor string, trials string"


def make_agent_task(spec: SearchSpec, run_dir: str) -> Callable[[Iterator[Any]], Iterator[Any]]:
    """The agent task, for mapInArrow over a frame of one row per task."""

    def task(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa
        from pyspark import TaskContext

        from sparkring.executor.bundle_paths import shipped_paths
        from sparkring.executor.gpus import gpu_addresses
        from sparkring.executor.node_worker import NodeWorker

        ctx = TaskContext.get()
        executor, host = executor_identity()
        gpus = gpu_addresses(ctx.resources())
        log = os.path.join(run_dir, "logs", f"agent-executor-{executor}-task-{ctx.taskAttemptId()}.log")
        node, agent_main, entry, trial_main = shipped_paths(
            spec.bundle, ctx.partitionId(), spec.node, spec.agent_main, spec.entry, spec.trial_main
        )
        agent = NodeWorker(node, agent_main, ctx.partitionId(), gpus, log, cpus=ctx.cpus())
        try:
            agent.send(
                {
                    "type": "agent",
                    "searchId": spec.run_id,
                    "entry": entry,
                    "runDir": run_dir,
                    "metric": spec.metric,
                    "leaseMs": spec.lease_ms,
                    "maxAttempts": spec.max_trial_attempts,
                    "excludeAfter": spec.exclude_after,
                    "executorId": executor,
                    "host": host,
                    "gpus": gpus,
                    "tfBackend": spec.tf_backend,
                    "trialMain": trial_main,
                    "redis": {"url": spec.redis.url, "stream": spec.redis.stream, "ca": spec.redis.ca},
                    "eventsKey": run_key(spec.secret, "events").hex(),
                }
            )
            finished = agent.receive()
            if finished.get("excluded"):
                raise ExecutorExcludedError(
                    f"executor {executor} on {host} failed {spec.exclude_after} trials in a row while other "
                    "executors completed theirs; it is excluded from this search"
                )
            for _ in batches:  # the task's one row says only that it runs
                pass
            yield pa.RecordBatch.from_pydict({"executor": [executor], "trials": [json.dumps(finished.get("trials", []))]})
        finally:
            agent.stop()

    return task
