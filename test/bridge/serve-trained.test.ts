/**
 * From a run to serving, as the README's "Serving" section goes: the digits model trained by a
 * sparkring run on Spark, registered by its run id, served, and asked by tritonclient (HTTP binary
 * and JSON, gRPC) and kserve's client for 1,000 rows; every answer equals `sparkring predict` on the
 * same rows. Data, entry, experiments and the repository live in a temp folder.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { models, oipClient, type Served, startServe } from '../helpers/serve.js';
import { PYTHON, ROOT, sparkring, tempDir, waitForNoLeftovers } from '../helpers/spark.js';

const ROWS = 1000;
let dir: string;

/** The first 1,000 digits with an id, for `sparkring predict`; their pixels as float32 for the clients. */
function digitsTable(): { table: string; pixels: string } {
  const table = join(dir, 'digits-1000.parquet');
  const pixels = join(dir, 'digits-1000.f32');
  execFileSync(PYTHON, ['-m', 'sparkring.datasets', 'digits', join(dir, 'digits.parquet')]);
  execFileSync(PYTHON, [
    '-c',
    `
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
t = pq.read_table(${JSON.stringify(join(dir, 'digits.parquet'))}).slice(0, ${ROWS})
t = t.append_column("id", pa.array(np.arange(${ROWS}, dtype=np.int32)))
pq.write_table(t, ${JSON.stringify(table)})
np.stack([t.column(f"p{i}").to_numpy() for i in range(64)], axis=1).astype(np.float32).tofile(${JSON.stringify(pixels)})`,
  ]);
  return { table, pixels };
}

/** `sparkring predict`'s 10 probabilities per row, in id order. */
function scored(out: string): number[] {
  const f32 = join(dir, 'scored.f32');
  execFileSync(PYTHON, [
    '-c',
    `
import numpy as np, pyarrow.parquet as pq
t = pq.read_table(${JSON.stringify(out)}).sort_by("id")
np.array(t.column("prediction").to_pylist(), dtype=np.float32).tofile(${JSON.stringify(f32)})`,
  ]);
  const b = readFileSync(f32);
  return Array.from(new Float32Array(b.buffer, b.byteOffset, b.length / 4));
}

const worstDiff = (a: number[], b: number[]): number => {
  expect(a.length).toBe(b.length);
  return a.reduce((w, v, i) => Math.max(w, Math.abs(v - (b[i] as number))), 0);
};

beforeAll(() => {
  dir = tempDir('serve-trained');
});

afterAll(async () => {
  expect(await waitForNoLeftovers()).toEqual([]);
});

describe('a trained run, registered and served', () => {
  let server: Served | undefined;
  afterAll(async () => server?.stop());

  it('answers 1,000 rows through tritonclient and kserve as `sparkring predict` scores them', async () => {
    const { table, pixels } = digitsTable();
    const entry = join(dir, 'train.ts');
    copyFileSync(join(ROOT, 'examples', 'digits', 'train.ts'), entry);
    const experiments = join(dir, 'experiments');
    const trained = await sparkring([
      'allreduce',
      entry,
      '--workers',
      '2',
      '--data',
      join(dir, 'digits.parquet'),
      '--experiments',
      experiments,
      '--hp',
      'epochs=3',
      '--json',
    ]);
    expect(trained.exitCode, trained.all).toBe(0);
    const run = JSON.parse(trained.stdout) as { runId: string; dir: string };

    const repo = join(dir, 'models');
    const reg = await models(['register', run.runId, '--name', 'digits', '--repo', repo, '--experiments', experiments, '--json']);
    expect(reg.exitCode, reg.all).toBe(0);
    expect(JSON.parse(reg.stdout)).toMatchObject({ name: 'digits', version: 1 });
    const version = JSON.parse(readFileSync(join(repo, 'digits', '1', 'version.json'), 'utf8'));
    expect(version.source.runDir).toBe(run.dir);
    expect(version.hparams).toEqual({ epochs: 3 });
    expect(Object.keys(version.metrics)).toEqual(expect.arrayContaining(['loss']));

    const out = join(dir, 'scored.parquet');
    const predicted = await sparkring(['predict', run.dir, '--data', table, '--out', out, '--executors', '2', '--json']);
    expect(predicted.exitCode, predicted.all).toBe(0);
    const expected = scored(out);

    server = await startServe(['--repo', repo]);
    const got = await oipClient<Record<string, { version: string; y: number[][] }>>([
      'check',
      `127.0.0.1:${server.http}`,
      `127.0.0.1:${server.grpc}`,
      'digits',
      pixels,
      String(ROWS),
      '64',
    ]);
    for (const key of ['http_binary', 'http_json', 'grpc_infer']) {
      expect(got[key]?.version, key).toBe('1');
      expect(worstDiff((got[key]?.y ?? []).flat(), expected), key).toBeLessThanOrEqual(1e-5);
    }
    const k = await oipClient<{ json: number[][]; binary: number[][] }>([
      'kserve',
      server.url,
      'digits',
      pixels,
      String(ROWS),
      '64',
    ]);
    expect(worstDiff(k.json.flat(), expected)).toBeLessThanOrEqual(1e-5);
    expect(worstDiff(k.binary.flat(), expected)).toBeLessThanOrEqual(1e-5);
  }, 400_000);
});
