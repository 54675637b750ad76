"""The partition's way to its worker: one Arrow IPC stream, written by the task and mapped by the
worker range by range (src/runtime/data.ts), in an anonymous memfd that the worker inherits (no
name in /dev/shm for a neighbour of the same uid to open, nothing left after a SIGKILL), or in a
file in $SPARKRING_HANDOFF_DIR when that is set."""

from __future__ import annotations

import errno
import os
import tempfile
from typing import Callable, Iterator, Optional

import pyarrow as pa


class RowCounter:
    """Passes batches through, counting rows."""

    def __init__(self, batches: Iterator[pa.RecordBatch]) -> None:
        self._batches = batches
        self.rows = 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for b in self._batches:
            self.rows += b.num_rows
            yield b


# The worker parses the partition range by range as the task reports them: fewer, larger ranges
# cost it less than one per batch (bench handoff).
NOTIFY_BYTES = 16 << 20


class PartitionFile:
    """Where one partition goes: `path` opens it in this process and in the worker (which inherits
    `fds`); `close()` lets it go once the worker is done."""

    def __init__(self, name: str) -> None:
        chosen = os.environ.get("SPARKRING_HANDOFF_DIR")
        memfd_create = getattr(os, "memfd_create", None)
        self.fds: tuple[int, ...] = ()
        self._named: Optional[str] = None
        if chosen or memfd_create is None:
            self._named = os.path.join(handoff_dir(), name)
            self.path = self._named
        else:
            fd = memfd_create("sparkring-partition", os.MFD_CLOEXEC)
            self.fds = (fd,)
            # The same number in the worker, which gets the descriptor by pass_fds.
            self.path = f"/proc/self/fd/{fd}"

    @property
    def anonymous(self) -> bool:
        return self._named is None

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = ()
        if self._named is not None and os.path.exists(self._named):
            os.unlink(self._named)


def handoff_dir() -> str:
    """Where partitions are handed to workers: $SPARKRING_HANDOFF_DIR, else shared memory when the
    machine has it (a file there is already in RAM), else the temp dir."""
    chosen = os.environ.get("SPARKRING_HANDOFF_DIR")
    if chosen:
        return chosen
    return "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


class HandoffSpaceError(OSError):
    """The handoff directory filled up while a partition was written."""


def no_room_message(path: str, written: int) -> str:
    return (
        f"no room left in {os.path.dirname(path)} for this worker's partition after {written} bytes: give it more "
        "(a container's /dev/shm: docker run --shm-size) or point the executors at a larger directory with "
        "--conf spark.executorEnv.SPARKRING_HANDOFF_DIR=DIR"
    )


def write_partition(
    batches: Iterator[pa.RecordBatch], schema: pa.Schema, path: str, written: Callable[[int], None], exclusive: bool = True
) -> int:
    """Writes the partition as one Arrow IPC stream to `path`, calling `written(end)` whenever
    another NOTIFY_BYTES of whole messages are in; returns the bytes written.

    A file in shared memory rather than a pipe: the writer never waits on the reader, and the
    worker maps each range (no copy) while the next is written. Arrow's own stream writer writes
    each batch's buffers straight to the file.
    """
    # O_EXCL: a named path is this task's own, never a file that something else made.
    if exclusive:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    with pa.OSFile(path, "wb") as sink:
        try:
            with pa.ipc.new_stream(sink, schema) as writer:
                told = 0
                for batch in batches:
                    writer.write_batch(batch)
                    if sink.tell() - told >= NOTIFY_BYTES:
                        told = sink.tell()
                        written(told)
        except OSError as e:
            if e.errno == errno.ENOSPC or "No space left" in str(e):
                raise HandoffSpaceError(no_room_message(path, sink.tell())) from e
            raise
        return sink.tell()
