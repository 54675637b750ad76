"""What failed, when a barrier stage fails without a sparkring worker's own report (its Python
worker or its executor died): Spark's status store keeps each task's partition (our rank),
executor, host and error; this turns the first failed task into one line."""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass
from typing import Any, Optional


@dataclass(frozen=True)
class LostTask:
    rank: int
    executor: str
    host: str
    error: str


def tasks_of_group(sc: Any, job_group: str, status: str) -> list[Any]:
    """The tasks (Spark's TaskData) of the jobs of `job_group` with `status` (FAILED, RUNNING),
    read from Spark's status store."""
    store = sc._jsc.sc().statusStore()
    found: list[Any] = []
    for job in sc.statusTracker().getJobIdsForGroup(job_group):
        info = sc.statusTracker().getJobInfo(job)
        for stage in info.stageIds if info else []:
            tasks = store.taskList(stage, 0, 10_000)
            found.extend(t for t in (tasks.apply(i) for i in range(tasks.size())) if t.status() == status)
    return found


def failed_tasks(sc: Any, job_group: str) -> list[LostTask]:
    """The failed tasks of the jobs of `job_group`."""
    lost: list[LostTask] = []
    for t in tasks_of_group(sc, job_group, "FAILED"):
        err = t.errorMessage()
        lost.append(LostTask(int(t.index()), str(t.executorId()), str(t.host()), str(err.get()) if err.isDefined() else ""))
    return lost


def describe(task: LostTask) -> str:
    """`the executor 1 on 10.0.0.2 was lost (Command exited with code 137)` and the like."""
    first = next((ln.strip() for ln in task.error.splitlines() if ln.strip()), "no reason given")
    if first.startswith("ExecutorLostFailure"):
        reason = first.split("Reason:", 1)[1].strip() if "Reason:" in first else first
        return f"its executor {task.executor} on {task.host} was lost ({reason})"
    if "Python worker exited unexpectedly" in first:
        return f"the Python worker of its Spark task on {task.host} (executor {task.executor}) died: {first.split(': ', 1)[-1]}"
    if "PythonException" in first:
        first = python_error(task.error) or first
    return f"its Spark task on {task.host} (executor {task.executor}) failed: {first}"


def python_error(text: str) -> Optional[str]:
    """The exception line that ends a Python traceback in `text` (Spark's PythonException), with the
    fix where it is a module the executors' Python lacks."""
    raised = re.findall(r"^([A-Za-z_][\w.]*(?:Error|Exception)): (.*)$", text, re.MULTILINE)
    if not raised:
        return None
    name, message = raised[-1]
    if name == "ModuleNotFoundError":
        return (
            f"the executors' Python cannot import it ({message}): install sparkring and its dependencies "
            "in that Python, or point PYSPARK_PYTHON at one that has them"
        )
    return f"{name}: {message}"


def first_lost(sc: Any, job_group: str) -> Optional[LostTask]:
    try:
        tasks = failed_tasks(sc, job_group)
    except Exception:  # the status store is best effort: the caller falls back to Spark's own line
        return None
    return tasks[0] if tasks else None


def exit_description(code: int, pid: int, host: str) -> str:
    """How a Node worker on `host` ended before reporting: a signal (negative code) or an exit status."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the Node worker (pid {pid}) on {host} was killed by signal {-code} ({name}) before reporting"
    return f"the Node worker (pid {pid}) on {host} exited with status {code} before reporting"
