/**
 * Handoff: rows/s and MB/s from a cached Spark DataFrame into Node workers (Arrow IPC over a
 * pipe), beside a no-op mapInArrow that pulls the same partitions in the same application.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jobSpec } from '../src/client/allreduce.js';
import { benchOptions, sparkBench } from './lib/spark.js';

export async function handoffBench(o: { workers: number; rows: number; columns: number }, progress: (l: string) => void) {
  const dir = await mkdtemp(join(tmpdir(), 'sparkring-handoff-'));
  const { o: opts, paths } = benchOptions(o.workers, join(dir, 'experiments'));
  const specPath = join(dir, 'spec.json');
  const spec = jobSpec(opts, paths, {
    runId: randomUUID(),
    secret: randomBytes(16).toString('hex'),
    attempt: 0,
    resultPath: join(dir, 'r.json'),
    redis: null,
  });
  await writeFile(specPath, JSON.stringify(spec));
  progress(`handing ${o.rows} rows x ${o.columns} float columns to ${o.workers} workers`);
  const r = await sparkBench(opts, paths, (out) => ['handoff', specPath, out, String(o.rows), String(o.columns)]);
  const noop = r.noop as { seconds: number; bytes: number };
  const ours = r.sparkring as { seconds: number; rows: number };
  const mb = noop.bytes / 1e6;
  const noopRows = o.rows / noop.seconds;
  const ourRows = o.rows / ours.seconds;
  return {
    bench: 'handoff',
    workers: o.workers,
    rows: o.rows,
    columns: o.columns,
    arrow_MB: Number(mb.toFixed(1)),
    noop_mapInArrow: {
      rows_per_s: Math.round(noopRows),
      MB_per_s: Number((mb / noop.seconds).toFixed(1)),
      seconds: noop.seconds,
    },
    sparkring: {
      rows_per_s: Math.round(ourRows),
      MB_per_s: Number((mb / ours.seconds).toFixed(1)),
      seconds: ours.seconds,
      rows_delivered: ours.rows,
    },
    ratio: Number((ourRows / noopRows).toFixed(2)),
  };
}
