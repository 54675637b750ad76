"""A rehearsal for the worker's Arrow reader: a small IPC stream of zeros with the partition's own
schema, which the worker parses while Spark's allGather keeps it waiting (src/runtime/warm-up.ts).
"""

from __future__ import annotations

import pyarrow as pa

# Rows of a real-sized batch for the reader to rehearse on, within REHEARSAL_BYTES: the rehearsal
# travels to every worker in its init message, and a wide schema (784 pixel columns) would
# otherwise make it megabytes. The reader's cost per batch barely depends on its row count.
REHEARSAL_ROWS = 1024
REHEARSAL_BYTES = 256 << 10


def zeros(t: pa.DataType, n: int) -> pa.Array:
    """n zero values of type t (empty lists for list types; nulls for types without a zero)."""
    if pa.types.is_fixed_size_list(t):
        return pa.FixedSizeListArray.from_arrays(zeros(t.value_type, n * t.list_size), t.list_size)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        offsets = pa.array([0] * (n + 1), pa.int64() if pa.types.is_large_list(t) else pa.int32())
        values = zeros(t.value_type, 0)
        return (pa.LargeListArray if pa.types.is_large_list(t) else pa.ListArray).from_arrays(offsets, values)
    try:
        return pa.repeat(pa.scalar(0).cast(t), n)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return pa.nulls(n, t)


def rehearsal_stream(schema: pa.Schema) -> bytes:
    """An Arrow IPC stream: `schema`, one batch of up to REHEARSAL_ROWS zero rows (fewer when they
    would hold more than REHEARSAL_BYTES), end of stream."""
    batch = pa.RecordBatch.from_arrays([zeros(f.type, REHEARSAL_ROWS) for f in schema], schema=schema)
    if batch.nbytes > REHEARSAL_BYTES:
        rows = max(1, REHEARSAL_ROWS * REHEARSAL_BYTES // batch.nbytes)
        batch = pa.RecordBatch.from_arrays([zeros(f.type, rows) for f in schema], schema=schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()
