"""`sparkring models log NAME --out FILE`: the inference log's entries, as JSON lines on stdin, to
one Parquet file Spark reads for drift analysis (`python -m sparkring.inference_log OUT`).

Each line is one Redis stream entry of `sparkring serve` (src/serve/inference-log.ts): its stream
id and fields, all strings. Numbers become typed columns; inputs and outputs stay JSON text (full
values or a summary, as the server was told)."""

from __future__ import annotations

import json
import sys
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA = pa.schema(
    [
        ("stream_id", pa.string()),
        ("id", pa.string()),
        ("model", pa.string()),
        ("version", pa.int32()),
        ("via", pa.string()),
        ("protocol", pa.string()),
        ("latency_ms", pa.float64()),
        ("queue_ms", pa.float64()),
        ("ts", pa.timestamp("ms", tz="UTC")),
        ("rows", pa.int32()),
        ("inputs", pa.string()),
        ("outputs", pa.string()),
    ]
)

_CASTS: dict[str, Any] = {"version": int, "rows": int, "latency_ms": float, "queue_ms": float, "ts": int}


def _row(line: str) -> dict[str, Any]:
    entry = json.loads(line)
    return {
        name: (_CASTS[name](entry[name]) if name in _CASTS and entry.get(name) is not None else entry.get(name))
        for name in SCHEMA.names
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m sparkring.inference_log OUT.parquet < entries.jsonl", file=sys.stderr)
        return 2
    rows = [_row(line) for line in sys.stdin if line.strip()]
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    pq.write_table(table, argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
