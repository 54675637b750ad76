"""The driver's watch over the hosts of one attempt's tasks. A host that is cut off or powered off
closes no connection: its ring peers see it only when their peer timeout ends (30 s unless set),
and Spark only when the executors' heartbeats time out (spark.network.timeout, 120 s unless set).
The watch connects to each running task's executor every POLL_S; a host none of whose executors
answers twice in a row (a timeout or an unreachable network: a refused connection is a process
gone on a live host, which Spark sees itself) is lost. Its executors are then removed (and replaced
where the cluster has room, as give_up_host does) and the attempt is cancelled, seconds after the
loss."""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Optional

from sparkring.driver.executors import probe
from sparkring.error_codes import HOST_LOST
from sparkring.failures import error_report

POLL_S = 0.5
# Above the first SYN retransmission (1 s), so that one lost packet on a lossy link is no miss.
CONNECT_TIMEOUT_S = 1.5
MISSES = 2


@dataclass(frozen=True)
class PlacedTask:
    """A running task of the attempt: its partition (the rank), executor and executor's host:port."""

    rank: int
    executor: str
    host: str
    host_port: str


@dataclass(frozen=True)
class LostHost:
    host: str
    ranks: tuple[int, ...]
    executors: tuple[str, ...]
    # time.time() when the watch judged it lost.
    at: float

    def error(self) -> dict[str, object]:
        """The attempt's error report: the host, its ranks, and the lowest of them as lostPeer."""
        ranks = ", ".join(str(r) for r in self.ranks)
        noun = "rank" if len(self.ranks) == 1 else "ranks"
        return error_report(
            HOST_LOST,
            f"host {self.host} ({noun} {ranks}) stopped answering: none of its executors "
            f"({', '.join(self.executors)}) accepted a connection in {MISSES} tries of {CONNECT_TIMEOUT_S:g} s; "
            "the attempt was ended rather than left to wait out the ring's peer timeout",
            rank=self.ranks[0],
            lostPeer={"rank": self.ranks[0], "host": self.host},
        )


def reachable(host_port: str, timeout_s: float) -> bool:
    """Whether the host of host:port is there: a connection made, or refused (nothing listens, but
    the host said so). Not a timeout, nor an unreachable host or network."""
    return probe(host_port, timeout_s) != "silent"


class HostWatch:
    """Checks, in a thread, the hosts that `placed()` lists (the attempt's running tasks); for the
    first host lost, calls `give_up(executors)` and then `on_lost()` (which cancels the attempt),
    and keeps it as `lost`."""

    def __init__(
        self,
        placed: Callable[[], list[PlacedTask]],
        give_up: Callable[[list[str]], None],
        on_lost: Callable[[], None],
        check: Callable[[str, float], bool] = reachable,
        poll_s: float = POLL_S,
    ) -> None:
        self._placed = placed
        self._give_up = give_up
        self._on_lost = on_lost
        self._check = check
        self._poll_s = poll_s
        self.lost: Optional[LostHost] = None
        self._misses: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="sparkring-host-watch", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        with ThreadPoolExecutor(8, thread_name_prefix="sparkring-host-check") as pool:
            while not self._stop.wait(self._poll_s):
                try:
                    tasks = self._placed()
                except Exception:  # noqa: BLE001 - the status store is best effort; the stage may be ending
                    continue
                lost = self._round(tasks, pool)
                if lost is not None and not self._stop.is_set():
                    self.lost = lost
                    try:
                        self._give_up(list(lost.executors))
                    except Exception as e:  # noqa: BLE001 - Spark removes them itself later
                        print(f"sparkring: could not remove the executors of host {lost.host}: {e}", file=sys.stderr)
                    self._on_lost()
                    return

    def _round(self, tasks: list[PlacedTask], pool: ThreadPoolExecutor) -> Optional[LostHost]:
        by_host: dict[str, list[PlacedTask]] = {}
        for t in tasks:
            by_host.setdefault(t.host, []).append(t)
        ports = sorted({t.host_port for t in tasks})
        answered = dict(zip(ports, pool.map(lambda hp: self._check(hp, CONNECT_TIMEOUT_S), ports)))
        for host, on_host in sorted(by_host.items()):
            if any(answered[t.host_port] for t in on_host):
                self._misses[host] = 0
                continue
            self._misses[host] = self._misses.get(host, 0) + 1
            if self._misses[host] >= MISSES:
                return LostHost(
                    host,
                    tuple(sorted(t.rank for t in on_host)),
                    tuple(sorted({t.executor for t in on_host})),
                    time.time(),
                )
        return None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2 * CONNECT_TIMEOUT_S + 1)
