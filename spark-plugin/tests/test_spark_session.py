"""The pure parts of the driver's two kinds of Spark session (sparkring/driver/spark_session.py)."""

from __future__ import annotations

import zipfile

import pytest

from sparkring.driver.slots import SlotNeed
from sparkring.driver.spark_session import connect_refusal, package_zip, slots_of_executors


def test_connect_needs_4_on_both_ends() -> None:
    assert connect_refusal("sparkring.allreduce", "4.2.0", "4.2.0") is None
    assert connect_refusal("sparkring.allreduce", "4.0.1", "4.3.0") is None
    old_server = connect_refusal("sparkring.allreduce", "4.2.0", "3.5.6")
    assert old_server is not None and "client 4.2.0 and server 3.5.6" in old_server
    old_client = connect_refusal("sparkring.launch", "3.5.6", "4.2.0")
    assert old_client is not None and old_client.startswith("sparkring.launch needs Spark Connect 4.0 or later")


@pytest.mark.parametrize(
    ("need", "slots"),
    [
        (SlotNeed(2, 1, 0), 5),  # 2 + 3 cores
        (SlotNeed(2, 2, 0), 2),  # 1 + 1
        (SlotNeed(2, 1, 1), 1),  # one executor has one GPU, the other none
        (SlotNeed(2, 1, 0.5), 2),  # two halves of that GPU, and the other still none
    ],
)
def test_slots_of_the_rest_executors(need: SlotNeed, slots: int) -> None:
    executors = [
        {"id": "0", "totalCores": 2, "resources": {"gpu": {"name": "gpu", "addresses": ["0"]}}},
        {"id": "1", "totalCores": 3, "resources": {}},
    ]
    assert slots_of_executors(executors, need) == slots


def test_package_zip_is_the_python_package_named_by_its_content() -> None:
    path = package_zip()
    assert package_zip() == path
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    assert "sparkring/__init__.py" in names
    assert "sparkring/executor/task.py" in names
    assert "sparkring/job-spec.schema.json" in names
    assert not any("_runtime" in n or "__pycache__" in n for n in names)
