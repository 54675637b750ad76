"""The multi-host checks that are pure logic: the shared experiment directory and unreadable --data."""

from __future__ import annotations

import json
from pathlib import Path

from sparkring.driver.stage import unreadable_data
from sparkring.driver.shared_dir import check_shared, leave_token, remove_token, sees_token


def test_every_rank_that_sees_the_token_passes(tmp_path: Path) -> None:
    token = leave_token(str(tmp_path), 0)
    assert sees_token(str(tmp_path), 0, token)
    notes = [json.dumps({"host": "h1", "sees": True}), json.dumps({"host": "h2", "sees": True})]
    assert check_shared(str(tmp_path), 0, token, "h1", lambda note: notes, "client") is None


def test_hosts_that_do_not_see_it_are_named_once_each(tmp_path: Path) -> None:
    token = leave_token(str(tmp_path), 1)
    notes = [json.dumps({"host": h, "sees": s}) for h, s in (("h1", True), ("h2", False), ("h3", False), ("h2", False))]
    message = check_shared(str(tmp_path), 1, token, "h2", lambda note: notes, "gateway")
    assert message is not None
    assert message.startswith(f"the experiment directory is not shared: hosts h2, h3 cannot see {tmp_path}, which the driver made on gateway")
    assert "Put --experiments on a mount every executor host shares" in message


def test_another_attempts_token_does_not_count(tmp_path: Path) -> None:
    leave_token(str(tmp_path), 0)
    assert not sees_token(str(tmp_path), 1, "x")
    remove_token(str(tmp_path), 0)
    assert not any(tmp_path.iterdir())


def test_a_file_an_executor_cannot_open_names_its_host() -> None:
    text = (
        "Job aborted due to stage failure: Task 0 in stage 0.0 failed 4 times, most recent failure: Lost task 0.3 in "
        "stage 0.0 (TID 3) (10.213.5.12 executor 1): org.apache.spark.SparkFileNotFoundException: File file:/x/d.parquet does not exist"
    )
    message = unreadable_data("/x/d.parquet", text)
    assert message is not None
    assert message.startswith("cannot read --data /x/d.parquet: the executor on host 10.213.5.12 cannot open it")
    assert unreadable_data("/x/d.parquet", "java.lang.OutOfMemoryError") is None
    assert unreadable_data(None, text) is None
