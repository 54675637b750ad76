/**
 * Batch inference on real Spark: `sparkring predict` over 1M rows with 2 executors gives exactly
 * one prediction per row, equal to this process's predictions with the same model, loading the
 * model at most once per executor; the same through sparkring.predict(df, runDir) in a user's own
 * PySpark session; bad input is one line naming the column. Files live in a temp folder.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Ring } from '../../src/collective/index.js';
import { saveModel } from '../../src/runtime/fit/save-model.js';
import { FEATURES, rowOf } from '../fixtures/entries/linear-model.js';
import { FIXTURES, PYTHON, sparkring, tempDir, waitForNoLeftovers, writeTable } from '../helpers/spark.js';

const ROWS = 1_000_000;
/** Small splits, so that each executor's scoring process serves several tasks. */
const SPLITS = ['--conf', 'spark.sql.files.maxPartitionBytes=1m'];

let dir: string;
let data: string;
let modelDir: string;
let expected: Float32Array;

/** The scored table's predictions by id (checking every id is there once). */
function scoredById(out: string, n = ROWS): Float32Array {
  const bin = join(dir, `by-id-${Date.now()}.f32`);
  execFileSync(PYTHON, [join(FIXTURES, 'check-scored.py'), out, String(n), bin]);
  const bytes = readFileSync(bin);
  return new Float32Array(bytes.buffer, bytes.byteOffset, n);
}

function expectEqualPredictions(got: Float32Array): void {
  let worst = 0;
  for (let i = 0; i < ROWS; i++) worst = Math.max(worst, Math.abs((got[i] as number) - (expected[i] as number)));
  expect(worst).toBeLessThan(1e-4);
}

beforeAll(async () => {
  dir = tempDir('predict');
  data = writeTable(dir, 'linear', ROWS);
  await tf.setBackend('cpu');
  const model = tf.sequential({
    layers: [
      tf.layers.dense({
        units: 8,
        inputShape: [4],
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }),
      }),
      tf.layers.dense({ units: 1, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
    ],
  });
  modelDir = await saveModel(tf, Ring.solo('predict-test'), model, join(dir, 'run', 'model'), { features: FEATURES, label: 'y' });
  const xs = new Float32Array(ROWS * 4);
  for (let id = 0; id < ROWS; id++) xs.set(rowOf(id).x, id * 4);
  const out = model.predict(tf.tensor2d(xs, [ROWS, 4])) as tf.Tensor;
  expected = (await out.data()) as Float32Array;
  tf.dispose(out);
}, 120_000);

afterEach(async () => {
  expect(await waitForNoLeftovers()).toEqual([]);
});

describe('sparkring predict', () => {
  it('scores 1M rows with 2 executors: one prediction per row, equal to in-process predictions', async () => {
    const out = join(dir, 'scored.parquet');
    const r = await sparkring(['predict', modelDir, '--data', data, '--out', out, '--executors', '2', ...SPLITS, '--json']);
    expect(r.exitCode, r.all).toBe(0);
    const result = JSON.parse(r.stdout) as { rows: number; loads: number; tasks: number; output: string; features: string[] };
    expect(result).toMatchObject({ rows: ROWS, output: 'prediction', features: FEATURES });
    // Loaded once per executor (one core each), and kept for that executor's later tasks.
    expect(result.loads).toBeGreaterThanOrEqual(1);
    expect(result.loads).toBeLessThanOrEqual(2);
    expect(result.tasks).toBeGreaterThan(result.loads);
    expect(r.stderr).toMatch(/sparkring: \d+\/\d+ partitions scored/);
    expectEqualPredictions(scoredById(out));
  }, 300_000);

  it.each([
    ['a missing feature column', ['--features', 'x0,x1,x2,nope'], /feature column nope is not in the data/],
    [
      'the wrong width',
      ['--features', 'x0,x1,x2'],
      /partition 0: data column "x0,x1,x2" in row batch 0: the features give 3 values a row; the model's input \[4\] takes 4/,
    ],
  ])(
    'refuses %s with one line naming the column',
    async (_what, flags, line) => {
      const small = writeTable(tempDir('predict-small'), 'linear', 100);
      const r = await sparkring(['predict', modelDir, '--data', small, '--out', join(dir, `bad-${Date.now()}`), ...flags]);
      expect(r.exitCode, r.all).toBe(2);
      expect(r.stderr).toMatch(line);
    },
    120_000,
  );

  it('names the column and the row batch that holds nulls', async () => {
    const withNulls = join(tempDir('predict-nulls'), 'nulls.parquet');
    execFileSync(PYTHON, [
      '-c',
      `import pyarrow as pa, pyarrow.parquet as pq
pq.write_table(pa.table({"id": pa.array([0, 1, 2], pa.int64()), "x0": [1.0, 2.0, 3.0], "x1": [1.0, 2.0, 3.0], "x2": [1.0, None, 3.0], "x3": [0.0, 0.0, 0.0]}), "${withNulls}")`,
    ]);
    const r = await sparkring(['predict', modelDir, '--data', withNulls, '--out', join(dir, 'nulls-out')]);
    expect(r.exitCode, r.all).toBe(2);
    expect(r.stderr).toMatch(/partition 0: data column "x2" in row batch 0: 1 null values; fill or drop them in Spark first/);
  }, 120_000);
});

describe('sparkring.predict in a PySpark session', () => {
  it('appends the predictions to the DataFrame the user has, from a run folder', async () => {
    const script = join(dir, 'score.py');
    const out = join(dir, 'scored-from-python.parquet');
    writeFileSync(
      script,
      `import sys
from pyspark.sql import SparkSession
import sparkring

spark = (SparkSession.builder.master("local-cluster[2,1,1024]").config("spark.executor.memory", "512m")
         .config("spark.sql.files.maxPartitionBytes", "1m").getOrCreate())
df = spark.read.parquet(sys.argv[1]).withColumnRenamed("y", "target")
scored = sparkring.predict(df, sys.argv[2])
assert scored.columns == df.columns + ["prediction"], scored.columns
scored.write.parquet(sys.argv[3])
spark.stop()
`,
    );
    execFileSync(PYTHON, [script, data, join(dir, 'run'), out], {
      env: { ...process.env, PYSPARK_PYTHON: PYTHON, SPARK_LOCAL_IP: '127.0.0.1' },
      stdio: 'pipe',
      timeout: 240_000,
    });
    expectEqualPredictions(scoredById(out));
  }, 300_000);
});
