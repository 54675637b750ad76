"""Worker failures, carried through Spark's exception text as one marked JSON line."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Optional

MARKER = "SPARKRING-WORKER-ERROR "


@dataclass(frozen=True)
class WorkerFailure:
    rank: int
    message: str
    stack: str = ""
    log_tail: str = ""
    # Machine-readable cause, for failures the task itself finds (e.g. SR_EXPERIMENTS_NOT_SHARED).
    code: str = ""


class SparkringWorkerError(RuntimeError):
    """Raised in a barrier task when its Node worker fails; Spark then aborts the stage."""

    def __init__(self, failure: WorkerFailure) -> None:
        super().__init__(MARKER + json.dumps(asdict(failure)))
        self.failure = failure


def find_failure(text: str) -> Optional[WorkerFailure]:
    """The first worker failure marked in a (Spark) exception text, if any."""
    decoder = json.JSONDecoder()
    for m in re.finditer(re.escape(MARKER), text):
        try:
            d, _ = decoder.raw_decode(text, m.end())
            return WorkerFailure(
                int(d["rank"]), str(d["message"]), str(d.get("stack", "")), str(d.get("log_tail", "")), str(d.get("code", ""))
            )
        except (ValueError, KeyError, TypeError):
            continue
    return None


class JobError(RuntimeError):
    """A failure of the job as a whole, with one line for the user."""
