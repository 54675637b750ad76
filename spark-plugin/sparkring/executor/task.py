"""The barrier task: one Node training worker per Spark task.

Bridges a BarrierTaskContext to a Node process the way TorchDistributor bridges to torchrun:
spawn the worker (node_worker.py: own process group, dies with the task), exchange ring
addresses (rendezvous.py: over the run's Redis, else Spark's allGather), hand over rank and peers,
stream the partition as Arrow IPC (handoff.py) while the worker joins the ring, yield the result.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import threading
import time
from typing import Callable, Iterator, Optional

import pyarrow as pa

from sparkring.executor.bundle_paths import shipped_paths
from sparkring.error_codes import EXPERIMENTS_NOT_SHARED, HANDOFF_SPACE
from sparkring.failures import SparkringWorkerError, WorkerFailure
from sparkring.executor.gpus import gpu_addresses
from sparkring.executor.handoff import HandoffSpaceError, PartitionFile, RowCounter, write_partition
from sparkring.executor.node_worker import NodeWorker
from sparkring.executor.rehearsal import rehearsal_stream
from sparkring.executor.rendezvous import Rendezvous, stream_tail
from sparkring.driver.shared_dir import check_shared, sees_token
from sparkring.driver.spec import JobSpec

RESULT_SCHEMA = "rank long, result string"


def warm_result_path() -> None:
    """Spark's Arrow writer imports pandas (pyarrow's pandas shim) with the first batch a task
    yields: up to a second on the result's way to the driver, unless done while the worker trains."""
    threading.Thread(target=importlib.import_module, args=("pandas",), name="sparkring-warm", daemon=True).start()


def make_task(
    spec: JobSpec, run_dir: str, schema: pa.Schema, shared_token: str, driver_host: str
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    # Where the ranks read each other's notes from (None: through Spark's allGather).
    rendezvous_after = stream_tail(spec.redis)
    # Made once, on the driver: the worker's Arrow reader rehearses on it while the ranks exchange addresses.
    try:
        rehearsal: Optional[str] = base64.b64encode(rehearsal_stream(schema)).decode()
    except pa.ArrowException:
        rehearsal = None  # a schema pyarrow cannot fill with zeros: the worker's reader starts cold

    def task(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import BarrierTaskContext

        ctx = BarrierTaskContext.get()
        rank = ctx.partitionId()
        gpus = gpu_addresses(ctx.resources())
        node, runtime_main, entry = shipped_paths(spec.bundle, rank, spec.node, spec.runtime_main, spec.entry)
        # Every rank's executor host, as Spark knows it: the ring listens there (unless
        # --ring-interface says otherwise) and errors name peers by it.
        hosts = [info.address.rsplit(":", 1)[0] for info in ctx.getTaskInfos()]
        host = hosts[rank]
        rendezvous = (
            None
            if spec.redis is None or rendezvous_after is None
            else Rendezvous(
                spec.redis,
                spec.secret,
                rendezvous_after,
                rank,
                spec.workers,
                spec.attempt,
                ctx.taskAttemptId(),
                hosts,
                float(spec.worker.get("formationTimeoutMs") or 60_000) / 1000,
            )
        )

        def gather_unless_unshared(address: Optional[str]) -> list[str]:
            """The ring's addresses, by rank, once every rank's host sees the run directory. One
            gather carries both: through the run's Redis (rendezvous.py), else Spark's allGather,
            which costs a second at least."""

            addresses: list[str] = []

            def gather(note: str) -> list[str]:
                mine = json.dumps({"note": note, "address": address})
                both = [json.loads(m) for m in (rendezvous.gather(mine) if rendezvous else ctx.allGather(mine))]
                addresses.extend(str(m["address"]) for m in both)
                return [str(m["note"]) for m in both]

            unshared = check_shared(run_dir, spec.attempt, shared_token, host, gather, driver_host)
            if unshared is not None:
                raise SparkringWorkerError(WorkerFailure(rank, unshared, code=EXPERIMENTS_NOT_SHARED))
            return addresses

        if not sees_token(run_dir, spec.attempt, shared_token):
            gather_unless_unshared(None)  # raises: nothing starts or is written where the run directory is not
        log = os.path.join(run_dir, "logs", f"worker-{rank}.log")
        partition = PartitionFile(f"sparkring-{spec.run_id}-{spec.attempt}-{rank}-{os.getpid()}.arrow")
        data_path = partition.path
        try:
            worker = NodeWorker(node, runtime_main, rank, gpus, log, host, cpus=ctx.cpus(), fds=partition.fds)
        except BaseException:
            partition.close()
            raise
        try:
            worker.send(
                {
                    "type": "init",
                    "runId": spec.run_id,
                    "entry": entry,
                    "rank": rank,
                    "worldSize": spec.workers,
                    "attempt": spec.attempt,
                    "secret": spec.secret,
                    "gpus": gpus,
                    "hparams": spec.hparams,
                    "runDir": run_dir,
                    "ringHost": host,
                    "hosts": hosts,
                    **spec.worker,
                    "redis": None
                    if spec.redis is None
                    else {"url": spec.redis.url, "stream": spec.redis.stream, "ca": spec.redis.ca},
                    "rehearsal": rehearsal,
                }
            )
            listening = worker.receive()
            peers = gather_unless_unshared(str(listening["address"]))
            worker.send({"type": "ring", "peers": peers})
            # The partition moves while the worker finishes loading TensorFlow and joins the ring;
            # a worker that could not join stops reading, and its report is raised below.
            stream_started = time.time()
            counted = RowCounter(batches)
            try:
                end = write_partition(
                    counted,
                    schema,
                    data_path,
                    lambda e: worker.send({"type": "chunk", "path": data_path, "end": e}),
                    exclusive=not partition.anonymous,
                )
                worker.send({"type": "data", "path": data_path, "end": end, "rows": counted.rows})
                worker.receive()  # "joined"; a worker that could not join the ring raises here with its reason
                warm_result_path()
            except BrokenPipeError:
                worker.receive()  # the worker stopped listening: this raises with its own report
                raise
            except HandoffSpaceError as e:
                raise SparkringWorkerError(WorkerFailure(rank, str(e), code=HANDOFF_SPACE)) from e
            rows = counted.rows
            result = worker.receive()
            # From the first batch pulled from Spark to the partition parsed and usable in Node.
            ready = float(result.get("dataReadyAt") or 0) / 1000
            result["handoff"] = {"rows": rows, "seconds": (ready if ready > 0 else time.time()) - stream_started}
            result["host"] = host
            yield pa.RecordBatch.from_pydict({"rank": [rank], "result": [json.dumps(result)]})
        finally:
            worker.stop()
            partition.close()

    return task
