"""The application's executors, through the JVM gateway: which there are, giving them back, and
giving up those of a host that no longer answers."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Optional


def executor_ids(sc: Any) -> list[str]:
    jsc = sc._jsc.sc()
    return [str(x) for x in sc._jvm.scala.collection.JavaConverters.seqAsJavaList(jsc.getExecutorIds())]


@dataclass
class Release:
    """How giving the executors back went: ms until Spark listed none, or the executors (with their
    host:port) still listed when the wait ended; or, where this session cannot give them back (Spark
    Connect), the `left_to` line that says who will."""

    ms: float
    remaining: dict[str, str]
    left_to: Optional[str] = None
    given_up: tuple[str, ...] = ()

    @property
    def released_ms(self) -> Optional[float]:
        """The result's releaseMs: the time they took, or None when some did not go (or none were given back)."""
        return None if self.remaining or self.left_to else self.ms

    def line(self) -> str:
        if self.left_to:
            return self.left_to
        if not self.remaining:
            return f"executors released in {self.ms:.0f} ms{self._given_up_note()}"
        which = ", ".join(f"executor {i} ({h})" if h else f"executor {i}" for i, h in self.remaining.items())
        return (
            f"executors not all released after {self.ms / 1000:.0f} s: {which} still listed; Spark drops an"
            " executor it cannot reach after spark.network.timeout (120 s unless set)"
        ) + self._given_up_note()

    def _given_up_note(self) -> str:
        if not self.given_up:
            return ""
        return (
            f"; not waited for: executor{'s' if len(self.given_up) > 1 else ''} {', '.join(self.given_up)} of a lost host,"
            " given up during the run (Spark lists them until spark.network.timeout)"
        )


def executor_hosts(sc: Any) -> dict[str, str]:
    """Executor id -> host:port from Spark's status store (empty where this Spark does not offer it)."""
    try:
        summaries = sc._jvm.scala.collection.JavaConverters.seqAsJavaList(sc._jsc.sc().statusStore().executorList(True))
        return {str(s.id()): str(s.hostPort()) for s in summaries}
    except Exception:  # noqa: BLE001 - statusStore is Spark's own API, not a promise; hosts are a courtesy
        return {}


def release_executors(sc: Any, timeout_s: float = 60, given_up: frozenset[str] = frozenset()) -> Optional[Release]:
    """Kills every executor of this application (barrier jobs cannot use dynamic allocation, so
    we give them back ourselves) and waits up to `timeout_s` for Spark to report them gone; None if
    there were none. Executors in `given_up` (a lost host's, already killed during the run) are not
    waited for: nothing on their host answers, so Spark lists them until their heartbeats time out.
    Their replacements may register while this waits (the host came back, or another had room):
    those are killed as they appear."""
    ids = executor_ids(sc)
    if not ids:
        return None
    hosts = executor_hosts(sc)
    started = time.time()
    sc._jsc.sc().killExecutors(sc._jvm.PythonUtils.toSeq(ids))
    killed = set(ids)
    left = [i for i in ids if i not in given_up]
    while left and time.time() - started < timeout_s:
        time.sleep(0.02)
        listed = executor_ids(sc)
        newcomers = [i for i in listed if i not in killed and i not in given_up]
        if newcomers:
            hosts.update(executor_hosts(sc))
            sc._jsc.sc().killExecutors(sc._jvm.PythonUtils.toSeq(newcomers))
            killed.update(newcomers)
        left = [i for i in listed if i not in given_up]
    unreached = tuple(i for i in ids if i in given_up)
    return Release((time.time() - started) * 1000, {i: hosts.get(i, "") for i in left}, given_up=unreached)


def probe(host_port: str, timeout_s: float) -> str:
    """A TCP connection to host:port: "open" (accepted, or no port known: nothing says the executor
    is gone), "refused" (the host says nothing listens there) or "silent" (a timeout, an unreachable
    host or network)."""
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        return "open"
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "silent"


def answers(host_port: str, timeout_s: float) -> bool:
    """Whether something accepts a TCP connection at host:port within `timeout_s`."""
    return probe(host_port, timeout_s) == "open"


def silent_executors(sc: Any, host: str, timeout_s: float = 1.0) -> list[str]:
    """The executors on `host` that no longer answer on their port (a host gone: powered off, cut
    off), for the caller to give up (give_up_executors): Spark itself keeps them, idle, until their
    heartbeats time out (spark.network.timeout, 120 s unless set), and would place the next barrier
    stage's tasks on them. Executors that still answer (only a worker died there) are not listed."""
    on_host = [(i, hp) for i, hp in executor_hosts(sc).items() if i != "driver" and hp.rpartition(":")[0].strip("[]") == host]
    if not on_host:
        return []
    with ThreadPoolExecutor(len(on_host)) as pool:  # asked at once: a host gone makes each wait the timeout
        answered = list(pool.map(lambda e: answers(e[1], timeout_s), on_host))
    return [i for (i, _), ok in zip(on_host, answered) if not ok]


def give_up_executors(sc: Any, ids: list[str]) -> None:
    """Kills executors as Spark kills a failed one (killAndReplaceExecutor, private to Spark's Scala
    but callable here): the application's target stays, so a cluster with room elsewhere starts
    replacements."""
    for i in ids:
        sc._jsc.sc().killAndReplaceExecutor(i)
