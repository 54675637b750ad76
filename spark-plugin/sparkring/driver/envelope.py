"""The driver's half of the one job envelope (the client's is src/client/jobs/run-job.ts): every job
kind's driver runs its middle inside `job_envelope`, which owns the result dict, the mapping from an
error to the result's report, writing the result for the client, and the signed last event that
carries it to a client on another machine. A kind's result fields are its contract,
<kind>-result.schema.json (made from src/client/jobs/<kind>.ts; tests/test_results.py checks them)."""

from __future__ import annotations

import os
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from sparkring.error_codes import INTERRUPTED, SPARK
from sparkring.failures import JobError, error_report, find_failure
from sparkring.driver.driver_events import EventSender, signed_result
from sparkring.driver.rpc_encryption import check_rpc_encryption
from sparkring.driver.run_files import write_json, write_result
from sparkring.driver.spark_session import DriverSpark
from sparkring.driver.spec import RedisEndpoint


@dataclass
class Job:
    """What a driver's middle is given: the result to fill, and the run's event sender."""

    result: dict[str, Any]
    events: EventSender


def failure_report(e: BaseException) -> dict[str, Any]:
    """The report of an error the middle did not handle: a worker's marked failure in Spark's
    exception text names its cause; anything else is Spark's own, with its first line."""
    if isinstance(e, JobError):
        return error_report(e.code, str(e))
    if isinstance(e, KeyboardInterrupt):
        return error_report(INTERRUPTED, "interrupted; the job was stopped")
    text = f"{e}\n{traceback.format_exc()}"
    failure = find_failure(text)
    if failure is not None:
        return error_report(failure.code, failure.message)
    lines = [ln for ln in str(e).splitlines() if ln.strip()]
    return error_report(SPARK, lines[0] if lines else type(e).__name__, detail=traceback.format_exc()[-4000:])


@contextmanager
def job_envelope(
    driver: DriverSpark, result_path: str, secret: str, redis: Optional[RedisEndpoint], keep_in_run_dir: bool = False
) -> Iterator[Job]:
    """The result of the job run in the block: {ok, appId, versions, runMs, ...what the middle adds}.
    An error the block raises becomes the result's `error` (an interrupt is raised again after the
    result is written). `keep_in_run_dir`: also write it as <result["dir"]>/result.json."""
    result: dict[str, Any] = {
        "ok": False,
        "appId": driver.app_id,
        "versions": {"spark": driver.spark.version, "python": sys.version.split()[0], "master": driver.master},
    }
    events = EventSender(redis, "driver", secret)
    started = time.time()
    interrupted: Optional[KeyboardInterrupt] = None
    try:
        insecure = check_rpc_encryption(driver)
        if insecure is not None:
            events.send("driver", stage="warning", line=insecure)
        yield Job(result, events)
    except KeyboardInterrupt as e:
        result.update(ok=False, error=failure_report(e))
        interrupted = e
    except Exception as e:  # the middle's failure, reported rather than raised
        result.update(ok=False, error=failure_report(e))
    finally:
        result["runMs"] = (time.time() - started) * 1000
        if keep_in_run_dir and result.get("dir"):
            write_json(os.path.join(str(result["dir"]), "result.json"), result)
        write_result(result_path, result)
        # The result rides on the last event too, for a client on another machine than the driver.
        events.send("driver", stage="done", ok=bool(result.get("ok")), **signed_result(secret, result))
        events.close()
    if interrupted is not None:
        raise interrupted
