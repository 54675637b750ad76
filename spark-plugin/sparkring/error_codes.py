"""The machine-readable codes of sparkring's errors: the same table as src/errors/codes.ts (a test
fails where the two disagree). The driver's result always carries one; the client decides by it."""

from __future__ import annotations

from typing import TypedDict


class CodeRule(TypedDict):
    kind: str
    final: bool


CODES: dict[str, CodeRule] = {
    "SR_ENTRY_FAILED": {"kind": "worker", "final": False},
    "SR_ENTRY_LOAD": {"kind": "input", "final": True},
    "SR_DATA_COLUMN": {"kind": "input", "final": True},
    "SR_FIT_MODEL": {"kind": "input", "final": True},
    "SR_PREDICT_MODEL": {"kind": "input", "final": True},
    "SR_TF_BACKEND": {"kind": "worker", "final": True},
    "SR_RING_INTERFACE": {"kind": "worker", "final": True},
    "SR_RING_FORMATION": {"kind": "worker", "final": False},
    "SR_RING_HANDSHAKE": {"kind": "worker", "final": False},
    "SR_PEER_LOST": {"kind": "worker", "final": False},
    "SR_RESIZE": {"kind": "worker", "final": False},
    "SR_FRAME_REFUSED": {"kind": "worker", "final": False},
    "SR_RING_INTEGRITY": {"kind": "worker", "final": False},
    "SR_COLLECTIVE_MISMATCH": {"kind": "worker", "final": False},
    "SR_COLLECTIVE_TIMEOUT": {"kind": "worker", "final": False},
    "SR_UNEVEN_STEPS": {"kind": "worker", "final": True},
    "SR_RING_CLOSED": {"kind": "worker", "final": False},
    "SR_RING": {"kind": "worker", "final": False},
    "SR_WORKER_EXIT": {"kind": "worker", "final": False},
    "SR_HANDOFF_SPACE": {"kind": "worker", "final": False},
    "SR_EXECUTOR_LOST": {"kind": "worker", "final": False},
    "SR_WORKER_SILENT": {"kind": "worker", "final": False},
    "SR_PHASE_TIMEOUT": {"kind": "worker", "final": False},
    "SR_HOST_LOST": {"kind": "worker", "final": False},
    "SR_RUNTIME_MISSING": {"kind": "setup", "final": True},
    "SR_EXPERIMENTS_NOT_SHARED": {"kind": "setup", "final": True},
    "SR_DATA_PATH": {"kind": "input", "final": True},
    "SR_SLOTS": {"kind": "slots", "final": True},
    "SR_DYNAMIC_ALLOCATION": {"kind": "job", "final": True},
    "SR_SEARCH": {"kind": "job", "final": True},
    "SR_SPARK_CONNECT": {"kind": "input", "final": True},
    "SR_MODEL_REPO": {"kind": "input", "final": True},
    "SR_SERVE": {"kind": "setup", "final": True},
    "SR_INFER": {"kind": "input", "final": True},
    "SR_UNTRUSTED_SPEC": {"kind": "input", "final": True},
    "SR_INSECURE_RPC": {"kind": "setup", "final": True},
    "SR_SPARK": {"kind": "spark", "final": False},
    "SR_INTERRUPTED": {"kind": "interrupted", "final": True},
}

ENTRY_FAILED = "SR_ENTRY_FAILED"
WORKER_EXIT = "SR_WORKER_EXIT"
RESIZE = "SR_RESIZE"
HANDOFF_SPACE = "SR_HANDOFF_SPACE"
EXECUTOR_LOST = "SR_EXECUTOR_LOST"
WORKER_SILENT = "SR_WORKER_SILENT"
HOST_LOST = "SR_HOST_LOST"
RUNTIME_MISSING = "SR_RUNTIME_MISSING"
EXPERIMENTS_NOT_SHARED = "SR_EXPERIMENTS_NOT_SHARED"
DATA_PATH = "SR_DATA_PATH"
DATA_COLUMN = "SR_DATA_COLUMN"
PREDICT_MODEL = "SR_PREDICT_MODEL"
SLOTS = "SR_SLOTS"
DYNAMIC_ALLOCATION = "SR_DYNAMIC_ALLOCATION"
SEARCH = "SR_SEARCH"
SPARK = "SR_SPARK"
RING_FORMATION = "SR_RING_FORMATION"
SPARK_CONNECT = "SR_SPARK_CONNECT"
MODEL_REPO = "SR_MODEL_REPO"
INSECURE_RPC = "SR_INSECURE_RPC"
INTERRUPTED = "SR_INTERRUPTED"


def kind_of(code: str) -> str:
    return CODES[code]["kind"]


def is_final(code: str) -> bool:
    """Whether another attempt cannot help with an error of this code (unknown codes: it can't)."""
    rule = CODES.get(code)
    return True if rule is None else rule["final"]
