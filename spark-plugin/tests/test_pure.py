"""Unit tests of the plugin's pure logic (the Spark integration is tested from test/bridge)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from sparkring.failures import MARKER, SparkringWorkerError, WorkerFailure, find_failure
from sparkring.executor.gpus import gpu_addresses, visible_devices
from sparkring.driver.slots import ClusterShape, SlotNeed, SlotsError, local_cluster_shape, local_slots, slots_of, wait_for_slots
from sparkring.driver.spec import JobSpec


class FakeResource:
    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses


def test_visible_devices_are_spark_addresses_without_an_inherited_list() -> None:
    assert visible_devices(["1", "3"], None) == "1,3"
    assert visible_devices([], "0,1") == ""


def test_visible_devices_index_into_an_inherited_list() -> None:
    assert visible_devices(["0", "1"], "4,5,6") == "4,5"


def test_visible_devices_name_an_address_outside_the_inherited_list() -> None:
    with pytest.raises(ValueError, match="GPU address '3'.*CUDA_VISIBLE_DEVICES='4,5'"):
        visible_devices(["3"], "4,5")


def test_gpu_addresses_reads_task_resources() -> None:
    assert gpu_addresses({"gpu": FakeResource(["2"])}) == ["2"]
    assert gpu_addresses({}) == []


def test_master_shapes() -> None:
    assert local_cluster_shape("local-cluster[2, 3, 1024]", 1) == ClusterShape(2, 3, 1)
    assert local_cluster_shape("spark://h:7077", 0) is None
    assert local_slots("local[4]") == 4
    assert local_slots("local[2,3]") == 2
    assert local_slots("local") == 1
    assert local_slots("yarn") is None


def test_slots_count_cpus_and_gpus() -> None:
    assert slots_of(ClusterShape(2, 4, 1), SlotNeed(2, 1, 0)) == 8
    assert slots_of(ClusterShape(2, 4, 1), SlotNeed(2, 1, 1)) == 2
    assert slots_of(ClusterShape(2, 4, 2), SlotNeed(2, 2, 0.5)) == 4


def test_impossible_slots_fail_at_once_with_what_is_missing() -> None:
    with pytest.raises(SlotsError, match=r"needs 3 barrier task slots .* can only ever offer 2 \(2 executors x 1 core, 1 GPUs\)"):
        wait_for_slots(SlotNeed(3, 1, 1), "local-cluster[2,1,1024]", lambda: 0, lambda: 0, 60, ClusterShape(2, 1, 1))


def test_slots_that_never_come_fail_after_the_timeout() -> None:
    with pytest.raises(SlotsError, match=r"after 0.3s the cluster offers 1 \(1 executors registered\)"):
        wait_for_slots(SlotNeed(2, 1, 0), "spark://h:7077", lambda: 1, lambda: 1, 0.3)


def test_slots_that_come_end_the_wait() -> None:
    free = iter([0, 1, 2])
    assert wait_for_slots(SlotNeed(2, 1, 0), "spark://h:7077", lambda: next(free), lambda: 2, 30) < 5


def test_worker_failures_survive_spark_exception_text() -> None:
    err = SparkringWorkerError(WorkerFailure(1, "Error: boom", "Error: boom\n    at f (x.ts:3:9)", "log"))
    text = f"py4j.protocol.Py4JJavaError: ...\n  File \"task.py\"\nsparkring.errors.SparkringWorkerError: {err}\n\tat org.apache..."
    found = find_failure(text)
    assert found == WorkerFailure(1, "Error: boom", "Error: boom\n    at f (x.ts:3:9)", "log")
    assert find_failure("no marker here") is None
    assert find_failure(MARKER + "{not json") is None


def test_search_spec_reads_what_the_client_writes() -> None:
    from sparkring.executor.search_tasks import SearchSpec

    spec = SearchSpec.from_dict(
        {
            "kind": "search",
            "runId": "r1",
            "name": "quad",
            "entry": "/e.ts",
            "executors": 2,
            "node": "/node",
            "agentMain": "/agent.js",
            "trialMain": "/trial.js",
            "experiments": "/exp",
            "resultPath": "/result.json",
            "redis": {"url": "redis://127.0.0.1:1", "stream": "s", "ca": None},
            "queueKeys": {"pending": "p", "running": "r", "client": "c"},
            "metric": "loss",
            "leaseMs": 2000,
            "maxTrialAttempts": 3,
            "excludeAfter": 2,
            "maxFailedRounds": 3,
            "idleRoundLeases": 2,
            "secret": "s",
            "bundle": None,
            "tfBackend": "auto",
        }
    )
    assert spec.max_failed_rounds == 3 and spec.idle_round_leases == 2
    assert (spec.pending_key, spec.running_key, spec.client_key) == ("p", "r", "c")
    assert spec.redis.url == "redis://127.0.0.1:1" and spec.exclude_after == 2 and spec.bundle is None


def test_executor_identity_outside_an_executor_falls_back_to_the_parent() -> None:
    import os

    from sparkring.executor.search_tasks import executor_identity

    executor, host = executor_identity()
    assert executor == f"pid-{os.getppid()}" and host


def test_shipped_paths_resolve_inside_the_unpacked_bundle(tmp_path: Any, monkeypatch: Any) -> None:
    from pyspark import SparkFiles

    from sparkring.executor.bundle_paths import shipped, shipped_paths

    monkeypatch.setattr(SparkFiles, "_is_running_on_worker", True)
    monkeypatch.setattr(SparkFiles, "_root_directory", str(tmp_path))
    (tmp_path / "sparkring-runtime").mkdir()
    root = str(tmp_path / "sparkring-runtime")
    assert shipped_paths("sparkring-runtime", 0, "bin/node", "node", "/usr/bin/node", "entry/train.mjs") == [
        f"{root}/bin/node",
        "node",  # a bare name: the executor's PATH
        "/usr/bin/node",
        f"{root}/entry/train.mjs",
    ]
    assert shipped(None, "runtime/runtime/main.js") == "runtime/runtime/main.js"


def test_a_bundle_spark_did_not_unpack_is_the_workers_error(tmp_path: Any, monkeypatch: Any) -> None:
    from pyspark import SparkFiles

    from sparkring.executor.bundle_paths import shipped_paths
    from sparkring.failures import SparkringWorkerError

    monkeypatch.setattr(SparkFiles, "_is_running_on_worker", True)
    monkeypatch.setattr(SparkFiles, "_root_directory", str(tmp_path))
    with pytest.raises(SparkringWorkerError) as e:
        shipped_paths("sparkring-runtime", 1, "entry/train.mjs")
    assert e.value.failure.rank == 1
    assert e.value.failure.message.startswith(f"the runtime bundle sparkring-runtime is not unpacked at {tmp_path}/sparkring-runtime")


def test_a_partition_is_written_as_one_arrow_stream_reported_in_ranges(tmp_path: Any, monkeypatch: Any) -> None:
    import pyarrow as pa

    from sparkring.executor import handoff

    monkeypatch.setattr(handoff, "NOTIFY_BYTES", 10_000)
    schema = pa.schema([("x", pa.float32()), ("y", pa.int64())])
    batches = [pa.record_batch([pa.array([float(i)] * 500, pa.float32()), pa.array([i] * 500)], schema=schema) for i in range(9)]
    path = str(tmp_path / "part.arrow")
    reports: list[int] = []
    end = handoff.write_partition(iter(batches), schema, path, reports.append)

    data = open(path, "rb").read()
    assert end == len(data)
    # Every NOTIFY_BYTES or more of whole messages; each report ends a message.
    assert len(reports) >= 2
    assert all(b - a >= 10_000 for a, b in zip([0, *reports], reports))
    for at in reports:
        pa.ipc.open_stream(pa.BufferReader(data[:at] + b"\xff\xff\xff\xff\x00\x00\x00\x00")).read_all()
    table = pa.ipc.open_stream(pa.BufferReader(data)).read_all()
    assert table.num_rows == 4_500
    assert table.column("y").to_pylist() == [i for i in range(9) for _ in range(500)]


def test_a_partition_file_is_never_written_over(tmp_path: Any) -> None:
    import pyarrow as pa

    from sparkring.executor.handoff import write_partition

    path = tmp_path / "part.arrow"
    path.write_bytes(b"someone else's")
    with pytest.raises(FileExistsError):
        write_partition(iter([]), pa.schema([("x", pa.float32())]), str(path), lambda _: None)
    assert path.read_bytes() == b"someone else's"


def test_a_full_handoff_directory_names_itself_and_the_way_out(tmp_path: Any, monkeypatch: Any) -> None:
    import errno

    import pyarrow as pa

    from sparkring.executor import handoff

    class FullDisk:
        def __init__(self, sink: Any, schema: Any) -> None:
            pass

        def __enter__(self) -> "FullDisk":
            return self

        def __exit__(self, *exc: Any) -> None:
            pass

        def write_batch(self, batch: Any) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(handoff.pa.ipc, "new_stream", FullDisk)
    schema = pa.schema([("x", pa.float32())])
    with pytest.raises(handoff.HandoffSpaceError, match=rf"^no room left in {tmp_path} for this worker's partition after 0 bytes: .*--shm-size.*SPARKRING_HANDOFF_DIR=DIR$"):
        handoff.write_partition(iter([pa.record_batch([pa.array([1.0], pa.float32())], schema=schema)]), schema, str(tmp_path / "p.arrow"), lambda _: None)


def test_the_handoff_directory_can_be_chosen(monkeypatch: Any) -> None:
    from sparkring.executor.handoff import handoff_dir

    monkeypatch.setenv("SPARKRING_HANDOFF_DIR", "/data/handoff")
    assert handoff_dir() == "/data/handoff"


def test_the_rehearsal_is_an_arrow_stream_of_zeros_in_the_partitions_schema() -> None:
    import pyarrow as pa

    from sparkring.executor.rehearsal import REHEARSAL_ROWS, rehearsal_stream

    schema = pa.schema(
        [
            pa.field("x", pa.float32(), nullable=False),
            ("y", pa.float64()),
            ("n", pa.int64()),
            ("flag", pa.bool_()),
            ("pixels", pa.list_(pa.float32())),
            ("xyz", pa.list_(pa.float32(), 3)),
            ("name", pa.string()),
            ("nested", pa.struct([("a", pa.int32())])),
        ]
    )
    table = pa.ipc.open_stream(rehearsal_stream(schema)).read_all()
    assert table.schema == schema
    assert table.num_rows == REHEARSAL_ROWS
    first = table.slice(0, 1).to_pylist()[0]
    assert first["x"] == 0 and first["y"] == 0 and first["n"] == 0 and first["flag"] is False
    assert first["pixels"] == [] and first["xyz"] == [0, 0, 0]
    assert first["nested"] is None  # no zero for a struct: nulls of its type


def test_the_rehearsal_of_a_wide_schema_stays_small() -> None:
    import pyarrow as pa

    from sparkring.executor.rehearsal import REHEARSAL_BYTES, rehearsal_stream

    pixels = pa.schema([(f"p{i}", pa.float64()) for i in range(784)])
    stream = rehearsal_stream(pixels)
    table = pa.ipc.open_stream(stream).read_all()
    assert table.schema == pixels and 1 <= table.num_rows < 1024
    assert len(stream) < 2 * REHEARSAL_BYTES  # the batch, plus the schema message of 784 fields


def test_lost_task_lines_say_what_died_and_where() -> None:
    from sparkring.driver.lost import LostTask, describe, exit_description

    executor = LostTask(1, "3", "10.0.0.2", "ExecutorLostFailure (executor 3 exited caused by one of the running tasks) Reason: Command exited with code 137")
    assert describe(executor) == "its executor 3 on 10.0.0.2 was lost (Command exited with code 137)"
    python = LostTask(0, "1", "10.0.0.3", "org.apache.spark.SparkException: Python worker exited unexpectedly (crashed)\n\tat ...")
    assert describe(python) == "the Python worker of its Spark task on 10.0.0.3 (executor 1) died: Python worker exited unexpectedly (crashed)"
    assert exit_description(-9, 42, "h1") == "the Node worker (pid 42) on h1 was killed by signal 9 (SIGKILL) before reporting"
    assert exit_description(3, 42, "h1") == "the Node worker (pid 42) on h1 exited with status 3 before reporting"


def test_tensorflow_env_puts_the_library_and_nvidia_wheels_on_the_loader_path(tmp_path: Any) -> None:
    from sparkring.executor.tf_libraries import tensorflow_env

    tf_dir = tmp_path / "site-packages" / "tensorflow"
    tf_dir.mkdir(parents=True)
    (tmp_path / "site-packages" / "nvidia" / "cudnn" / "lib").mkdir(parents=True)
    env = tensorflow_env(3, {"LD_LIBRARY_PATH": "/opt/lib"}, str(tf_dir))
    assert env["LD_LIBRARY_PATH"].split(":") == [str(tf_dir), str(tmp_path / "site-packages" / "nvidia" / "cudnn" / "lib"), "/opt/lib"]
    assert env["SPARKRING_TF_DIR"] == str(tf_dir)
    assert env["TF_NUM_INTRAOP_THREADS"] == "3" and env["TF_NUM_INTEROP_THREADS"] == "3"


def test_tensorflow_env_keeps_the_users_thread_settings_and_says_nothing_of_a_missing_tensorflow(tmp_path: Any) -> None:
    from sparkring.executor import tf_libraries

    env = tf_libraries.tensorflow_env(2, {"TF_NUM_INTRAOP_THREADS": "8", "TF_CPP_MIN_LOG_LEVEL": "0"}, None)
    assert env["TF_NUM_INTRAOP_THREADS"] == "8" and env["TF_NUM_INTEROP_THREADS"] == "2"
    assert env["TF_CPP_MIN_LOG_LEVEL"] == "0"
    if tf_libraries.tensorflow_dir() is None:
        assert "LD_LIBRARY_PATH" not in env


def test_tensorflow_dir_is_found_without_importing_tensorflow() -> None:
    import sys

    from sparkring.executor.tf_libraries import TF_LIBRARY, tensorflow_dir

    found = tensorflow_dir()
    assert "tensorflow" not in sys.modules
    if found is not None:
        import os

        assert os.path.exists(os.path.join(found, TF_LIBRARY))


def test_runtime_home_finds_the_checkout_this_package_sits_in() -> None:
    from sparkring.executor.runtime_home import CLI, PACKAGE_DIR, WHEEL_RUNTIME, runtime_home

    assert os.path.basename(PACKAGE_DIR) == "sparkring" and WHEEL_RUNTIME.startswith(os.path.join(PACKAGE_DIR, "_runtime"))
    if not os.environ.get("SPARKRING_HOME"):
        assert os.path.isfile(os.path.join(runtime_home(), CLI))


def test_run_keys_are_hkdf_sha256_as_node_derives_them() -> None:
    from sparkring.run_keys import run_key

    # The same vector as test/client/event-stream.test.ts (node:crypto hkdfSync).
    assert run_key("ab12", "events").hex() == "33303ac2a0b3ee1e70963a160264e9a7c5c05a5f04ff1540447fb031778f9d51"
    assert run_key("ab12", "result") != run_key("ab12", "events")


def test_a_data_read_error_names_the_jvms_cause_not_py4js_call() -> None:
    from sparkring.driver.train_job import cause_line

    py4j = (
        "An error occurred while calling o274.load.\n"
        ": org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 0.0 failed 4 times\n"
        "\tat org.apache.spark.scheduler.DAGScheduler.failJobAndIndependentStages(DAGScheduler.scala:2898)"
    )
    assert cause_line(py4j) == (
        "org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 0.0 failed 4 times"
    )
    assert cause_line("[PATH_NOT_FOUND] Path does not exist: file:/x.parquet.") == "[PATH_NOT_FOUND] Path does not exist: file:/x.parquet."
    assert cause_line("") == ""
