/**
 * Startup: time from submit to a formed ring, beside a no-op Spark barrier job that does one
 * allGather (the floor of any barrier-stage launcher), on the same master in the same run.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allreduce } from '../src/client/jobs/train.js';
import { benchOptions, median, noopEntry, sparkBench } from './lib/spark.js';

export async function startupBench(o: { workers: number; rounds: number }, progress: (l: string) => void) {
  const experiments = await mkdtemp(join(tmpdir(), 'sparkring-startup-'));
  const { o: opts, paths } = benchOptions(o.workers, experiments);
  const noop: number[] = [];
  const ours: number[] = [];
  const release: number[] = [];
  for (let round = 0; round < o.rounds; round++) {
    const submitAt = Date.now();
    const r = await sparkBench(opts, paths, (out) => ['noop-barrier', out, String(o.workers)]);
    noop.push(Math.round((r.allGatherAt as number) - submitAt));
    const run = await allreduce({
      entry: noopEntry(),
      workers: o.workers,
      experiments,
      name: 'startup',
      onProgress: () => undefined,
    });
    ours.push(run.timings.submitToRingMs);
    if (run.timings.releaseMs !== null) release.push(run.timings.releaseMs);
    progress(
      `round ${round + 1}: no-op barrier + allGather ${noop.at(-1)} ms, sparkring submit to ring ${ours.at(-1)} ms, release ${Math.round(release.at(-1) ?? 0)} ms`,
    );
  }
  const noopMs = median(noop);
  const submitToRingMs = median(ours);
  return {
    bench: 'startup',
    workers: o.workers,
    master: `local-cluster[${o.workers},1,1024]`,
    rounds: o.rounds,
    noop_barrier_allgather_ms: noopMs,
    submit_to_ring_ms: submitToRingMs,
    ratio: Number((submitToRingMs / noopMs).toFixed(2)),
    release_ms: release.length ? Math.round(median(release)) : null,
    samples: { noop, sparkring: ours, release },
  };
}
