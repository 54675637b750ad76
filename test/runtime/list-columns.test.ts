/**
 * Array columns (Spark's array<float>, array<double>, array<int>) read from their element buffers:
 * the same values as row by row, in batches that Arrow sliced, and rows of unequal length named.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Field, FixedSizeList, Float32, List, RecordBatchReader, Table, vectorFromArray } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { PartitionData } from '../../src/runtime/data.js';
import { PYTHON, tempDir } from '../helpers/spark.js';

const rows = Array.from({ length: 10 }, (_, i) => [i, i + 0.5, 0 - i]); // 0 - 0 is 0, not -0 (as Python writes it)

function dataOf(table: Table): PartitionData {
  return new PartitionData(table.batches, table.schema);
}

describe('array columns', () => {
  it('reads List and FixedSizeList columns, sliced or not, as row-major values', () => {
    const list = vectorFromArray(rows, new List(new Field('item', new Float32(), true)));
    const fixed = vectorFromArray(rows, new FixedSizeList(3, new Field('item', new Float32(), true)));
    const table = new Table({ list, fixed });
    const want = Float32Array.from(rows.flat());
    for (const name of ['list', 'fixed']) {
      expect(dataOf(table).column(name)).toEqual({ values: want, width: 3 });
      // Rows 3..8 only: a slice shares the buffers at an offset.
      expect(dataOf(table.slice(3, 8)).column(name)).toEqual({ values: Float32Array.from(rows.slice(3, 8).flat()), width: 3 });
    }
    expect(dataOf(table.slice(2, 6)).toArrays({ features: ['list', 'fixed'] }).xs).toEqual(
      Float32Array.from(rows.slice(2, 6).flatMap((r) => [...r, ...r])),
    );
  });

  it('reads the arrays pyarrow writes as Spark does, over several batches', () => {
    const path = join(tempDir('lists'), 'lists.arrow');
    execFileSync(PYTHON, [
      '-c',
      `import pyarrow as pa
rows = [[i, i + 0.5, -i] for i in range(10)]
t = pa.table({"f": pa.array(rows, pa.list_(pa.float32())), "d": pa.array(rows, pa.list_(pa.float64())),
              "i": pa.array([[int(v) for v in r] for r in rows], pa.list_(pa.int32()))})
with pa.ipc.new_stream("${path}", t.schema) as w:
    for b in t.to_batches(max_chunksize=4):
        w.write_batch(b)
    w.write_batch(t.slice(7, 3).to_batches()[0])`,
    ]);
    const reader = RecordBatchReader.from(readFileSync(path)).open();
    const { schema } = reader;
    const data = new PartitionData([...reader], schema);
    const all = [...rows, ...rows.slice(7)];
    expect(data.column('f')).toEqual({ values: Float32Array.from(all.flat()), width: 3 });
    expect(data.column('d')).toEqual({ values: Float32Array.from(all.flat()), width: 3 });
    expect(data.column('i').values).toEqual(Float32Array.from(all.flat().map((v) => Math.trunc(v))));
  });

  it('refuses a null inside an array, naming the column, the batch and the row', () => {
    const holed = vectorFromArray(
      [
        [1, 2],
        [3, null],
        [5, 6],
      ],
      new List(new Field('item', new Float32(), true)),
    );
    expect(() => dataOf(new Table({ v: holed })).column('v')).toThrow(
      /data column "v" in row batch 0: row 1 has a null value; fill or drop it in Spark first/,
    );
  });

  it('names the row whose array has another length', () => {
    const uneven = vectorFromArray([[1, 2], [3, 4], [5]], new List(new Field('item', new Float32(), true)));
    expect(() => dataOf(new Table({ v: uneven })).column('v')).toThrow(
      /data column "v" in row batch 0: row 2 has 1 values, earlier rows 2/,
    );
  });
});
