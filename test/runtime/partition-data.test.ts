/**
 * The partition as the worker takes it in (runtime/data.ts fromGrowingFile): an Arrow IPC stream
 * file that grows while the task writes it, reported range by range, mapped through the native
 * addon (runtime/partition-map.ts) or read when that is off.
 */
import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type RecordBatch, Table, tableToIPC, vectorFromArray } from 'apache-arrow';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { PartitionData } from '../../src/runtime/data.js';
import { fileRange, partitionMapper } from '../../src/runtime/partition-map.js';
import { MAP_ADDON } from '../../src/util/addons.js';
import { packageFile } from '../../src/util/package-file.js';
import { tempDir } from '../helpers/spark.js';

const modes = [
  { name: 'mapped', env: '1' },
  { name: 'read', env: '0' },
] as const;

afterEach(() => {
  delete process.env.SPARKRING_MAP_PARTITIONS;
});

/** A batch of `rows` rows: x = start.., y = 2x. */
function batch(start: number, rows: number): RecordBatch {
  const x = vectorFromArray(Float32Array.from({ length: rows }, (_, i) => start + i));
  const y = vectorFromArray(Float32Array.from({ length: rows }, (_, i) => 2 * (start + i)));
  const table = new Table({ x, y });
  return table.batches[0] as RecordBatch;
}

/** The stream's messages apart: the schema, each batch, the end marker (as the task writes them). */
function messages(batches: RecordBatch[]): { schema: Uint8Array; batches: Uint8Array[]; end: Uint8Array } {
  const schemaOnly = tableToIPC(new Table((batches[0] as RecordBatch).schema), 'stream');
  const schema = schemaOnly.subarray(0, schemaOnly.length - 8);
  return {
    schema,
    batches: batches.map((b) => {
      const one = tableToIPC(new Table([b]), 'stream');
      return one.subarray(schema.length, one.length - 8);
    }),
    end: schemaOnly.subarray(schemaOnly.length - 8),
  };
}

/** Writes the stream file and the task's reports: the schema, after every `group` batches, the end. */
function partitionFile(batches: RecordBatch[], group: number) {
  const m = messages(batches);
  const path = join(tempDir('partition'), 'part.arrow');
  const parts = [m.schema, ...m.batches, m.end];
  writeFileSync(path, Buffer.concat(parts));
  const reports: Array<{ type: 'chunk' | 'data'; path: string; end: number }> = [];
  let end = m.schema.length;
  reports.push({ type: 'chunk', path, end });
  m.batches.forEach((b, i) => {
    end += b.length;
    if ((i + 1) % group === 0) reports.push({ type: 'chunk', path, end });
  });
  reports.push({ type: 'data', path, end: end + m.end.length });
  return { path, next: async () => reports.shift() as (typeof reports)[number] };
}

describe('partition handoff', () => {
  it('the native addon is built here and maps a range at any offset, which outlives the file', () => {
    expect(partitionMapper(), 'native/build/partition_map.node is missing: run node scripts/build-native.mjs').toBeDefined();
    const path = join(tempDir('map'), 'bytes');
    const bytes = Buffer.from(Array.from({ length: 3 * 4096 + 17 }, (_, i) => i % 251));
    writeFileSync(path, bytes);
    const mapped = partitionMapper()?.(path, 4097, 8000) as Uint8Array;
    unlinkSync(path);
    expect(mapped.length).toBe(8000);
    expect(Buffer.from(mapped).equals(bytes.subarray(4097, 12097))).toBe(true);
  });

  it("mapping a range leaves V8's optimized code that reads Uint8Arrays optimized (Arrow's reader)", async () => {
    const path = join(tempDir('map'), 'bytes');
    writeFileSync(path, Buffer.alloc(8192, 1));
    // V8 reports a function's tier only to code compiled with --allow-natives-syntax: a child process.
    const probe = `
      const { mapRange } = (await import('node:module')).createRequire('/')(${JSON.stringify(packageFile(MAP_ADDON))});
      class Reader { constructor(bytes) { this.bytes = bytes; } at(i) { return this.bytes[i] | (this.bytes[i + 1] << 8); } }
      const read = (bytes) => { const r = new Reader(bytes); let s = 0; for (let i = 0; i < 1000; i++) s += r.at(i); return s; };
      for (let k = 0; k < 2000; k++) read(new Uint8Array(4096));
      const before = (%GetOptimizationStatus(read) & 16) !== 0;
      const mapped = mapRange(${JSON.stringify(path)}, 0, 4096);
      const after = (%GetOptimizationStatus(read) & 16) !== 0;
      console.log(JSON.stringify({ before, after, plain: Object.getPrototypeOf(mapped) === Uint8Array.prototype, sum: read(mapped) }));
    `;
    const { stdout } = await execa(process.execPath, [
      '--allow-natives-syntax',
      '--no-concurrent-recompilation',
      '--input-type=module',
      '-e',
      probe,
    ]);
    expect(JSON.parse(stdout)).toEqual({ before: true, after: true, plain: true, sum: 1000 * 257 });
  });

  for (const mode of modes) {
    it(`a partition reported in ranges arrives whole, every row once (${mode.name})`, async () => {
      process.env.SPARKRING_MAP_PARTITIONS = mode.env;
      const batches = Array.from({ length: 7 }, (_, i) => batch(i * 100, 100));
      const file = partitionFile(batches, 3);
      const data = await PartitionData.fromGrowingFile(file.next);
      expect(data.columns).toEqual(['x', 'y']);
      expect(data.numRows).toBe(700);
      expect(Array.from(data.column('x').values)).toEqual(Array.from({ length: 700 }, (_, i) => i));
      expect(Array.from(data.column('y').values)).toEqual(Array.from({ length: 700 }, (_, i) => 2 * i));
      // The worker's copy: the file is gone once it is in.
      expect(existsSync(file.path)).toBe(false);
    });

    it(`a file shorter than the task reported is an error naming it (${mode.name})`, async () => {
      process.env.SPARKRING_MAP_PARTITIONS = mode.env;
      const file = partitionFile([batch(0, 10)], 1);
      writeFileSync(file.path, readFileSync(file.path).subarray(0, 100));
      await expect(PartitionData.fromGrowingFile(file.next)).rejects.toThrow(
        new RegExp(`^${file.path} holds 100 bytes, fewer than the \\d+ asked for$`),
      );
    });
  }

  it('a partition with no rows keeps its columns', async () => {
    const stream = tableToIPC(new Table(batch(0, 1).schema), 'stream');
    const path = join(tempDir('partition'), 'empty.arrow');
    writeFileSync(path, stream);
    const reports = [
      { type: 'chunk' as const, path, end: stream.length - 8 },
      { type: 'data' as const, path, end: stream.length },
    ];
    const data = await PartitionData.fromGrowingFile(async () => reports.shift() as (typeof reports)[number]);
    expect(data.columns).toEqual(['x', 'y']);
    expect(data.numRows).toBe(0);
  });

  it('reads the same bytes as it maps', async () => {
    const path = join(tempDir('map'), 'bytes');
    writeFileSync(path, Buffer.from('0123456789abcdef'));
    process.env.SPARKRING_MAP_PARTITIONS = '0';
    const read = Buffer.from(await fileRange(path, 3, 9)).toString();
    delete process.env.SPARKRING_MAP_PARTITIONS;
    const mapped = Buffer.from(await fileRange(path, 3, 9)).toString();
    expect([read, mapped]).toEqual(['3456789ab', '3456789ab']);
  });
});
