"""Paths inside the runtime bundle the client ships as a Spark archive (src/client/submission/bundle.ts)."""

from __future__ import annotations

import os
from typing import Optional

from sparkring.error_codes import RUNTIME_MISSING
from sparkring.failures import SparkringWorkerError, WorkerFailure


class BundleMissingError(RuntimeError):
    pass


def bundle_root(name: str) -> str:
    """Where Spark unpacked the archive `path#name` for this executor (its SparkFiles directory)."""
    from pyspark import SparkFiles

    root = os.path.abspath(os.path.join(SparkFiles.getRootDirectory(), name))
    if not os.path.isdir(root):
        raise BundleMissingError(
            f"the runtime bundle {name} is not unpacked at {root}; Spark did not deliver the archive "
            "(check that the executors can read the path or URL given to --archives / Livy's archives)"
        )
    return root


def shipped(bundle: Optional[str], path: str) -> str:
    """`path` as an executor sees it: inside the unpacked bundle when the run ships one.

    Absolute paths and bare names (`node`, looked up on the executor's PATH) stay as they are.
    """
    if not bundle or os.path.isabs(path) or "/" not in path:
        return path
    return os.path.join(bundle_root(bundle), path)


def shipped_paths(bundle: Optional[str], rank: int, *paths: str) -> list[str]:
    """`shipped` for each path; a missing bundle fails the task as that worker's own error."""
    try:
        return [shipped(bundle, p) for p in paths]
    except BundleMissingError as e:
        raise SparkringWorkerError(WorkerFailure(rank, str(e), code=RUNTIME_MISSING)) from e
