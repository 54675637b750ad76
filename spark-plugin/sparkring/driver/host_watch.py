"""The driver's watch over the hosts of one attempt's tasks. A host that is cut off or powered off
closes no connection: its ring peers see it only when their peer timeout ends (30 s unless set),
and Spark only when the executors' heartbeats time out (spark.network.timeout, 120 s unless set).
The watch starts a connection to each running task's executor every POLL_S, without waiting for
the ones still trying (so a loss is seen LOST_AFTER_S after the last answer, not after rounds of
timeouts). A host is lost when none of its executors has answered for LOST_AFTER_S and at least
MISSES tries begun since have timed out (a refused connection is a process gone on a live host,
which Spark sees itself; a watch that could not run its tries judges nothing). Its executors are
then removed (and replaced where the cluster has room, as give_up_host does) and the attempt is
cancelled, seconds after the loss."""

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

POLL_S = 0.25
# Above the first SYN retransmission (1 s), so that one lost packet on a lossy link is no miss.
CONNECT_TIMEOUT_S = 1.5
# The tries begun in the LOST_AFTER_S - CONNECT_TIMEOUT_S before a judgement (four) must all have
# timed out: on a link that drops 5% of packets, about one chance in 10^8.
LOST_AFTER_S = 2.5
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
            f"({', '.join(self.executors)}) accepted a connection for {LOST_AFTER_S:g} s; "
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
        lost_after_s: float = LOST_AFTER_S,
    ) -> None:
        self._placed = placed
        self._give_up = give_up
        self._on_lost = on_lost
        self._check = check
        self._poll_s = poll_s
        self._lost_after_s = lost_after_s
        self.lost: Optional[LostHost] = None
        self._lock = threading.Lock()
        # By host: when (monotonic) the last try that it answered began, and the tries begun since that timed out.
        self._answered_at: dict[str, float] = {}
        self._misses: dict[str, int] = {}
        self._in_flight: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="sparkring-host-watch", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        pool = ThreadPoolExecutor(32, thread_name_prefix="sparkring-host-check")
        try:
            while not self._stop.wait(self._poll_s):
                try:
                    tasks = self._placed()
                except Exception:  # noqa: BLE001 - the status store is best effort; the stage may be ending
                    continue
                self._try_all(tasks, pool)
                lost = self._judge(tasks)
                if lost is not None and not self._stop.is_set():
                    self.lost = lost
                    try:
                        self._give_up(list(lost.executors))
                    except Exception as e:  # noqa: BLE001 - Spark removes them itself later
                        print(f"sparkring: could not remove the executors of host {lost.host}: {e}", file=sys.stderr)
                    self._on_lost()
                    return
        finally:
            pool.shutdown(wait=False, cancel_futures=True)  # tries still connecting end by their timeout

    def _try_all(self, tasks: list[PlacedTask], pool: ThreadPoolExecutor) -> None:
        now = time.monotonic()
        # A try may last CONNECT_TIMEOUT_S; more at once than that covers would only queue.
        most = int(CONNECT_TIMEOUT_S / self._poll_s) + 1
        for host, port in sorted({(t.host, t.host_port) for t in tasks}):
            with self._lock:
                self._answered_at.setdefault(host, now)  # first seen: given LOST_AFTER_S from now
                if self._in_flight.get(port, 0) >= most:
                    continue
                self._in_flight[port] = self._in_flight.get(port, 0) + 1
            pool.submit(self._try, host, port, now)

    def _try(self, host: str, port: str, begun: float) -> None:
        answered = self._check(port, CONNECT_TIMEOUT_S)
        with self._lock:
            self._in_flight[port] -= 1
            if answered:
                if begun >= self._answered_at.get(host, 0.0):
                    self._answered_at[host] = begun
                    self._misses[host] = 0
            elif begun >= self._answered_at.get(host, 0.0):
                self._misses[host] = self._misses.get(host, 0) + 1

    def _judge(self, tasks: list[PlacedTask]) -> Optional[LostHost]:
        now = time.monotonic()
        with self._lock:
            for host in sorted({t.host for t in tasks}):
                if now - self._answered_at.get(host, now) >= self._lost_after_s and self._misses.get(host, 0) >= MISSES:
                    on_host = [t for t in tasks if t.host == host]
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
