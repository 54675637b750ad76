import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entry, sparkring, tempDir, waitForNoLeftovers, writeTable } from '../helpers/spark.js';
import { StandaloneCluster } from '../helpers/standalone.js';

describe('a standalone Spark cluster through --master spark://', () => {
  let cluster: StandaloneCluster;

  beforeAll(async () => {
    cluster = await StandaloneCluster.start(2);
  }, 90_000);

  afterAll(async () => {
    await cluster?.stop();
    expect(await waitForNoLeftovers()).toEqual([]);
  }, 60_000);

  it('trains, prints exactly one JSON object with --json, and gives the executors back', async () => {
    const dir = tempDir('standalone');
    const r = await sparkring([
      'allreduce',
      entry('linear.ts'),
      '--workers',
      '2',
      '--master',
      cluster.masterUrl,
      '--data',
      writeTable(dir, 'linear', 64),
      '--hp',
      'batchSize=8',
      '--experiments',
      dir,
      '--json',
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(out).sort()).toEqual(['attempts', 'backends', 'dir', 'metrics', 'result', 'runId', 'timings', 'workers']);
    expect(out).toMatchObject({ workers: 2, attempts: 1, result: { rank: 0 } });
    // The client returned on the result; the driver then released the executors and recorded it.
    expect(await recordedReleaseMs(out.dir as string)).toBeGreaterThan(0);
    expect(r.stderr).toMatch(/\[worker 1\] joined the ring/);
    // Its RPC is not encrypted, and the run's secret rides in the task closures: it says so once.
    expect(r.stderr.match(/^sparkring: warning: Spark's RPC to the executors of spark:\/\/\S+ is not encrypted/gm)).toHaveLength(
      1,
    );
  }, 180_000);

  it('with --require-encryption, refuses before any task carries the secret', async () => {
    const dir = tempDir('standalone-encryption');
    writeFileSync(join(dir, 'never.ts'), "export default async () => { throw new Error('a task ran'); };\n");
    const r = await sparkring([
      'allreduce',
      join(dir, 'never.ts'),
      '--workers',
      '2',
      '--master',
      cluster.masterUrl,
      '--experiments',
      dir,
      '--require-encryption',
    ]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(
      /is not encrypted.*this run requires encryption \(spark\.sparkring\.requireEncryption=true, --require-encryption\)/,
    );
    expect(r.stderr).not.toMatch(/a task ran|joined the ring/);
  }, 180_000);
});

/** The release the driver recorded in the run's result.json after the client returned (null if none in a minute). */
async function recordedReleaseMs(runDir: string): Promise<number | null> {
  for (let i = 0; i < 240; i++) {
    const r = JSON.parse(readFileSync(join(runDir, 'result.json'), 'utf8')) as { releaseMs: number | null };
    if (r.releaseMs !== null) return r.releaseMs;
    await new Promise((done) => setTimeout(done, 250));
  }
  return null;
}
