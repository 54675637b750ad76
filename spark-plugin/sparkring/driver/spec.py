"""The job spec the client writes (spec.json): everything the driver and tasks need."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional


@dataclass(frozen=True)
class RedisEndpoint:
    url: str
    stream: str
    ca: Optional[str] = None


# Fields of job-spec.schema.json that only the client reads back (experiments rerun).
CLIENT_ONLY = ("master", "kind")


@dataclass(frozen=True)
class JobSpec:
    """spec.json as src/client/jobs/job-spec.ts writes it (job-spec.schema.json): every field is written,
    so none has a default here; tests check the fields against the schema."""

    run_id: str
    name: str
    entry: str
    workers: int
    secret: str
    node: str
    runtime_main: str
    # The archive name (src/client/submission/bundle.ts) when the run ships its runtime; node, runtime_main
    # and entry are then paths inside it.
    bundle: Optional[str]
    experiments: str
    result_path: str
    attempt: int
    data: Optional[str]
    # Rows with equal values of this column go to the same worker; None: dealt round-robin.
    partition_by: Optional[str]
    hparams: dict[str, Any]
    gpus_per_worker: float
    slot_wait_seconds: float
    redis: Optional[RedisEndpoint]
    # What the task hands its Node worker as it is (ring timeouts, --ring-interface, --tf-backend).
    worker: dict[str, Any]
    release_executors: bool
    # The CLI's driver: the executors are released after the result is written and sent, off the
    # user's clock (the client returns on the result). The Python API releases before it returns.
    release_after_result: bool
    # Set from the second attempt on: every attempt of a run shares one experiment directory
    # (and so its checkpoints).
    run_dir: Optional[str]
    # Attempts of the run in all, made by the driver in its one Spark application (lifecycle.py).
    max_attempts: int
    # --min-workers: a stage after a lost host may start with fewer workers, down to this many; None: never.
    min_workers: Optional[int]
    # --max-workers: the most workers an elastic run grows to (its first stage has `workers`); None: workers.
    max_workers: Optional[int]
    # A worker still training that sends no heartbeat for this long fails its attempt.
    heartbeat_timeout_ms: float

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "JobSpec":
        redis = d["redis"]
        return JobSpec(
            run_id=str(d["runId"]),
            name=str(d["name"]),
            entry=str(d["entry"]),
            workers=int(d["workers"]),
            secret=str(d["secret"]),
            node=str(d["node"]),
            runtime_main=str(d["runtimeMain"]),
            bundle=d["bundle"],
            experiments=str(d["experiments"]),
            result_path=str(d["resultPath"]),
            attempt=int(d["attempt"]),
            data=d["data"],
            partition_by=d["partitionBy"],
            hparams=dict(d["hparams"]),
            gpus_per_worker=float(d["gpusPerWorker"]),
            slot_wait_seconds=float(d["slotWaitSeconds"]),
            redis=RedisEndpoint(str(redis["url"]), str(redis["stream"]), redis["ca"]) if redis else None,
            worker=dict(d["worker"]),
            release_executors=bool(d["releaseExecutors"]),
            release_after_result=bool(d.get("releaseAfterResult", False)),
            run_dir=d["runDir"],
            max_attempts=int(d["maxAttempts"]),
            min_workers=None if d.get("minWorkers") is None else int(d["minWorkers"]),
            max_workers=None if d.get("maxWorkers") is None else int(d["maxWorkers"]),
            heartbeat_timeout_ms=float(d["heartbeatTimeoutMs"]),
        )

    @staticmethod
    def load(path: str) -> "JobSpec":
        with open(path, encoding="utf-8") as f:
            return JobSpec.from_dict(json.load(f))
