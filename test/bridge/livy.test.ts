/**
 * Submission through a real Livy server (scripts/livy, `make livy`) that runs the venv's Spark on
 * local-cluster[2,1,1024]; progress still comes from the run's Redis stream. Every job kind goes
 * through the one envelope, so scoring gets Livy too.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Ring } from '../../src/collective/index.js';
import { LivyClient, type LivyError } from '../../src/livy/client.js';
import { saveModel } from '../../src/runtime/fit/save-model.js';
import { freePort } from '../../src/util/net.js';
import { FEATURES } from '../fixtures/entries/linear-model.js';
import { TestLivy } from '../helpers/livy.js';
import { TestRedis } from '../helpers/redis.js';
import { entry, leftoverProcesses, ROOT, sparkring, tempDir, waitForNoLeftovers, writeTable } from '../helpers/spark.js';

let livy: TestLivy;
let redis: TestRedis;
let dir: string;

beforeAll(async () => {
  dir = tempDir('livy-runs');
  redis = await TestRedis.start();
  livy = await TestLivy.start({ master: 'local-cluster[2,1,1024]', allowed: [ROOT, tmpdir()] });
}, 120_000);
afterAll(async () => {
  await livy?.stop();
  await redis?.stop();
});
afterEach(async () => {
  expect(await waitForNoLeftovers()).toEqual([]);
});

const viaLivy = (file: string, more: string[] = [], command = 'allreduce') =>
  sparkring([
    command,
    entry(file),
    '--livy',
    livy.url,
    '--redis',
    `redis://127.0.0.1:${redis.port}`,
    '--experiments',
    `${dir}/experiments`,
    ...more,
  ]);

describe('sparkring allreduce --livy', () => {
  it('runs a training job end to end as a Livy batch', async () => {
    const r = await viaLivy('linear.ts', [
      '--workers',
      '2',
      '--data',
      writeTable(dir, 'linear', 64),
      '--hp',
      'batchSize=4',
      '--json',
    ]);
    expect(r.exitCode, `${r.stderr}\n${livy.log()}`).toBe(0);
    const out = JSON.parse(r.stdout) as { workers: number; result: { weights: number[] }; dir: string };
    expect(out.workers).toBe(2);
    expect(out.result.weights.every((w) => Number.isFinite(w))).toBe(true);
    expect(r.stderr).toMatch(/sparkring: Livy batch \d+ submitted to http:\/\/127\.0\.0\.1:\d+/);
    expect(r.stderr).toMatch(/\[worker [01]\] step \d+/);
  }, 240_000);

  it('ships the runtime, the entry and Node: the executors run them from the unpacked archive', async () => {
    const elsewhere = tempDir('entry-elsewhere');
    const stage = tempDir('stage');
    copyFileSync(entry('where.ts'), join(elsewhere, 'where.ts'));
    const r = await sparkring([
      'allreduce',
      join(elsewhere, 'where.ts'),
      '--livy',
      livy.url,
      '--ship-node',
      '--stage',
      stage,
      '--redis',
      `redis://127.0.0.1:${redis.port}`,
      '--experiments',
      `${dir}/experiments`,
      '--json',
    ]);
    expect(r.exitCode, `${r.stderr}\n${livy.log()}`).toBe(0);
    const shipping = /sparkring: shipping the runtime and where\.ts to the executors \(\d+\.\d MiB, (\S+)\)/.exec(r.stderr);
    expect(shipping?.[1]).toMatch(new RegExp(`^${stage}/sparkring-[^/]+/sparkring-runtime\\.tgz$`));
    const { result } = JSON.parse(r.stdout) as { result: Record<string, unknown> };
    expect(result).toMatchObject({ rank: 0, sameTf: true, sum: 6 });
    // Spark unpacked the archive in the executor's own directory (SparkFiles), not here.
    const unpacked = /^(\/.+\/sparkring-runtime)\/entry\/where\.mjs$/.exec(new URL(result.entryUrl as string).pathname)?.[1];
    expect(unpacked, String(result.entryUrl)).toBeDefined();
    expect(unpacked?.startsWith(elsewhere)).toBe(false);
    expect(result.runtime).toBe(`${unpacked}/runtime/runtime/main.js`);
    expect(result.node).toBe(`${unpacked}/bin/node`);
  }, 240_000);

  it('a --stage directory Livy may not read: refused, saying what to allow', async () => {
    const stage = mkdtempSync(join(homedir(), '.sparkring-stage-'));
    try {
      const r = await viaLivy('quadratic.ts', ['--grid', 'x=1,3', '--stage', stage], 'launch');
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toMatch(
        new RegExp(
          `^sparkring: Livy refused the batch: .*${stage}/sparkring-search-\\S+ .*add that directory's parent \\(--stage\\) to livy\\.file\\.local-dir-whitelist$`,
          'm',
        ),
      );
    } finally {
      rmSync(stage, { recursive: true, force: true });
    }
  }, 120_000);

  it('a failing entry gives a dead batch, and the error line from its log', async () => {
    const r = await viaLivy('throws.ts', ['--workers', '2']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/sparkring: Livy batch \d+ is dead; the end of its log:/);
    expect(r.stderr).toMatch(/^ {2}sparkring: worker 1 failed: Error: boom from rank 1 \(on host \S+, during training\)$/m);
  }, 240_000);

  it('launch: a search as a Livy batch', async () => {
    const r = await viaLivy('quadratic.ts', ['--grid', 'x=1,3,5', '--json'], 'launch');
    expect(r.exitCode, `${r.stderr}\n${livy.log()}`).toBe(0);
    const out = JSON.parse(r.stdout) as { trials: Array<{ status: string }>; best: { hparams: { x: number } } };
    expect(out.trials.map((t) => t.status)).toEqual(['done', 'done', 'done']);
    expect(out.best.hparams.x).toBe(3);
  }, 240_000);

  it('Ctrl-C deletes the batch', async () => {
    const child = sparkring([
      'allreduce',
      entry('resumable.ts'),
      '--data',
      writeTable(dir, 'linear', 160),
      '--hp',
      'steps=400',
      '--livy',
      livy.url,
      '--redis',
      `redis://127.0.0.1:${redis.port}`,
      '--experiments',
      `${dir}/experiments`,
    ]);
    let batch: number | undefined;
    let seen = '';
    await new Promise<void>((resolve) => {
      child.on('exit', () => resolve()); // ended before training: the assertions below say how
      child.stderr?.on('data', (b: Buffer) => {
        seen += b.toString();
        const submitted = /Livy batch (\d+) submitted/.exec(seen);
        if (submitted) batch ??= Number(submitted[1]); // batch 0 too
        if (batch !== undefined && /\[worker 0\] step \d+/.test(seen)) resolve();
      });
    });
    expect(seen).toMatch(/\[worker 0\] step \d+/);
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, r.all).not.toBe(0);
    expect(r.all).toMatch(new RegExp(`sparkring: deleting Livy batch ${batch}`));
    const state = await new LivyClient({ url: livy.url })
      .getBatch(batch as number)
      .then((b) => b.state)
      .catch((err: LivyError) => err.status);
    expect([404, 'killed']).toContain(state);
  }, 240_000);

  it('without --redis: refused before anything is submitted, naming the flag', async () => {
    const r = await sparkring(['allreduce', entry('linear.ts'), '--livy', livy.url, '--experiments', `${dir}/experiments`]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual([
      "sparkring: with --livy the driver and executors run on the Livy server’s cluster, where a Redis private to this client is out of reach: pass --redis redis://HOST:PORT (a Redis every executor and this client reach) for the run's events",
    ]);
    expect(r.stderr).not.toMatch(/Livy batch \d+ submitted/);
  }, 60_000);

  it('Livy down: one clear line, nothing started', async () => {
    const port = await freePort();
    const r = await sparkring(['allreduce', entry('linear.ts'), '--livy', `http://127.0.0.1:${port}`]);
    expect(r.exitCode).not.toBe(0);
    expect(
      r.stderr
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('sparkring:')),
    ).toEqual([
      `sparkring: Livy at http://127.0.0.1:${port} is unreachable (ECONNREFUSED) after 4 tries; check --livy (and that Livy is running)`,
    ]);
    expect(leftoverProcesses()).toEqual([]);
  }, 60_000);
});

describe('sparkring predict --livy', () => {
  it('scores a table as a Livy batch: one prediction a row, the result as from spark-submit', async () => {
    await tf.setBackend('cpu');
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [4], kernelInitializer: 'ones' })] });
    const modelDir = await saveModel(tf, Ring.solo('livy-predict'), model, join(dir, 'predict-run', 'model'), {
      features: FEATURES,
      label: 'y',
    });
    const out = join(dir, 'scored-via-livy.parquet');
    const r = await sparkring([
      'predict',
      modelDir,
      '--data',
      writeTable(tempDir('livy-predict'), 'linear', 500),
      '--out',
      out,
      '--livy',
      livy.url,
      '--redis',
      `redis://127.0.0.1:${redis.port}`,
      '--json',
    ]);
    expect(r.exitCode, `${r.stderr}\n${livy.log()}`).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ rows: 500, output: 'prediction', features: FEATURES, out });
    expect(r.stderr).toMatch(/sparkring: Livy batch \d+ submitted to http:\/\/127\.0\.0\.1:\d+/);
  }, 240_000);
});
