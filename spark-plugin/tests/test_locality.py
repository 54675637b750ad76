"""Delay scheduling off while sparkring's jobs run (sparkring.driver.locality), on a stand-in for
the live SparkConf: pure logic."""

from __future__ import annotations

from typing import Any, Optional

from sparkring.driver.locality import LOCALITY_WAIT, no_locality_wait


class _Conf:
    def __init__(self, values: Optional[dict[str, str]] = None) -> None:
        self.values = dict(values or {})

    def contains(self, key: str) -> bool:
        return key in self.values

    def set(self, key: str, value: str) -> None:
        self.values[key] = value

    def remove(self, key: str) -> None:
        del self.values[key]


def _context(conf: _Conf) -> Any:
    scheduler = type("Scheduler", (), {"conf": lambda _self: conf})()
    jsc = type("Jsc", (), {"sc": lambda _self: scheduler})()
    return type("Context", (), {"_jsc": jsc})()


def test_the_wait_is_zero_while_the_job_runs_and_unset_after() -> None:
    conf = _Conf()
    with no_locality_wait(_context(conf)):
        assert conf.values == {LOCALITY_WAIT: "0s"}
    assert conf.values == {}


def test_the_applications_own_setting_stands() -> None:
    conf = _Conf({LOCALITY_WAIT: "10s"})
    with no_locality_wait(_context(conf)):
        assert conf.values == {LOCALITY_WAIT: "10s"}
    assert conf.values == {LOCALITY_WAIT: "10s"}


def test_jobs_at_once_share_it_and_the_last_one_out_restores_the_conf() -> None:
    conf = _Conf()
    sc = _context(conf)
    first = no_locality_wait(sc)
    second = no_locality_wait(sc)
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert conf.values == {LOCALITY_WAIT: "0s"}  # the second job's stages are still to be scheduled
    second.__exit__(None, None, None)
    assert conf.values == {}


def test_a_failed_job_restores_the_conf() -> None:
    conf = _Conf()
    try:
        with no_locality_wait(_context(conf)):
            raise RuntimeError("the stage failed")
    except RuntimeError:
        pass
    assert conf.values == {}
