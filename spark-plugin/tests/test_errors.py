"""The error report every failed result carries: a code of error_codes.py, its kind, the message."""

from __future__ import annotations

from sparkring.error_codes import CODES
from sparkring.driver.stage import stage_error
from sparkring.failures import SparkringWorkerError, WorkerFailure, error_report, find_failure
from sparkring.driver.lost import LostTask


def spark_text(failure: WorkerFailure) -> str:
    """What Spark's exception text holds when a barrier task raised for its worker."""
    return f"org.apache.spark.SparkException: Job aborted ... {SparkringWorkerError(failure)} ... at py4j"


def test_error_report_takes_the_kind_from_the_code() -> None:
    assert error_report("SR_DATA_PATH", "cannot read --data /x") == {"code": "SR_DATA_PATH", "kind": "input", "message": "cannot read --data /x"}
    assert error_report("SR_PEER_LOST", "m", rank=1, stack=None) == {"code": "SR_PEER_LOST", "kind": "worker", "message": "m", "rank": 1}


def test_a_worker_failure_keeps_its_code_and_an_unknown_one_is_the_entry_failing() -> None:
    found = find_failure(spark_text(WorkerFailure(1, "DataColumnError: ...", code="SR_DATA_COLUMN")))
    assert found is not None and found.code == "SR_DATA_COLUMN"
    text = spark_text(WorkerFailure(0, "Error: boom")).replace('"SR_ENTRY_FAILED"', '"SR_WHATEVER"')
    found = find_failure(text)
    assert found is not None and found.code == "SR_ENTRY_FAILED"


def no_lost_task() -> None:
    return None


def test_stage_error_every_branch_has_a_known_code() -> None:
    worker = stage_error(spark_text(WorkerFailure(1, "UnevenStepsError: ...", "stack", "tail", "SR_UNEVEN_STEPS")), None, no_lost_task, "x")
    assert worker == {"code": "SR_UNEVEN_STEPS", "kind": "worker", "message": "UnevenStepsError: ...", "rank": 1, "stack": "stack", "logTail": "tail"}
    # Found by the task about the job as a whole: no rank, so the client names no worker.
    shared = stage_error(spark_text(WorkerFailure(0, "not shared", code="SR_EXPERIMENTS_NOT_SHARED")), None, no_lost_task, "x")
    assert shared == {"code": "SR_EXPERIMENTS_NOT_SHARED", "kind": "setup", "message": "not shared"}
    unread = stage_error("java.io.FileNotFoundException: /d.parquet (10.0.0.12 executor 1)", "/d.parquet", no_lost_task, "x")
    assert unread["code"] == "SR_DATA_PATH" and unread["kind"] == "input"
    lost = stage_error("Job aborted", None, lambda: LostTask(1, "3", "10.0.0.2", "ExecutorLostFailure (executor 3 exited)"), "x")
    assert lost["code"] == "SR_EXECUTOR_LOST" and lost["rank"] == 1
    other = stage_error("Job aborted", None, no_lost_task, "Job aborted")
    assert other["code"] == "SR_SPARK" and other["message"] == "Job aborted"
    for report in (worker, shared, unread, lost, other):
        assert report["code"] in CODES and report["kind"] == CODES[report["code"]]["kind"]


def test_a_python_task_failure_names_the_exception_and_the_fix() -> None:
    from sparkring.driver.lost import LostTask, describe

    text = (
        "org.apache.spark.api.python.PythonException: Traceback (most recent call last):\n"
        '  File "worker.py", line 90, in read_command\n'
        "ModuleNotFoundError: No module named 'pyarrow'\n"
    )
    line = describe(LostTask(1, "1", "10.0.0.2", text))
    assert line.startswith("its Spark task on 10.0.0.2 (executor 1) failed: the executors' Python cannot import it")
    assert "No module named 'pyarrow'" in line and "PYSPARK_PYTHON" in line


def test_a_worker_failure_carries_its_host_and_phase_into_the_report() -> None:
    failure = WorkerFailure(2, "PhaseTimeoutError: checkpoint ...", code="SR_PHASE_TIMEOUT", host="10.0.0.12", phase="checkpoint")
    error = stage_error(spark_text(failure), None, no_lost_task, "Job aborted")
    assert error["rank"] == 2 and error["host"] == "10.0.0.12" and error["phase"] == "checkpoint"
    assert error["code"] == "SR_PHASE_TIMEOUT" and error["kind"] == "worker"
