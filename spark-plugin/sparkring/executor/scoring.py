"""Batch inference on Spark: `sparkring.predict(df, model)` appends a model's predictions to a
DataFrame in a plain (non-barrier) mapInArrow. Each Python worker keeps one Node scoring process
(src/predict/server.ts) per model for the tasks it runs, so the model loads once per executor
core, not once per task. Arrow batches go to Node and come back as Arrow, with no row conversion.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import shutil
import struct
import tempfile
import threading
from dataclasses import dataclass
from typing import IO, Any, Iterator, Optional

import pyarrow as pa

from sparkring.error_codes import DATA_COLUMN, PREDICT_MODEL, RUNTIME_MISSING
from sparkring.failures import JobError, SparkringWorkerError, WorkerFailure, known
from sparkring.executor.node_worker import spawn_node
from sparkring.executor.runtime_home import runtime_home
from sparkring.driver.spark_session import driver_spark
from sparkring.executor.tf_libraries import tensorflow_env

MODEL_FILES = ("model.json", "weights.bin", "signature.json")
# A scoring process no task has used for this long ends: a Spark Connect server's Python workers
# outlive the sessions that scored on them. spark.executorEnv.SPARKRING_SCORING_IDLE_S sets it.
SCORING_IDLE_S = 60.0
ERROR_BIT = 0x80000000
DEFAULT_BATCH_SIZE = 4096


@dataclass(frozen=True)
class ScoringSetup:
    """What every task needs to score: how to start Node, and the model as Spark ships it."""

    node: str
    script: str
    model_name: str  # the SparkFiles name of the model's archive, unpacked on each executor
    local_model_dir: Optional[str]  # the driver's folder, where an executor has no SparkFiles copy
    features: tuple[str, ...]
    batch_size: int
    tf_backend: str
    output: str
    output_width: int


def model_dir_of(model: str) -> str:
    """A model folder, or a run folder holding one in model/; an error names what is missing."""
    for candidate in (model, os.path.join(model, "model")):
        if os.path.isfile(os.path.join(candidate, "signature.json")):
            missing = [f for f in MODEL_FILES if not os.path.isfile(os.path.join(candidate, f))]
            if missing:
                raise JobError(f"the model in {candidate} has no {', '.join(missing)}: save it with ctx.saveModel(model)", PREDICT_MODEL)
            return candidate
    raise JobError(
        f"no model at {model}: pass a folder ctx.saveModel wrote (model.json, weights.bin, signature.json) or a run folder with model/ in it",
        PREDICT_MODEL,
    )


def _digest(model_dir: str) -> str:
    h = hashlib.sha256()
    for name in MODEL_FILES:
        with open(os.path.join(model_dir, name), "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def default_script() -> str:
    """The scoring process's script in this machine's runtime (the wheel's, or the checkout's build)."""
    return os.path.join(runtime_home(), "dist", "src", "predict", "server.js")


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    data = stream.read(n)
    if data is None or len(data) < n:
        raise EOFError
    return data


class ScoringProcess:
    """One Node scoring process and its pipes: Arrow frames in on stdin, frames back on a pipe."""

    def __init__(self, setup: ScoringSetup, model_dir: str, cpus: int) -> None:
        reply_r, reply_w = os.pipe()
        env = dict(os.environ)
        env.update(tensorflow_env(cpus, os.environ))
        env["SPARKRING_CONTROL_FD"] = str(reply_w)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        config = {
            "modelDir": model_dir,
            "features": list(setup.features),
            "batchSize": setup.batch_size,
            "tfBackend": setup.tf_backend,
        }
        self.tail: collections.deque[str] = collections.deque(maxlen=50)
        try:
            # The client's runtime where this executor has it (same machine, shared mount), else the
            # one installed with this executor's sparkring (a Spark Connect server elsewhere).
            script = setup.script if os.path.isfile(setup.script) else default_script()
            self.proc = spawn_node([setup.node, script, json.dumps(config)], env, reply_w)
        except FileNotFoundError as e:
            os.close(reply_r)
            os.close(reply_w)
            raise JobError(f"Node not found on this executor ({setup.node}): install Node 20 on the nodes", RUNTIME_MISSING) from e
        os.close(reply_w)
        self._idle: Optional[threading.Timer] = None
        self._lock = threading.Lock()
        self.replies: IO[bytes] = os.fdopen(reply_r, "rb")
        threading.Thread(target=self._pump, daemon=True).start()
        ready = self._frame()
        if isinstance(ready, dict) and "message" in ready:
            raise JobError(f"the scoring process could not load the model: {ready['message']}", known(ready.get("code")))
        self.ready = ready

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.tail.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def _frame(self) -> Any:
        """The next reply: a pyarrow Table, or a dict (the ready frame or an error)."""
        try:
            (length,) = struct.unpack("<I", _read_exact(self.replies, 4))
            is_json = bool(length & ERROR_BIT) or not hasattr(self, "ready")
            body = _read_exact(self.replies, length & ~ERROR_BIT)
        except EOFError:
            code = self.proc.wait(timeout=30)
            tail = "\n".join(self.tail)
            raise JobError(f"the Node scoring process exited with {code}: {tail.splitlines()[-1] if tail else 'no output'}", RUNTIME_MISSING) from None
        if is_json:
            return json.loads(body)
        return pa.ipc.open_stream(body).read_all()

    def score(self, batch: pa.RecordBatch, index: int) -> Any:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, batch.schema) as writer:
            writer.write_batch(batch)
        body = sink.getvalue()
        assert self.proc.stdin is not None
        self.proc.stdin.write(struct.pack("<II", body.size + 4, index))
        self.proc.stdin.write(body)
        self.proc.stdin.flush()
        return self._frame()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def claim(self) -> bool:
        """For a task: whether the process still runs, its idle end called off."""
        with self._lock:
            if self._idle is not None:
                self._idle.cancel()
                self._idle = None
            return self.alive()

    def release(self) -> None:
        """After a task: the process ends unless another task claims it within the idle time."""
        idle_s = float(os.environ.get("SPARKRING_SCORING_IDLE_S") or SCORING_IDLE_S)
        with self._lock:
            self._idle = threading.Timer(idle_s, self._end)
            self._idle.daemon = True
            self._idle.start()

    def _end(self) -> None:
        with self._lock:
            self._idle = None
            if self.alive():
                assert self.proc.stdin is not None
                self.proc.stdin.close()  # the server exits at the end of its input
                try:
                    self.proc.wait(timeout=10)
                except Exception:  # noqa: BLE001 - a process that does not end at EOF is killed
                    self.proc.kill()


# The scoring processes of this Python worker, by model and settings: Spark reuses the worker
# (spark.python.worker.reuse) for the executor's later tasks, and they find their process here.
_PROCESSES: dict[str, ScoringProcess] = {}


def _process_for(setup: ScoringSetup, cpus: int) -> tuple[ScoringProcess, bool]:
    key = json.dumps([setup.model_name, setup.features, setup.batch_size, setup.tf_backend, setup.node, setup.script])
    process = _PROCESSES.get(key)
    if process is not None and process.claim():
        return process, False
    from pyspark import SparkFiles

    shipped = SparkFiles.get(setup.model_name)
    model_dir = shipped if os.path.isdir(shipped) else setup.local_model_dir
    if model_dir is None or not os.path.isdir(model_dir):
        raise JobError(f"the model {setup.model_name} did not reach this executor ({shipped})", PREDICT_MODEL)
    process = ScoringProcess(setup, model_dir, cpus)
    _PROCESSES[key] = process
    return process, True


@dataclass(frozen=True)
class ScoreCounters:
    """Spark accumulators of model loads, rows scored and tasks run (a classic session's; Spark
    Connect has no accumulators)."""

    loads: Any
    rows: Any
    tasks: Any


def score_partitions(setup: ScoringSetup, counters: Optional[ScoreCounters]):
    """The mapInArrow function: each batch with the prediction column appended."""

    def score(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        partition = ctx.partitionId() if ctx else 0
        try:
            process, started = _process_for(setup, ctx.cpus() if ctx else 1)
        except JobError as e:
            raise SparkringWorkerError(WorkerFailure(partition, f"partition {partition}: {e}", code=e.code)) from None
        if counters is not None:
            counters.tasks.add(1)
            if started:
                counters.loads.add(1)
        out_type = pa.float32() if setup.output_width == 1 else pa.list_(pa.float32())
        try:
            for index, batch in enumerate(batches):
                features = pa.RecordBatch.from_arrays([batch.column(name) for name in setup.features], names=list(setup.features))
                reply = process.score(features, index)
                if isinstance(reply, dict):
                    message = f"partition {partition}: {reply.get('message')}"
                    raise SparkringWorkerError(WorkerFailure(partition, message, code=known(reply.get("code"))))
                prediction = reply.column(0).combine_chunks()
                if setup.output_width > 1:
                    prediction = prediction.cast(out_type)
                if counters is not None:
                    counters.rows.add(batch.num_rows)
                yield batch.append_column(pa.field(setup.output, out_type, nullable=False), prediction)
        finally:
            process.release()

    return score


def prepare(
    spark: Any,
    df: Any,
    model: str,
    features: Optional[list[str]] = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    output: Optional[str] = None,
    node: Optional[str] = None,
    script: Optional[str] = None,
    tf_backend: str = "auto",
) -> ScoringSetup:
    """Checks the model and the frame's columns on the driver, and ships the model to the executors."""
    model_dir = model_dir_of(model)
    with open(os.path.join(model_dir, "signature.json"), encoding="utf-8") as f:
        signature = json.load(f)
    wanted = list(features or signature["features"])
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise JobError(
            f"feature column {', '.join(missing)} is not in the data (the model takes {', '.join(wanted)}; the data has {', '.join(df.columns)}); "
            "pass --features (features=) to name others",
            DATA_COLUMN,
        )
    output = output or signature["output"]["name"]
    if output in df.columns:
        raise JobError(f"the data already has a column {output}: name the prediction column otherwise (--output)", DATA_COLUMN)
    script = script or default_script()
    if not os.path.isfile(script):
        raise JobError(f"the scoring runtime {script} is missing: run `npm run build` in the sparkring checkout", RUNTIME_MISSING)
    width = 1
    for d in signature["output"]["shape"]:
        width *= int(d)
    # Shipped as an archive Spark unpacks on every executor (addFile takes no local folders off
    # local mode), named by its content: the same model added twice is the same archive to Spark.
    name = f"sparkring-model-{_digest(model_dir)}.zip"
    staged = os.path.join(tempfile.gettempdir(), name)
    if not os.path.isfile(staged):
        tmp = tempfile.mkdtemp(prefix="sparkring-model-", dir=tempfile.gettempdir())
        try:
            for f in MODEL_FILES:
                shutil.copy(os.path.join(model_dir, f), tmp)
            archive = shutil.make_archive(os.path.join(tmp, "model"), "zip", tmp, ".")
            os.replace(archive, staged)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    driver_spark(spark).add_archive(staged)
    return ScoringSetup(
        node=node or os.environ.get("SPARKRING_NODE", "node"),
        script=script,
        model_name=name,
        local_model_dir=model_dir,
        features=tuple(wanted),
        batch_size=batch_size,
        tf_backend=tf_backend,
        output=output,
        output_width=width,
    )


def predict(
    df: Any,
    model: str,
    features: Optional[list[str]] = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    output: Optional[str] = None,
    tf_backend: str = "auto",
) -> Any:
    """`df` with the model's prediction column appended (float, or array<float> for a wider
    output), scored on the executors. `model` is a folder ctx.saveModel wrote, or a run folder."""
    spark = df.sparkSession
    setup = prepare(spark, df, model, features, batch_size, output, tf_backend=tf_backend)
    return with_predictions(df, setup, None)


def with_predictions(df: Any, setup: ScoringSetup, counters: Optional[ScoreCounters]) -> Any:
    """The scored frame; `counters` count what its tasks did."""
    from pyspark.sql.types import ArrayType, FloatType, StructField, StructType

    kind = FloatType() if setup.output_width == 1 else ArrayType(FloatType(), containsNull=False)
    schema = StructType([*df.schema.fields, StructField(setup.output, kind, nullable=False)])
    return df.mapInArrow(score_partitions(setup, counters), schema)
