"""Whether every executor host sees the run's experiment directory.

Every rank writes its checkpoints, TensorBoard files and log into the run directory the driver
made. On hosts that do not share that path, the files would scatter over local disks and a retried
rank 0 on another host would not find the checkpoint. The driver leaves a token file there; each
task reads it and the ranks compare notes (one allGather) before anything is started or written.
"""

from __future__ import annotations

import json
import os
import secrets
from typing import Callable



def token_path(run_dir: str, attempt: int) -> str:
    return os.path.join(run_dir, f".sparkring-shared-{attempt}")


def leave_token(run_dir: str, attempt: int) -> str:
    """Writes a fresh token into the run directory; returns it."""
    token = secrets.token_hex(16)
    path = token_path(run_dir, attempt)
    with open(path, "w", encoding="utf-8") as f:
        f.write(token)
    return token


def remove_token(run_dir: str, attempt: int) -> None:
    try:
        os.unlink(token_path(run_dir, attempt))
    except OSError:
        pass


def sees_token(run_dir: str, attempt: int, token: str) -> bool:
    try:
        with open(token_path(run_dir, attempt), encoding="utf-8") as f:
            return f.read() == token
    except OSError:
        return False


def unshared_hosts(notes: list[str]) -> list[str]:
    """The hosts (from every rank's JSON note {host, sees}) that do not see the token."""
    blind = []
    for note in notes:
        d = json.loads(note)
        if not d["sees"] and d["host"] not in blind:
            blind.append(str(d["host"]))
    return blind


def not_shared_message(run_dir: str, blind: list[str], driver_host: str) -> str:
    return (
        f"the experiment directory is not shared: host{'s' if len(blind) > 1 else ''} {', '.join(blind)} "
        f"cannot see {run_dir}, which the driver made on {driver_host}; every rank writes its checkpoints, "
        "TensorBoard files and log there. Put --experiments on a mount every executor host shares "
        "(NFS, a cluster file system) at the same path"
    )


def check_shared(
    run_dir: str, attempt: int, token: str, host: str, all_gather: Callable[[str], list[str]], driver_host: str
) -> str | None:
    """None when every rank's host sees the run directory, else the line that names those that do not."""
    notes = all_gather(json.dumps({"host": host, "sees": sees_token(run_dir, attempt, token)}))
    blind = unshared_hosts(list(notes))
    return not_shared_message(run_dir, blind, driver_host) if blind else None
