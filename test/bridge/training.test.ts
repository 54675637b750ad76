import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AllreduceResult, allreduce } from '../../src/index.js';
import { type LinearResult, singleWorkerReference } from '../helpers/linear-reference.js';
import { entry, gpuDiscoveryScript, sparkring, tempDir, waitForNoLeftovers, writeTable } from '../helpers/spark.js';
import { readTensorBoard } from '../helpers/tensorboard.js';

const WORKERS = 2;
const BATCH = 8;
const ROWS = WORKERS * BATCH * 10;

describe(`allreduce on local-cluster[${WORKERS},1,1024] with fake GPUs`, () => {
  let run: AllreduceResult;
  let ranks: LinearResult[];
  const lines: string[] = [];

  beforeAll(async () => {
    const dir = tempDir('train');
    run = await allreduce({
      entry: entry('linear.ts'),
      workers: WORKERS,
      data: writeTable(dir, 'linear', ROWS),
      hparams: { batchSize: BATCH },
      experiments: `${dir}/experiments`,
      gpusPerWorker: 1,
      // The GPUs are fake: a native TensorFlow would rightly refuse them (tf-backend.test.ts).
      tfBackend: 'cpu',
      sparkConf: { 'spark.worker.resource.gpu.discoveryScript': gpuDiscoveryScript(dir) },
      onProgress: (l) => lines.push(l),
    });
    ranks = run.ranks.map((r) => r.result as LinearResult);
  }, 240_000);

  afterAll(async () => {
    expect(await waitForNoLeftovers()).toEqual([]);
  });

  it('delivers every input row to exactly one worker, exactly once', () => {
    const seen = ranks.flatMap((r) => r.batches.flat()).sort((a, b) => a - b);
    expect(seen).toEqual(Array.from({ length: ROWS }, (_, i) => i));
    expect(run.ranks.map((r) => r.rows).reduce((a, b) => a + b, 0)).toBe(ROWS);
  });

  it("gives each worker's Node process its own CUDA_VISIBLE_DEVICES, as Spark assigned", () => {
    for (const r of ranks) {
      expect(r.gpus).toHaveLength(1);
      expect(r.cudaVisibleDevices).toBe(r.gpus.join(','));
    }
    expect(new Set(ranks.map((r) => r.cudaVisibleDevices)).size).toBe(WORKERS);
  });

  it('ends with identical weights on every rank', () => {
    for (const r of ranks) expect(r.weights).toEqual((ranks[0] as LinearResult).weights);
  });

  it('ends with the weights of one worker training with batch W*b on the same data', async () => {
    const reference = await singleWorkerReference(ranks);
    const got = (ranks[0] as LinearResult).weights;
    expect(got).toHaveLength(reference.length);
    for (const [i, v] of got.entries()) expect(v).toBeCloseTo(reference[i] as number, 5);
  });

  it("writes each worker's reported metrics where TensorBoard's reader finds them, with the hparams", () => {
    for (const rank of [0, 1]) {
      const got = readTensorBoard(join(run.dir, 'tensorboard', `worker-${rank}`));
      const steps = (ranks[rank] as LinearResult).batches.length;
      expect(got.scalars.step).toEqual(Array.from({ length: steps }, (_, i) => [i + 1, i + 1]));
      if (rank === 0) expect(got.hparams).toEqual({ batchSize: BATCH });
    }
  });

  it('writes a complete experiment directory that `experiments list` and `show` read', async () => {
    for (const f of [
      'spec.json',
      'result.json',
      'metrics.jsonl',
      'curves.svg',
      'logs/worker-0.log',
      'logs/worker-1.log',
      'versioned/linear.ts',
    ]) {
      expect(existsSync(join(run.dir, f)), f).toBe(true);
    }
    const env = JSON.parse(readFileSync(join(run.dir, 'versioned', 'environment.json'), 'utf8'));
    expect(env).toMatchObject({ node: process.version, spark: '3.5.6', sparkring: '0.1.0' });
    expect(Object.keys(env.lockfiles).some((p: string) => p.endsWith('package-lock.json'))).toBe(true);
    const spec = JSON.parse(readFileSync(join(run.dir, 'spec.json'), 'utf8'));
    expect(spec).toMatchObject({ workers: WORKERS, hparams: { batchSize: BATCH }, gpusPerWorker: 1 });
    expect(spec.secret).toBeUndefined();
    const experiments = join(run.dir, '..', '..', '..');
    const list = await sparkring(['experiments', 'list', '--experiments', experiments, '--json']);
    const runs = JSON.parse(list.stdout) as Array<{ id: string; ok: boolean; attempts: number }>;
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ ok: true, attempts: 1 });
    const show = await sparkring(['experiments', 'show', 'linear', '--experiments', experiments]);
    expect(show.exitCode).toBe(0);
    expect(show.stdout).toMatch(/status:\s+ok/);
    const svg = readFileSync(join(run.dir, 'curves.svg'), 'utf8');
    expect(svg).toMatch(/^<svg /);
    expect(svg.match(/<polyline data-rank="\d"/g)).toHaveLength(WORKERS);
  });

  it('reports the result, timings, progress and the experiment directory', () => {
    expect(run.result).toMatchObject({ rank: 0 });
    expect(run.attempts).toBe(1);
    expect(run.timings.submitToRingMs).toBeGreaterThan(0);
    expect(run.timings.trainMs).toBeGreaterThanOrEqual(0);
    // Released after the result (left-behind.test.ts shows it is, and recorded).
    expect(run.timings.releaseMs).toBeNull();
    expect(run.dir).toMatch(/experiments\/app-[\w-]+\/run\.1\/linear$/);
    expect(lines.some((l) => /^\[worker 1\] joined the ring/.test(l))).toBe(true);
  });
});
