"""The ring's rendezvous over the run's Redis stream, in place of BarrierTaskContext.allGather.

Spark's allGather costs a second at least, however soon every task arrives: the task thread checks
its RPC future once a second (Thread.sleep(1000) in BarrierTaskContext.runBarrier). Where the run
has Redis, each rank posts its note (its ring address and whether its host sees the run directory)
as an event signed with the run's events key, and reads the stream from where the driver saw it end
before the stage until every rank's note for this attempt and stage attempt is there. Runs without
Redis, or whose driver could not read its stream, gather through Spark as before.

Spark may run a failed barrier stage again within the same attempt, and PySpark does not tell a task
which stage attempt it belongs to; its task id does: ids grow, so a later stage attempt's tasks all
have higher ids than an earlier one's. Each rank keeps the highest-id note of every rank and
confirms the set it holds; the gather ends when every rank confirmed the same set, which a note of
a dead stage attempt never is (its task cannot confirm).

    driver:  after = stream_tail(redis)                        (make_task, once per attempt)
    rank r:  XADD {type: rendezvous, rank: r, attempt, tid, note}          (signed, as every event)
             XREAD BLOCK from `after`; holding a note of every rank:
             XADD {type: rendezvous-ack, rank: r, attempt, tid, tids}       (the note ids it holds)
             until every rank acked those tids, or the formation timeout
"""

from __future__ import annotations

import time
from typing import Any, Optional

from sparkring.driver.driver_events import append_signed, connect, signed_event
from sparkring.driver.spec import RedisEndpoint
from sparkring.error_codes import RING_FORMATION
from sparkring.failures import SparkringWorkerError, WorkerFailure
from sparkring.run_keys import run_key

READ_BLOCK_MS = 500


def stream_tail(endpoint: Optional[RedisEndpoint]) -> Optional[str]:
    """The id of the run stream's last entry ("0-0" when it has none), from which the ranks read
    each other's notes; None where there is no Redis or the driver cannot read it (Spark's allGather
    then, for every rank alike)."""
    if endpoint is None:
        return None
    try:
        r = connect(endpoint, timeout_s=5)
        try:
            last = r.xrevrange(endpoint.stream, count=1)
        finally:
            r.close()
    except Exception:
        return None
    return last[0][0].decode() if last else "0-0"


class Rendezvous:
    """One rank's side: `gather(note)` returns every rank's note, by rank."""

    def __init__(
        self,
        endpoint: RedisEndpoint,
        secret: str,
        after: str,
        rank: int,
        world_size: int,
        attempt: int,
        task_id: int,
        hosts: list[str],
        timeout_s: float,
    ) -> None:
        self._endpoint = endpoint
        self._key = run_key(secret, "events")
        self._after = after
        self._rank = rank
        self._world_size = world_size
        self._attempt = attempt
        self._tid = task_id
        self._hosts = hosts
        self._timeout_s = timeout_s
        # By rank: the (task id, note) and the (task id, acked ids) of its newest task.
        self._notes: dict[int, tuple[int, str]] = {}
        self._acks: dict[int, tuple[int, list[int]]] = {}

    def gather(self, note: str) -> list[str]:
        if self._world_size == 1:
            return [note]
        deadline = time.time() + self._timeout_s
        cursor = self._after
        posted = False
        acked: Optional[list[int]] = None
        r: Any = None
        while not self._confirmed():
            if time.time() > deadline:
                raise self._timed_out()
            try:  # a Redis that restarts meanwhile is ridden out until the deadline
                if r is None:
                    r = connect(self._endpoint, timeout_s=READ_BLOCK_MS / 1000 + 5)
                if not posted:
                    self._post(r, "rendezvous", note=note)
                    posted = True
                held = self._held()
                if held is not None and held != acked:
                    self._post(r, "rendezvous-ack", tids=held)
                    acked = held
                for _stream, entries in r.xread({self._endpoint.stream: cursor}, count=1000, block=READ_BLOCK_MS) or []:
                    for entry_id, fields in entries:
                        cursor = entry_id
                        self._take(signed_event(self._key, fields))
            except Exception:
                if r is not None:
                    r.close()
                    r = None
                time.sleep(0.2)
        if r is not None:
            r.close()
        return [self._notes[i][1] for i in range(self._world_size)]

    def _held(self) -> Optional[list[int]]:
        """The task ids of the notes held, by rank, once there is one of every rank."""
        if len(self._notes) < self._world_size:
            return None
        return [self._notes[i][0] for i in range(self._world_size)]

    def _confirmed(self) -> bool:
        held = self._held()
        if held is None:
            return False
        return all(self._acks.get(i) == (held[i], held) for i in range(self._world_size))

    def _post(self, r: Any, kind: str, **fields: Any) -> None:
        event = {"type": kind, "source": f"task-{self._rank}", "at": int(time.time() * 1000)}
        event.update(rank=self._rank, attempt=self._attempt, tid=self._tid, **fields)
        append_signed(r, self._endpoint.stream, self._key, event)

    def _take(self, event: Optional[dict[str, Any]]) -> None:
        if event is None or event.get("attempt") != self._attempt:
            return
        rank, tid = event.get("rank"), event.get("tid")
        if not isinstance(rank, int) or not 0 <= rank < self._world_size or not isinstance(tid, int):
            return
        kind = event.get("type")
        if kind == "rendezvous" and isinstance(event.get("note"), str):
            if rank not in self._notes or self._notes[rank][0] < tid:
                self._notes[rank] = (tid, str(event["note"]))
        elif kind == "rendezvous-ack" and isinstance(event.get("tids"), list):
            if rank not in self._acks or self._acks[rank][0] <= tid:
                self._acks[rank] = (tid, [int(t) for t in event["tids"]])

    def _timed_out(self) -> SparkringWorkerError:
        held = self._held()
        missing = [
            i
            for i in range(self._world_size)
            if i not in self._notes or (held is not None and self._acks.get(i) != (held[i], held))
        ]
        named = ", ".join(f"rank {i} on {self._hosts[i]}" if i < len(self._hosts) else f"rank {i}" for i in missing)
        return SparkringWorkerError(
            WorkerFailure(
                self._rank,
                f"ring formation: {named} did not reach the rendezvous on the run's Redis "
                f"({self._endpoint.url.split('@')[-1]}) within {round(self._timeout_s)} s; check that every "
                "executor host reaches that Redis, or raise --formation-timeout",
                code=RING_FORMATION,
            )
        )
