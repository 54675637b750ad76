"""Worker failures, carried through Spark's exception text as one marked JSON line, and the error
report every failed result carries: a code from error_codes.py, its kind, the message."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import Any, Optional

from sparkring.error_codes import CODES, ENTRY_FAILED, EXPERIMENTS_NOT_SHARED, kind_of

# Failures a task finds about the job as a whole, not about its worker: reported without a rank.
JOB_WIDE = (EXPERIMENTS_NOT_SHARED,)

MARKER = "SPARKRING-WORKER-ERROR "


@dataclass(frozen=True)
class WorkerFailure:
    rank: int
    message: str
    stack: str = ""
    log_tail: str = ""
    # Machine-readable cause (error_codes.py): the worker's own error's, or one the task found.
    code: str = ENTRY_FAILED
    # The ring peer this worker lost ({"rank", "host"}), where that is why it failed.
    lost_peer: Optional[dict[str, Any]] = None
    # Where the worker ran, and what it was doing (src/runtime/phase.ts), where known.
    host: Optional[str] = None
    phase: Optional[str] = None


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
            lost = d.get("lost_peer")
            return WorkerFailure(
                int(d["rank"]),
                str(d["message"]),
                str(d.get("stack", "")),
                str(d.get("log_tail", "")),
                known(d.get("code")),
                lost_peer(lost),
                text_or_none(d.get("host")),
                text_or_none(d.get("phase")),
            )
        except (ValueError, KeyError, TypeError):
            continue
    return None


def lost_peer(value: object) -> Optional[dict[str, Any]]:
    """A worker's lostPeer as {"rank": int, "host": str}, or None where it named none (or not so)."""
    if isinstance(value, dict) and isinstance(value.get("rank"), int) and isinstance(value.get("host"), str):
        return {"rank": value["rank"], "host": value["host"]}
    return None


def text_or_none(value: object) -> Optional[str]:
    return value if isinstance(value, str) and value else None


def known(code: object) -> str:
    """`code` where error_codes.py has it, else SR_ENTRY_FAILED (a worker's error that named none)."""
    return code if isinstance(code, str) and code in CODES else ENTRY_FAILED


def error_report(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The `error` of a failed result: its code, the kind the code has, the message, and `extra`
    (rank, stack, logTail, detail). A rank says a worker failed: the client names it."""
    return {"code": code, "kind": kind_of(code), "message": message, **{k: v for k, v in extra.items() if v is not None}}


class JobError(RuntimeError):
    """A failure of the job as a whole, with one line for the user and its code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code
