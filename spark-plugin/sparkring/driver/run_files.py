"""Where a run's files go: its directory in the experiment root, and JSON written whole."""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def experiment_dir(experiments: str, app_id: str, name: str) -> str:
    """<experiments>/<appId>/run.<n>/<name>/ with the next free n (HopsML's layout)."""
    base = os.path.join(experiments, app_id)
    os.makedirs(base, exist_ok=True)
    n = 1
    while True:
        candidate = os.path.join(base, f"run.{n}", name)
        try:
            os.makedirs(candidate)
            return candidate
        except FileExistsError:
            n += 1


def write_json(path: str, value: Any) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2)
    os.replace(tmp, path)


def write_result(path: str, value: Any) -> None:
    """The client's copy of the result; a driver on another machine than the client may fail to write it."""
    try:
        write_json(path, value)
    except OSError as e:
        print(f"sparkring: could not write the result to {path} ({e}); the client reads it from the run's events", file=sys.stderr)
