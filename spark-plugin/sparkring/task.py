"""The barrier task: one Node training worker per Spark task.

Bridges a BarrierTaskContext to a Node process the way TorchDistributor bridges to torchrun:
spawn the worker (own process group, dies with the task), exchange ring addresses through
allGather, hand over rank and peers, stream the partition as Arrow IPC, yield the result.
"""

from __future__ import annotations

import base64
import collections
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO, Any, Callable, Iterator, Optional

import pyarrow as pa

from sparkring.bundle import shipped_paths
from sparkring.errors import SparkringWorkerError, WorkerFailure
from sparkring.gpus import gpu_addresses, visible_devices
from sparkring.lost import exit_description
from sparkring.rehearsal import rehearsal_stream
from sparkring.shared_dir import NOT_SHARED, check_shared
from sparkring.spec import JobSpec
from sparkring.tf_libraries import tensorflow_env

RESULT_SCHEMA = "rank long, result string"
LOG_TAIL_LINES = 100


def tied_to_this_process(command: list[str]) -> list[str]:
    """`command` under util-linux's `setpriv --pdeathsig SIGKILL` where it exists: the kernel kills the
    Node process when this Python worker dies, however it dies, even when the Node process is
    stopped (SIGSTOP) and could not act on its closed control pipe."""
    setpriv = shutil.which("setpriv")
    if sys.platform != "linux" or setpriv is None:
        return command
    return [setpriv, "--pdeathsig", "SIGKILL", "--", *command]


class NodeWorker:
    """A Node process (the training runtime, or a search agent) with its control pipe (fd
    SPARKRING_CONTROL_FD) and its log."""

    def __init__(
        self,
        node: str,
        script: str,
        rank: int,
        gpus: list[str],
        log_path: str,
        host: Optional[str] = None,
        cpus: int = 1,
    ) -> None:
        self.rank = rank
        # The executor's host as Spark names it, for the line that says where a worker died.
        self.host = host or socket.gethostname()
        control_r, control_w = os.pipe()
        env = dict(os.environ)
        env["CUDA_VISIBLE_DEVICES"] = visible_devices(gpus, os.environ.get("CUDA_VISIBLE_DEVICES"))
        env.update(tensorflow_env(cpus, os.environ))
        env["SPARKRING_CONTROL_FD"] = str(control_w)
        # Which worker this is, for tools that look at the processes (torchrun's RANK, by another name).
        env["SPARKRING_RANK"] = str(rank)
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        self._log = open(log_path, "ab", buffering=0)
        self.tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
        try:
            self.proc = subprocess.Popen(
                tied_to_this_process([node, script]),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(control_w,),
                env=env,
                start_new_session=True,
            )
        except FileNotFoundError as e:
            os.close(control_r)
            os.close(control_w)
            self._log.close()
            raise SparkringWorkerError(
                WorkerFailure(
                    rank,
                    f"Node not found on this executor ({node}): install Node 20 on the nodes, or ship it with --ship-node",
                    "",
                )
            ) from e
        os.close(control_w)
        self.control: IO[bytes] = os.fdopen(control_r, "rb")
        self._pump = threading.Thread(target=self._pump_output, daemon=True)
        self._pump.start()

    def _pump_output(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._log.write(raw)
            self.tail.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def receive(self) -> dict[str, Any]:
        """The next control message; a worker error or exit becomes SparkringWorkerError."""
        line = self.control.readline()
        if not line:
            code = self.proc.wait(timeout=30)
            self._pump.join(timeout=5)
            raise SparkringWorkerError(
                WorkerFailure(self.rank, exit_description(code, self.proc.pid, self.host), "", self.log_tail())
            )
        msg: dict[str, Any] = json.loads(line)
        if msg.get("type") == "error":
            self.proc.wait(timeout=30)
            self._pump.join(timeout=5)
            raise SparkringWorkerError(
                WorkerFailure(self.rank, str(msg.get("message")), str(msg.get("stack", "")), self.log_tail())
            )
        return msg

    def log_tail(self) -> str:
        return "\n".join(self.tail)

    def stop(self) -> None:
        """Ends the whole process group: first politely, then for good."""
        try:
            self.control.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=3)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        self._log.close()


class _Counter:
    """Passes batches through, counting rows."""

    def __init__(self, batches: Iterator[pa.RecordBatch]) -> None:
        self._batches = batches
        self.rows = 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for b in self._batches:
            self.rows += b.num_rows
            yield b


# The worker parses the partition range by range as the task reports them: fewer, larger ranges
# cost it less than one per batch (bench handoff).
NOTIFY_BYTES = 16 << 20


def handoff_dir() -> str:
    """Where partitions are handed to workers: $SPARKRING_HANDOFF_DIR, else shared memory when the
    machine has it (a file there is already in RAM), else the temp dir."""
    chosen = os.environ.get("SPARKRING_HANDOFF_DIR")
    if chosen:
        return chosen
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


class HandoffSpaceError(OSError):
    """The handoff directory filled up while a partition was written."""


def no_room_message(path: str, written: int) -> str:
    return (
        f"no room left in {os.path.dirname(path)} for this worker's partition after {written} bytes: give it more "
        "(a container's /dev/shm: docker run --shm-size) or point the executors at a larger directory with "
        "--conf spark.executorEnv.SPARKRING_HANDOFF_DIR=DIR"
    )


def write_partition(
    batches: Iterator[pa.RecordBatch], schema: pa.Schema, path: str, written: Callable[[int], None]
) -> int:
    """Writes the partition as one Arrow IPC stream to `path`, calling `written(end)` whenever
    another NOTIFY_BYTES of whole messages are in; returns the bytes written.

    A file in shared memory rather than a pipe: the writer never waits on the reader, and the
    worker maps each range (no copy) while the next is written. Arrow's own stream writer writes
    each batch's buffers straight to the file.
    """
    # O_EXCL: the path is this task's own, never a file that something else made.
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with pa.OSFile(path, "wb") as sink:
        try:
            with pa.ipc.new_stream(sink, schema) as writer:
                told = 0
                for batch in batches:
                    writer.write_batch(batch)
                    if sink.tell() - told >= NOTIFY_BYTES:
                        told = sink.tell()
                        written(told)
        except OSError as e:
            if e.errno == errno.ENOSPC or "No space left" in str(e):
                raise HandoffSpaceError(no_room_message(path, sink.tell())) from e
            raise
        return sink.tell()


def make_task(
    spec: JobSpec, run_dir: str, schema: pa.Schema, shared_token: str, driver_host: str
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    # Made once, on the driver: the worker's Arrow reader rehearses on it during the allGather.
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
        unshared = check_shared(run_dir, spec.attempt, shared_token, host, ctx.allGather, driver_host)
        if unshared is not None:
            raise SparkringWorkerError(WorkerFailure(rank, unshared, code=NOT_SHARED))
        log = os.path.join(run_dir, "logs", f"worker-{rank}.log")
        worker = NodeWorker(node, runtime_main, rank, gpus, log, host, cpus=ctx.cpus())
        data_path = os.path.join(handoff_dir(), f"sparkring-{spec.run_id}-{spec.attempt}-{rank}-{os.getpid()}.arrow")
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
                    "ringInterface": spec.ring_interface,
                    "hosts": hosts,
                    "peerTimeoutMs": spec.peer_timeout_ms,
                    "formationTimeoutMs": spec.formation_timeout_ms,
                    "collectiveTimeoutMs": spec.collective_timeout_ms,
                    "tfBackend": spec.tf_backend,
                    "redis": None
                    if spec.redis is None
                    else {"url": spec.redis.url, "stream": spec.redis.stream, "ca": spec.redis.ca},
                    "rehearsal": rehearsal,
                }
            )
            listening = worker.receive()
            peers = ctx.allGather(str(listening["address"]))
            worker.send({"type": "ring", "peers": list(peers)})
            worker.receive()  # "joined"; a worker that could not join the ring raises here with its reason
            stream_started = time.time()
            counted = _Counter(batches)
            try:
                end = write_partition(counted, schema, data_path, lambda e: worker.send({"type": "chunk", "path": data_path, "end": e}))
                worker.send({"type": "data", "path": data_path, "end": end, "rows": counted.rows})
            except BrokenPipeError:
                worker.receive()  # the worker stopped listening: this raises with its own report
                raise
            except HandoffSpaceError as e:
                raise SparkringWorkerError(WorkerFailure(rank, str(e))) from e
            rows = counted.rows
            result = worker.receive()
            # From the first batch pulled from Spark to the partition parsed and usable in Node.
            ready = float(result.get("dataReadyAt") or 0) / 1000
            result["handoff"] = {"rows": rows, "seconds": (ready if ready > 0 else time.time()) - stream_started}
            result["host"] = host
            yield pa.RecordBatch.from_pydict({"rank": [rank], "result": [json.dumps(result)]})
        finally:
            worker.stop()
            if os.path.exists(data_path):
                os.unlink(data_path)

    return task
