"""A rehearsal for the worker's Arrow reader: a small IPC stream of zeros with the partition's own
schema, which the worker parses while Spark's allGather keeps it waiting (src/runtime/warm-up.ts).
"""

from __future__ import annotations

import pyarrow as pa

# About a Spark Arrow batch's worth of work per message, without shipping megabytes: the reader's
# cost per batch barely depends on its row count.
REHEARSAL_ROWS = 1024


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


def rehearsal_stream(schema: pa.Schema, rows: int = REHEARSAL_ROWS) -> bytes:
    """An Arrow IPC stream: `schema`, one batch of `rows` zero rows, end of stream."""
    batch = pa.RecordBatch.from_arrays([zeros(f.type, rows) for f in schema], schema=schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()
