/**
 * hpo: the overhead a search adds per trial (scheduling through the Redis queue and a fresh Node
 * process), measured with trials that do nothing, beside a bare `node -e 0` start in the same run.
 *
 * A trial's overhead is the time its executor spends on it, from the end of the trial before on
 * the same executor (or its claim, for an executor's first trial) to its result recorded in the
 * queue, less the trial's own train() time.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LaunchResult, launch } from '../src/client/jobs/search.js';
import { packageFile } from '../src/util/package-file.js';
import { median } from './lib/spark.js';

/** Wall time of `node -e 0`, started the way the agent starts a trial (child_process from Node). */
function bareNodeMs(): number {
  const t = performance.now();
  execFileSync(process.execPath, ['-e', '0']);
  return performance.now() - t;
}

function overheads(r: LaunchResult): number[] {
  const byExecutor = new Map<string, NonNullable<LaunchResult['trials'][number]['timings']>[]>();
  for (const t of r.trials) {
    if (!t.timings || !t.executor) continue;
    byExecutor.set(t.executor, [...(byExecutor.get(t.executor) ?? []), t.timings]);
  }
  const out: number[] = [];
  for (const runs of byExecutor.values()) {
    runs.sort((a, b) => a.claimedAt - b.claimedAt);
    runs.forEach((t, i) => {
      const from = i === 0 ? t.claimedAt : (runs[i - 1]?.recordedAt as number);
      out.push(t.recordedAt - from - (t.trainEndAt - t.trainStartAt));
    });
  }
  return out;
}

export async function hpoBench(o: { trials: number; executors: number }, progress: (l: string) => void) {
  const experiments = await mkdtemp(join(tmpdir(), 'sparkring-hpo-'));
  const node: number[] = [];
  bareNodeMs(); // warm the file cache
  for (let i = 0; i < 20; i++) node.push(bareNodeMs());
  const nodeMs = median(node);
  progress(`node -e 0: median ${nodeMs.toFixed(1)} ms`);
  const rows = [];
  for (const entry of ['noop-trial.mjs', 'noop-trial.ts']) {
    const r = await launch({
      entry: packageFile(`bench/entries/${entry}`),
      grid: { i: Array.from({ length: o.trials }, (_, i) => i) },
      executors: o.executors,
      experiments,
      name: 'hpo',
      metric: 'none',
      onProgress: () => undefined,
    });
    const samples = overheads(r);
    const overhead = median(samples);
    progress(`${entry}: ${samples.length} trials, median overhead ${overhead.toFixed(1)} ms`);
    rows.push({
      entry,
      trials: r.trials.length,
      done: r.trials.filter((t) => t.status === 'done').length,
      median_overhead_ms: Number(overhead.toFixed(1)),
      beyond_node_ms: Number((overhead - nodeMs).toFixed(1)),
      goal_met: overhead - nodeMs <= 150,
      search_ms: r.timings.searchMs,
      release_after_last_trial_ms: r.timings.releaseMs === null ? null : Math.round(r.timings.releaseMs),
      samples_ms: samples.map((s) => Math.round(s)),
    });
  }
  return {
    bench: 'hpo',
    executors: o.executors,
    master: `local-cluster[${o.executors},1,1024]`,
    node_e0_ms: Number(nodeMs.toFixed(1)),
    goal: 'median overhead at most 150 ms beyond node -e 0',
    rows,
  };
}
