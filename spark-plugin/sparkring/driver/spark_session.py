"""The Spark a driver talks to: a classic SparkSession (its SparkContext, through py4j) or a Spark
Connect session (a gRPC client, with no SparkContext). Every driver-side use of Spark beyond the
DataFrame API goes through here, so a job kind runs the same over both:

    what                    classic                           Spark Connect
    application, master     sc.applicationId, sc.master       spark.conf (spark.app.id, spark.master)
    job scope, cancel       setJobGroup / cancelJobGroup      addTag / interruptTag
    free barrier slots      the scheduler's own count         the driver UI's REST executors list, else
                                                              the master's fixed shape, else unchecked
    executors, release      listed and killed                 not listed; release is left to the server
                                                              application's dynamic allocation
    lost executor's cause   the status store                  Spark's exception text alone
    files for executors     addArchive; the package is on     addArtifacts (archive=True); the sparkring
                            the executors' Python already     package itself goes as a pyfile artifact
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import threading
import urllib.request
import zipfile
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Iterator, Optional, Protocol

from sparkring.driver.executors import (
    Release,
    executor_hosts,
    executor_ids,
    give_up_executors,
    release_executors,
    silent_executors,
)
from sparkring.driver.host_watch import PlacedTask
from sparkring.driver.locality import no_locality_wait
from sparkring.driver.lost import LostTask, first_lost, tasks_of_group
from sparkring.driver.slots import SlotNeed, local_cluster_shape, local_slots, wait_for_slots

# The sparkring package: this module sits in its driver/ room.
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONNECT_RELEASE_LINE = (
    "over Spark Connect the executors belong to the server's application, which this client "
    "cannot stop; giving them back is left to its dynamic allocation (spark.dynamicAllocation.*)"
)


def is_connect(spark: Any) -> bool:
    return type(spark).__module__.startswith("pyspark.sql.connect")


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine's loopback (as src/client/submission/reachable.ts's isLoopback)."""
    return host == "localhost" or host == "::1" or host.startswith("127.")


class DriverSpark(Protocol):
    spark: Any
    connect: bool

    @property
    def app_id(self) -> str: ...

    @property
    def master(self) -> str: ...

    def conf(self, key: str, default: str) -> str: ...

    def wait_for_slots(self, need: SlotNeed, timeout_s: float) -> Optional[float]:
        """Seconds waited until `need` fits (SlotsError if it never will); None where it cannot be checked."""
        ...

    def job_scope(self, tag: str, description: str) -> Any:
        """A context in which the thread's Spark jobs carry `tag`; an interrupt cancels them."""
        ...

    def cancel(self, tag: str) -> None: ...

    def first_lost(self, tag: str) -> Optional[LostTask]: ...

    def executor_ids(self) -> Optional[list[str]]:
        """The application's executors; None where this session cannot list them."""
        ...

    def free_slots(self, need: SlotNeed) -> Optional[int]:
        """How many of `need`'s tasks could run at once now; None where this session cannot count them."""
        ...

    def give_up_host(self, host: str) -> list[str]:
        """Removes the executors on `host` that no longer answer (executors.py); their ids."""
        ...

    def placed_tasks(self, tag: str) -> Optional[list[PlacedTask]]:
        """The running tasks of `tag`'s jobs, with their executors' host:port (host_watch.py); None
        where this session cannot see them."""
        ...

    def give_up_executors(self, ids: list[str]) -> None:
        """Removes executors (a host gone), replaced where the cluster has room."""
        ...

    def release_executors(self) -> Optional[Release]:
        """Gives the executors back (None if there were none), or says who will."""
        ...

    def add_archive(self, path: str) -> None:
        """Ships the archive at `path` to every executor, unpacked in its SparkFiles directory under
        the archive's file name (or NAME, for `path#NAME`)."""
        ...

    def stopped(self) -> bool: ...


class _JobScopes:
    """`job_scope` for both kinds: the kind's own way to mark a thread's jobs (`_scope`/`_unscope`)
    and to cancel them."""

    @contextmanager
    def job_scope(self, tag: str, description: str) -> Iterator[None]:
        with self._scheduling():
            self._scope(tag, description)
            try:
                yield
            except KeyboardInterrupt:
                self.cancel(tag)
                raise
            finally:
                self._unscope(tag)

    def _scheduling(self) -> AbstractContextManager[None]:
        """How the kind's scheduler is set while the scope's jobs run (locality.py); as it is by default."""
        return nullcontext()

    def _scope(self, tag: str, description: str) -> None:
        raise NotImplementedError

    def _unscope(self, tag: str) -> None:
        raise NotImplementedError

    def cancel(self, tag: str) -> None:
        raise NotImplementedError


class ClassicSpark(_JobScopes):
    connect = False

    def __init__(self, spark: Any) -> None:
        self.spark = spark
        self.sc = spark.sparkContext
        self.given_up: set[str] = set()  # executors of lost hosts: killed, but Spark lists them a while

    @property
    def app_id(self) -> str:
        return str(self.sc.applicationId)

    @property
    def master(self) -> str:
        return str(self.sc.master)

    def conf(self, key: str, default: str) -> str:
        return str(self.sc.getConf().get(key, default))

    def wait_for_slots(self, need: SlotNeed, timeout_s: float) -> Optional[float]:
        jsc = self.sc._jsc.sc()
        profile = jsc.resourceProfileManager().defaultResourceProfile()
        return wait_for_slots(
            need,
            self.master,
            lambda: int(jsc.maxNumConcurrentTasks(profile)),
            lambda: len(executor_ids(self.sc)),
            timeout_s,
            local_cluster_shape(self.master, float(self.conf("spark.executor.resource.gpu.amount", "0"))),
        )

    def _scope(self, tag: str, description: str) -> None:
        self.sc.setJobGroup(tag, description, interruptOnCancel=True)

    def _unscope(self, tag: str) -> None:
        self.sc._jsc.clearJobGroup()

    def _scheduling(self) -> AbstractContextManager[None]:
        return no_locality_wait(self.sc)

    def cancel(self, tag: str) -> None:
        self.sc.cancelJobGroup(tag)

    def first_lost(self, tag: str) -> Optional[LostTask]:
        return first_lost(self.sc, tag)

    def executor_ids(self) -> Optional[list[str]]:
        return executor_ids(self.sc)

    def free_slots(self, need: SlotNeed) -> Optional[int]:
        jsc = self.sc._jsc.sc()
        return int(jsc.maxNumConcurrentTasks(jsc.resourceProfileManager().defaultResourceProfile()))

    def give_up_host(self, host: str) -> list[str]:
        gone = silent_executors(self.sc, host)
        self.give_up_executors(gone)
        return gone

    def placed_tasks(self, tag: str) -> Optional[list[PlacedTask]]:
        ports = executor_hosts(self.sc)
        return [
            PlacedTask(int(t.index()), str(t.executorId()), str(t.host()), ports.get(str(t.executorId()), ""))
            for t in tasks_of_group(self.sc, tag, "RUNNING")
        ]

    def give_up_executors(self, ids: list[str]) -> None:
        give_up_executors(self.sc, ids)
        self.given_up.update(ids)

    def release_executors(self) -> Optional[Release]:
        return release_executors(self.sc, given_up=frozenset(self.given_up))

    def add_archive(self, path: str) -> None:
        self.sc.addArchive(path)

    def stopped(self) -> bool:
        return bool(self.sc._jsc.sc().isStopped())


# Artifacts each Connect session has been given, by session id: the server refuses a name twice.
_shipped: dict[str, set[str]] = {}
_shipped_lock = threading.Lock()


def _digest_of_tree(root: str) -> tuple[str, list[str]]:
    files: list[str] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "_runtime"))
        files += [os.path.join(folder, n) for n in sorted(names) if n.endswith((".py", ".json", ".typed"))]
    h = hashlib.sha256()
    for f in files:
        h.update(os.path.relpath(f, root).encode())
        with open(f, "rb") as fh:
            h.update(hashlib.sha256(fh.read()).digest())
    return h.hexdigest()[:16], files


@functools.lru_cache(maxsize=1)
def package_zip() -> str:
    """This sparkring package (without the Node runtime a wheel carries) as a zip named by its
    content, for executors whose Python has no sparkring, or another one. Made once a process: the
    package does not change under it."""
    digest, files = _digest_of_tree(PACKAGE_DIR)
    path = os.path.join(tempfile.gettempdir(), f"sparkring-py-{digest}.zip")
    if not os.path.isfile(path):
        fd, tmp = tempfile.mkstemp(prefix="sparkring-py-", suffix=".zip.tmp", dir=tempfile.gettempdir())
        os.close(fd)
        try:
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
                for f in files:
                    z.write(f, os.path.join("sparkring", os.path.relpath(f, PACKAGE_DIR)))
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return path


def slots_of_executors(executors: list[dict[str, Any]], need: SlotNeed) -> int:
    """Task slots of the executors Spark's REST API lists (totalCores; GPU addresses where asked)."""
    slots = 0
    for e in executors:
        n = int(e.get("totalCores", 0)) // max(1, need.cpus_per_task)
        if need.gpus_per_task > 0:
            gpus = ((e.get("resources") or {}).get("gpu") or {}).get("addresses", [])
            n = min(n, int(len(gpus) // need.gpus_per_task))
        slots += n
    return slots


def connect_refusal(what: str, client: str, server: str) -> Optional[str]:
    """Why a Connect session of these versions cannot run a sparkring job, or None: barrier
    mapInArrow came to Spark Connect (client and server) in 4.0."""
    if min(int(client.split(".")[0]), int(server.split(".")[0])) >= 4:
        return None
    return (
        f"{what} needs Spark Connect 4.0 or later on both ends (barrier mapInArrow came to Spark Connect in 4.0), "
        f"but this session has client {client} and server {server}: upgrade them, or use a classic SparkSession"
    )


class ConnectSpark(_JobScopes):
    connect = True

    def __init__(self, spark: Any) -> None:
        self.spark = spark

    @property
    def app_id(self) -> str:
        return self.conf("spark.app.id", "unknown-app")

    @property
    def master(self) -> str:
        return self.conf("spark.master", "unknown")

    def conf(self, key: str, default: str) -> str:
        value = self.spark.conf.get(key, None)
        return default if value is None else str(value)

    def _rest_executors(self) -> Optional[list[dict[str, Any]]]:
        """The application's executors from its driver UI's REST API, when this client reaches it."""
        if self.conf("spark.ui.enabled", "true").lower() == "false":
            return None
        host = self.conf("spark.driver.host", "localhost")
        port = self.conf("spark.ui.port", "4040")
        url = f"http://{host}:{port}/api/v1/applications/{self.app_id}/executors"
        try:
            with urllib.request.urlopen(url, timeout=3) as reply:
                listed = json.load(reply)
        except (OSError, ValueError):  # no UI reachable from here, or another application's
            return None
        return [e for e in listed if e.get("id") != "driver" and e.get("isActive", True)]

    def wait_for_slots(self, need: SlotNeed, timeout_s: float) -> Optional[float]:
        gpus = float(self.conf("spark.executor.resource.gpu.amount", "0"))
        shape = local_cluster_shape(self.master, gpus)
        listed = self._rest_executors()
        if listed is None:
            fixed = local_slots(self.master)
            if shape is None and fixed is None:
                return None
            # The master's fixed shape: refused at once when it can never fit, else left to Spark.
            return wait_for_slots(need, self.master, lambda: need.workers, lambda: 0, timeout_s, shape)

        def free() -> int:
            return slots_of_executors(self._rest_executors() or [], need)

        return wait_for_slots(need, self.master, free, lambda: len(self._rest_executors() or []), timeout_s, shape)

    def _scope(self, tag: str, description: str) -> None:
        self.spark.addTag(tag)

    def _unscope(self, tag: str) -> None:
        self.spark.removeTag(tag)

    def cancel(self, tag: str) -> None:
        self.spark.interruptTag(tag)

    def first_lost(self, tag: str) -> Optional[LostTask]:
        return None  # no status store here: the stage's exception text is all there is

    def executor_ids(self) -> Optional[list[str]]:
        return None

    def free_slots(self, need: SlotNeed) -> Optional[int]:
        listed = self._rest_executors()
        return None if listed is None else slots_of_executors(listed, need)

    def give_up_host(self, host: str) -> list[str]:
        return []  # a Connect client cannot remove executors: Spark drops them after their heartbeats stop

    def placed_tasks(self, tag: str) -> Optional[list[PlacedTask]]:
        return None  # no status store here: the ring's peer timeout finds a lost host

    def give_up_executors(self, ids: list[str]) -> None:
        pass

    def release_executors(self) -> Optional[Release]:
        return Release(0, {}, left_to=CONNECT_RELEASE_LINE)

    def _add_once(self, path: str, **kind: bool) -> None:
        session = str(getattr(self.spark, "session_id", id(self.spark)))
        name = os.path.basename(path)
        with _shipped_lock:
            given = _shipped.setdefault(session, set())
            if name in given:
                return
            self.spark.addArtifacts(path, **kind)
            given.add(name)

    def add_archive(self, path: str) -> None:
        self._add_once(path, archive=True)

    def ship_package(self) -> None:
        """The sparkring package to the executors' Python, as the session's pyfile artifact."""
        self._add_once(package_zip(), pyfile=True)

    def stopped(self) -> bool:
        return bool(getattr(self.spark, "is_stopped", False))


def driver_spark(spark: Any) -> DriverSpark:
    """The driver's view of `spark`; over Spark Connect the sparkring package is shipped with it."""
    if is_connect(spark):
        connect = ConnectSpark(spark)
        connect.ship_package()
        return connect
    return ClassicSpark(spark)
