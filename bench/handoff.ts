/**
 * Handoff: rows/s and MB/s from a cached Spark DataFrame into Node workers (an Arrow IPC stream
 * file in shared memory that each worker maps and parses), beside a no-op mapInArrow that pulls
 * the same partitions in the same application, also after an allGather.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jobSpec } from '../src/client/jobs/job-spec.js';
import { compileEntry } from '../src/client/submission/entry-compile.js';
import { benchOptions, median, sparkBench } from './lib/spark.js';

export async function handoffBench(
  o: { workers: number; rows: number; columns: number; rounds: number },
  progress: (l: string) => void,
) {
  const dir = await mkdtemp(join(tmpdir(), 'sparkring-handoff-'));
  const { o: opts, paths } = benchOptions(o.workers, join(dir, 'experiments'));
  const specPath = join(dir, 'spec.json');
  const spec = jobSpec(opts, paths, {
    runId: randomUUID(),
    secret: randomBytes(16).toString('hex'),
    attempt: 0,
    resultPath: join(dir, 'r.json'),
    redis: null,
    entry: await compileEntry(opts.entry, join(dir, 'entry.mjs'), 'installed'),
  });
  await writeFile(specPath, JSON.stringify(spec));
  progress(`handing ${o.rows} rows x ${o.columns} float columns to ${o.workers} workers`);
  const r = await sparkBench(opts, paths, (out) => [
    'handoff',
    specPath,
    out,
    String(o.rows),
    String(o.columns),
    String(o.rounds),
  ]);
  const noop = r.noop as Array<{ seconds: number; bytes: number }>;
  const ours = r.sparkring as Array<{ seconds: number; rows: number }>;
  const mb = (noop[0]?.bytes ?? 0) / 1e6;
  // Rounds alternate the two paths in one application; the ratio of medians is the figure.
  const noopSeconds = median(noop.map((x) => x.seconds));
  const ourSeconds = median(ours.map((x) => x.seconds));
  return {
    bench: 'handoff',
    workers: o.workers,
    rows: o.rows,
    columns: o.columns,
    rounds: o.rounds,
    arrow_MB: Number(mb.toFixed(1)),
    noop_mapInArrow: {
      rows_per_s: Math.round(o.rows / noopSeconds),
      MB_per_s: Number((mb / noopSeconds).toFixed(1)),
      median_seconds: noopSeconds,
    },
    sparkring: {
      rows_per_s: Math.round(o.rows / ourSeconds),
      MB_per_s: Number((mb / ourSeconds).toFixed(1)),
      median_seconds: ourSeconds,
      rows_delivered: ours.map((x) => x.rows),
    },
    ratio: Number((noopSeconds / ourSeconds).toFixed(2)),
    samples: { noop_seconds: noop.map((x) => x.seconds), sparkring_seconds: ours.map((x) => x.seconds) },
  };
}
