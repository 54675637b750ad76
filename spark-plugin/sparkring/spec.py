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


@dataclass(frozen=True)
class JobSpec:
    run_id: str
    name: str
    entry: str
    workers: int
    secret: str
    node: str
    runtime_main: str
    experiments: str
    result_path: str
    attempt: int = 0
    data: Optional[str] = None
    hparams: dict[str, Any] = field(default_factory=dict)
    gpus_per_worker: float = 0
    slot_wait_seconds: float = 30.0
    redis: Optional[RedisEndpoint] = None
    # --ring-interface: the interface name or subnet ranks listen on; None: the executor's address.
    ring_interface: Optional[str] = None
    peer_timeout_ms: int = 30000
    formation_timeout_ms: int = 60000
    collective_timeout_ms: int = 600000
    release_executors: bool = True
    # auto | native | wasm | cpu (src/runtime/backend.ts)
    tf_backend: str = "auto"
    # Set from the second attempt on: every attempt of a run shares one experiment directory
    # (and so its checkpoints).
    run_dir: Optional[str] = None
    # The archive name (src/client/bundle.ts) when the run ships its runtime; node, runtime_main
    # and entry are then paths inside it.
    bundle: Optional[str] = None

    @staticmethod
    def from_dict(d: dict[str, Any]) -> "JobSpec":
        redis = d.get("redis")
        return JobSpec(
            run_id=str(d["runId"]),
            name=str(d["name"]),
            entry=str(d["entry"]),
            workers=int(d["workers"]),
            secret=str(d["secret"]),
            node=str(d["node"]),
            runtime_main=str(d["runtimeMain"]),
            experiments=str(d["experiments"]),
            result_path=str(d["resultPath"]),
            attempt=int(d.get("attempt", 0)),
            data=d.get("data"),
            hparams=dict(d.get("hparams") or {}),
            gpus_per_worker=float(d.get("gpusPerWorker") or 0),
            slot_wait_seconds=float(d.get("slotWaitSeconds", 30)),
            redis=RedisEndpoint(str(redis["url"]), str(redis["stream"]), redis.get("ca")) if redis else None,
            ring_interface=d.get("ringInterface") or None,
            peer_timeout_ms=int(d.get("peerTimeoutMs", 30000)),
            formation_timeout_ms=int(d.get("formationTimeoutMs", 60000)),
            collective_timeout_ms=int(d.get("collectiveTimeoutMs", 600000)),
            release_executors=bool(d.get("releaseExecutors", True)),
            tf_backend=str(d.get("tfBackend") or "auto"),
            run_dir=d.get("runDir"),
            bundle=d.get("bundle"),
        )

    @staticmethod
    def load(path: str) -> "JobSpec":
        with open(path, encoding="utf-8") as f:
            return JobSpec.from_dict(json.load(f))
