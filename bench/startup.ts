/**
 * Startup and teardown: time from submit to a formed ring, beside a no-op Spark barrier job that
 * does one allGather (the floor of any barrier-stage launcher), on the same master in the same
 * run; and, through the CLI, from a model saved to the CLI's exit (the executors' release comes
 * after it, recorded in the run's result.json).
 */
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { allreduce } from '../src/client/jobs/train.js';
import { packageFile } from '../src/util/package-file.js';
import { benchOptions, median, noopEntry, sparkBench } from './lib/spark.js';

/** One CLI run of the save-model entry: ms from the model on disk to the CLI's exit, and the release it recorded. */
async function saveToExit(experiments: string): Promise<{ exitAfterSaveMs: number; releaseMs: number | null }> {
  const cli = await execa(
    process.execPath,
    [
      packageFile('dist/src/cli/main.js'),
      'allreduce',
      packageFile('bench/entries/save-model.mjs'),
      '--workers',
      '2',
      '--experiments',
      experiments,
      '--json',
    ],
    { reject: false },
  );
  const exitedAt = Date.now();
  if (cli.exitCode !== 0) throw new Error(`the CLI run failed: ${cli.stderr.slice(-2000)}`);
  const out = JSON.parse(cli.stdout) as { dir: string; result: { savedAt: number } };
  // The driver records the release once it is done (seconds after the CLI returned).
  let releaseMs: number | null = null;
  for (let i = 0; i < 120 && releaseMs === null; i++) {
    releaseMs = (JSON.parse(await readFile(join(out.dir, 'result.json'), 'utf8')) as { releaseMs: number | null }).releaseMs;
    if (releaseMs === null) await new Promise((r) => setTimeout(r, 250));
  }
  return { exitAfterSaveMs: exitedAt - out.result.savedAt, releaseMs };
}

export async function startupBench(o: { workers: number; rounds: number }, progress: (l: string) => void) {
  const experiments = await mkdtemp(join(tmpdir(), 'sparkring-startup-'));
  const { o: opts, paths } = benchOptions(o.workers, experiments);
  const noop: number[] = [];
  const ours: number[] = [];
  const release: number[] = [];
  const exitAfterSave: number[] = [];
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
    const t = await saveToExit(experiments);
    exitAfterSave.push(t.exitAfterSaveMs);
    if (t.releaseMs !== null) release.push(t.releaseMs);
    progress(
      `round ${round + 1}: no-op barrier + allGather ${noop.at(-1)} ms, sparkring submit to ring ${ours.at(-1)} ms, CLI exit ${exitAfterSave.at(-1)} ms after the model was saved, release (after it) ${Math.round(release.at(-1) ?? 0)} ms`,
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
    cli_exit_after_save_ms: Math.round(median(exitAfterSave)),
    release_ms: release.length ? Math.round(median(release)) : null,
    samples: { noop, sparkring: ours, exitAfterSave, release },
  };
}
