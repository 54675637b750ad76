import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runStream } from '../../src/events/redis.js';
import { type AllreduceResult, allreduce } from '../../src/index.js';
import { TestRedis } from '../helpers/redis.js';
import { entry, pidOf, processes, sparkring, tempDir, waitForNoLeftovers, writeTable } from '../helpers/spark.js';
import { readTensorBoard } from '../helpers/tensorboard.js';

interface Resumed {
  attempt: number;
  resumedFrom: number;
  steps: number;
  weights: number[];
}

const STEPS = 40;

let redis: TestRedis;

/** This run's metrics entries on its Redis stream: [rank, step] in stream order. */
async function streamedSteps(runId: string): Promise<Array<[number, number]>> {
  const client = new Redis(`redis://127.0.0.1:${redis.port}`);
  try {
    const entries = (await client.xrange(runStream(runId), '-', '+')) as Array<[string, string[]]>;
    return entries
      .map(([, f]) => JSON.parse(f[f.indexOf('e') + 1] as string) as { type: string; rank: number; step: number })
      .filter((e) => e.type === 'metrics')
      .map((e) => [e.rank, e.step]);
  } finally {
    client.disconnect();
  }
}

/** The pid of a Python worker that a pyspark daemon forked for a task (not a daemon itself). */
function pythonWorker(): number | undefined {
  const rows = processes();
  const daemons = new Set(rows.filter((r) => /-m pyspark\.daemon/.test(r.args)).map((r) => r.pid));
  return rows.find((r) => daemons.has(r.pid) && daemons.has(r.ppid))?.pid;
}

/** Runs the resumable entry; once a worker reports step 12, kills -9 what `victim` matches. */
async function run(
  dir: string,
  data: string,
  victim?: RegExp | (() => number | undefined),
  lines: string[] = [],
): Promise<AllreduceResult> {
  let killed = false;
  return allreduce({
    entry: entry('resumable.ts'),
    workers: 2,
    data,
    experiments: join(dir, 'experiments'),
    hparams: { steps: STEPS, stepMs: 150 },
    maxAttempts: victim ? 2 : 1,
    redis: `redis://127.0.0.1:${redis.port}`,
    onProgress: (line) => {
      lines.push(line);
      const m = /^\[worker \d\] step (\d+)/.exec(line);
      if (victim && !killed && m && Number(m[1]) >= 12) {
        const pid = typeof victim === 'function' ? victim() : pidOf(victim);
        if (pid) {
          killed = true;
          process.kill(pid, 'SIGKILL');
        }
      }
    },
  });
}

describe('a run that loses a worker or an executor resumes from its checkpoint', () => {
  let dir: string;
  let data: string;
  let baseline: Resumed;

  beforeAll(async () => {
    redis = await TestRedis.start();
    dir = tempDir('retries');
    data = writeTable(dir, 'linear', 160);
    baseline = (await run(dir, data)).result as Resumed;
  }, 240_000);

  afterAll(async () => {
    await redis?.stop();
  });

  it('`experiments rerun` of the finished run, from its spec.json alone, gives the same result', async () => {
    const experiments = join(dir, 'experiments');
    const runs = JSON.parse((await sparkring(['experiments', 'list', '--experiments', experiments, '--json'])).stdout) as Array<{
      id: string;
    }>;
    const r = await sparkring(['experiments', 'rerun', (runs[0] as { id: string }).id, '--experiments', experiments, '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    const again = JSON.parse(r.stdout) as { result: Resumed; dir: string };
    expect(again.dir).not.toBe((runs[0] as { id: string }).id);
    expect(again.result.weights).toEqual(baseline.weights);
  }, 240_000);

  afterEach(async () => {
    expect(await waitForNoLeftovers()).toEqual([]);
  });

  it.each([
    [
      'a Node worker',
      /node .*runtime\/main\.js/,
      /^sparkring: attempt 1 failed: worker \d failed: the Node worker \(pid \d+\) on \S+ was killed by signal 9 \(SIGKILL\) before reporting \(on host \S+, during \w+\); retrying from the last checkpoint/,
    ],
    [
      'an executor JVM',
      /CoarseGrainedExecutorBackend/,
      /^sparkring: attempt 1 failed: worker \d failed: its executor \d+ on \S+ was lost \(Command exited with code 137\); retrying from the last checkpoint/,
    ],
    [
      "a task's Python worker",
      pythonWorker,
      /^sparkring: attempt 1 failed: worker \d failed: the Python worker of its Spark task on \S+ \(executor \d+\) died: Python worker exited unexpectedly \(crashed\); retrying from the last checkpoint/,
    ],
  ] as const)(
    'kill -9 of %s: 2 attempts, the retry line says what failed, the weights of a run that never failed',
    async (_what, victim, retryLine) => {
      const lines: string[] = [];
      const r = await run(dir, data, victim, lines);
      expect(lines.filter((l) => l.includes('attempt 1 failed'))).toEqual([expect.stringMatching(retryLine)]);
      // The killed attempt's partition files went too (the task removes them, or its worker when the task died).
      expect(readdirSync('/dev/shm').filter((f) => f.startsWith(`sparkring-${r.runId}-`))).toEqual([]);
      const result = r.result as Resumed;
      expect(r.attempts).toBe(2);
      expect(result.attempt).toBe(1);
      expect(result.resumedFrom).toBeGreaterThanOrEqual(10);
      expect(result.steps).toBe(STEPS);
      for (const [i, v] of result.weights.entries()) expect(v).toBeCloseTo(baseline.weights[i] as number, 5);
      // Every step once per worker on the run's stream, and in metrics.jsonl: none lost, none doubled.
      const streamed = await streamedSteps(r.runId);
      for (const rank of [0, 1]) {
        const steps = streamed.filter(([k]) => k === rank).map(([, step]) => step);
        expect(steps.sort((a, b) => a - b)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
      }
      // One complete experiment directory for both attempts.
      for (const f of [
        'spec.json',
        'result.json',
        'checkpoint/state.json',
        'versioned/environment.json',
        'logs/worker-0.log',
        'logs/worker-1.log',
      ]) {
        expect(existsSync(join(r.dir, f)), f).toBe(true);
      }
      expect(JSON.parse(readFileSync(join(r.dir, 'result.json'), 'utf8'))).toMatchObject({ ok: true, attempts: 2 });
      // TensorBoard's reader drops what the failed attempt wrote past the checkpoint.
      for (const rank of [0, 1]) {
        const board = readTensorBoard(join(r.dir, 'tensorboard', `worker-${rank}`));
        expect(board.scalars.loss?.map(([step]) => step)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
      }
      const records = readFileSync(join(r.dir, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { rank: number; step: number });
      for (const rank of [0, 1]) {
        expect(records.filter((x) => x.rank === rank).map((x) => x.step)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
      }
    },
    240_000,
  );
});
