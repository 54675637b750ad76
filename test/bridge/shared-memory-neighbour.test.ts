/**
 * A neighbour of the same uid on an executor host: watching /dev/shm (inotify, as fs.watch does on
 * Linux) during a 2-worker run with data, it sees no sparkring file appear to open, though the
 * partitions and the ring's gradients went through shared memory (anonymous memfds, handed over).
 * After kill -9 of a worker and its executor, nothing is left in /dev/shm either.
 */
import { type FSWatcher, readdirSync, readFileSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { processes, sparkring, tempDir, waitForNoLeftovers, writeTable } from '../helpers/spark.js';

afterEach(async () => {
  expect(await waitForNoLeftovers()).toEqual([]);
});

const ours = (names: string[]): string[] => names.filter((n) => /sparkring/.test(n));

/** Every name created in /dev/shm while it watches. */
function watchShm(): { seen: string[]; stop(): void } {
  const seen: string[] = [];
  const watcher: FSWatcher = watch('/dev/shm', (_event, name) => {
    if (name) seen.push(String(name));
  });
  return { seen, stop: () => watcher.close() };
}

it('a neighbour watching /dev/shm during a 2-worker run finds no sparkring file to open', async () => {
  const dir = tempDir('shm-neighbour');
  const before = ours(readdirSync('/dev/shm'));
  const watcher = watchShm();
  try {
    writeFileSync(
      join(dir, 'train.ts'),
      `export default async function train(ctx: any) {
  const x = new Float32Array(2_000_000).fill(ctx.rank + 1); // 8 MB: through the ring's shared region
  const sum = await ctx.allreduce(x, 'sum');
  return { rows: ctx.data.numRows, first: sum[0] };
}
`,
    );
    const r = await sparkring([
      'allreduce',
      join(dir, 'train.ts'),
      '--workers',
      '2',
      '--data',
      writeTable(dir, 'linear', 4000),
      '--experiments',
      dir,
      '--json',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { result: { rows: number; first: number }; dir: string };
    expect(out.result.first).toBe(3);
    const ranks = (JSON.parse(readFileSync(join(out.dir, 'result.json'), 'utf8')) as { ranks: Array<{ ringDataPath: string }> })
      .ranks;
    expect(ranks.map((k) => k.ringDataPath)).toContain('shared memory');
  } finally {
    watcher.stop();
  }
  expect(ours(watcher.seen)).toEqual([]);
  expect(ours(readdirSync('/dev/shm'))).toEqual(before);
}, 240_000);

it('after kill -9 of a worker and its executor, nothing of the run is left in /dev/shm', async () => {
  const dir = tempDir('shm-killed');
  const before = ours(readdirSync('/dev/shm'));
  writeFileSync(
    join(dir, 'train.ts'),
    `export default async function train(ctx: any) {
  for (let i = 0; ; i++) { await ctx.allreduce(new Float32Array(1_000_000).fill(1), 'sum'); ctx.report({ step: i }); }
}
`,
  );
  const run = sparkring(
    ['allreduce', join(dir, 'train.ts'), '--workers', '2', '--data', writeTable(dir, 'linear', 4000), '--experiments', dir],
    {},
  );
  // Once both workers are in their loop, kill -9 rank 1's Node worker and the executor JVM above it:
  // this file's own (processes() keeps to the file's scope, where a file beside it runs its own).
  const pidsOf = (pattern: RegExp): number[] =>
    processes()
      .filter((p) => pattern.test(p.args))
      .map((p) => p.pid)
      .sort((a, b) => a - b);
  let killed = false;
  let bothSince: number | undefined;
  for (let i = 0; i < 1200 && !killed && run.exitCode === null; i++) {
    await new Promise((res) => setTimeout(res, 100));
    const workers = pidsOf(/runtime\/main\.js/);
    if (workers.length < 2) continue;
    bothSince ??= Date.now();
    if (Date.now() - bothSince < 3000) continue; // past formation, the handoff and the region's handover
    const executors = pidsOf(/CoarseGrainedExecutorBackend/);
    for (const pid of [...workers.slice(-1), ...executors.slice(-1)]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    killed = true;
  }
  expect(killed).toBe(true);
  const r = await run;
  expect(r.exitCode).not.toBe(0);
  expect(ours(readdirSync('/dev/shm'))).toEqual(before);
}, 240_000);
