/**
 * YARN queues: a real single-machine YARN (MiniYARNCluster with the capacity scheduler and the
 * queues "default" and "ml"), reached with spark-submit --master yarn and through a real Livy
 * whose master is that YARN.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TestLivy } from '../helpers/livy.js';
import { TestRedis } from '../helpers/redis.js';
import { ROOT, sparkring, tempDir, waitForNoLeftovers } from '../helpers/spark.js';
import { TestYarn } from '../helpers/yarn.js';

let yarn: TestYarn;
let redis: TestRedis;
let dir: string;
const SPARK_JARS = `${ROOT}.venv/lib/python3.11/site-packages/pyspark/jars/*`;

beforeAll(async () => {
  yarn = await TestYarn.start();
  redis = await TestRedis.start();
  dir = tempDir('yarn-runs');
}, 120_000);
afterAll(async () => {
  await yarn?.stop();
  await redis?.stop();
});
afterEach(async () => {
  expect(await waitForNoLeftovers()).toEqual([]);
});

const onYarn = (args: string[]) =>
  sparkring(
    [
      'allreduce',
      join(ROOT, 'bench', 'entries', 'noop.mjs'),
      '--workers',
      '1',
      // Spark's own jars are on this machine already: no 300 MB upload per application.
      '--conf',
      `spark.yarn.jars=local:${SPARK_JARS}`,
      '--experiments',
      `${dir}/experiments`,
      ...args,
    ],
    { HADOOP_CONF_DIR: yarn.confDir },
  );

describe('YARN queues', () => {
  it('--master yarn --queue ml lands the application in ml', async () => {
    const before = await yarn.appsSubmitted();
    const r = await onYarn(['--master', 'yarn', '--queue', 'ml', '--json']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).dir).toMatch(/\/application_\d+_\d+\/run\.1\/noop$/);
    const after = await yarn.appsSubmitted();
    expect(after['root.ml']).toBe((before['root.ml'] ?? 0) + 1);
    expect(after['root.default']).toBe(before['root.default'] ?? 0);
  }, 240_000);

  it('a queue YARN does not have is refused before anything runs, naming the queues it has', async () => {
    const before = await yarn.appsSubmitted();
    const r = await onYarn(['--master', 'yarn', '--queue', 'nightly']);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toEqual([
      `sparkring: --queue nightly: YARN at ${yarn.rm} has no such queue; its queues are default, ml`,
    ]);
    expect(await yarn.appsSubmitted()).toEqual(before);
  }, 60_000);

  it.each(['client', 'cluster'] as const)(
    '--livy URL --queue ml lands the application in ml (%s mode)',
    async (deployMode) => {
      const livy = await TestLivy.start({
        master: 'yarn',
        deployMode,
        allowed: [ROOT, tmpdir()],
        env: { HADOOP_CONF_DIR: yarn.confDir },
      });
      try {
        const before = await yarn.appsSubmitted();
        // The driver runs where Livy puts it: the run's events go through a Redis every side reaches.
        const r = await onYarn(['--livy', livy.url, '--redis', `redis://127.0.0.1:${redis.port}`, '--queue', 'ml', '--json']);
        expect(r.exitCode, `${r.stderr}\n${livy.log()}`).toBe(0);
        expect((await yarn.appsSubmitted())['root.ml']).toBe((before['root.ml'] ?? 0) + 1);
      } finally {
        await livy.stop();
      }
    },
    240_000,
  );
});
