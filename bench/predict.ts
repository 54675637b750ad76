/**
 * Predict: rows/s scoring a DataFrame of 1M rows (64 float features) with the digits MLP
 * (rescale, dense 64 relu, dense 10 softmax) on 2 executors of the embedded local Spark, with
 * `sparkring predict` beside pyspark.ml.functions.predict_batch_udf running the same model and
 * weights in Keras on the same TensorFlow, in the same run. Both read the same parquet, write
 * parquet, take batches of 4096 and run one TensorFlow thread per task; the time is the write
 * job's, from the first task to the last (Spark's start-up is outside it, the model loads inside).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { execa } from 'execa';
import { predict } from '../src/client/jobs/predict.js';
import { packageRoot, sparkPaths } from '../src/client/submission/paths.js';
import { runSparkSubmit } from '../src/client/submission/spark-submit.js';
import { Ring } from '../src/collective/index.js';
import { saveModel } from '../src/runtime/fit/save-model.js';

export interface PredictRow {
  impl: 'sparkring' | 'predict_batch_udf';
  model: 'mlp';
  rows: number;
  rows_per_s: number | null;
  loads?: number;
  error?: string;
}

const FEATURES = Array.from({ length: 64 }, (_, i) => `p${i}`);

export async function digitsModel(dir: string): Promise<string> {
  await tf.setBackend('cpu');
  const model = tf.sequential({
    layers: [
      tf.layers.rescaling({ inputShape: [64], scale: 1 / 16 }),
      tf.layers.dense({ units: 64, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 7 }) }),
      tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 8 }) }),
    ],
  });
  return saveModel(tf, Ring.solo('bench-predict'), model, join(dir, 'model'), { features: FEATURES });
}

export async function predictBench(o: { rows: number; executors: number }, progress: (l: string) => void) {
  const dir = await mkdtemp(join(tmpdir(), 'sparkring-bench-predict-'));
  const paths = sparkPaths();
  const script = join(packageRoot(), 'bench', 'predict_udf.py');
  const rows: PredictRow[] = [];
  try {
    const data = join(dir, 'data.parquet');
    progress(`writing ${o.rows} rows of 64 features`);
    await execa(paths.python, [script, 'data', String(o.rows), data]);
    const modelDir = await digitsModel(dir);

    progress(`sparkring predict on ${o.executors} executors`);
    try {
      const r = await predict({
        model: modelDir,
        data,
        out: join(dir, 'sparkring.parquet'),
        executors: o.executors,
        onProgress: progress,
      });
      if (r.rows !== o.rows) throw new Error(`scored ${r.rows} rows of ${o.rows}`);
      rows.push({
        impl: 'sparkring',
        model: 'mlp',
        rows: r.rows,
        rows_per_s: Math.round(r.rows / (r.scoreMs / 1000)),
        loads: r.loads,
      });
    } catch (err) {
      rows.push({ impl: 'sparkring', model: 'mlp', rows: o.rows, rows_per_s: null, error: (err as Error).message });
    }

    progress(`predict_batch_udf (Keras) on ${o.executors} executors`);
    const result = join(dir, 'udf.json');
    const submit = await runSparkSubmit(
      { workers: o.executors, gpusPerWorker: 0, sparkConf: {} },
      paths,
      [script, 'score', modelDir, data, join(dir, 'udf.parquet'), result],
      dir,
    );
    try {
      const r = JSON.parse(await readFile(result, 'utf8')) as { rows: number; score_ms: number };
      rows.push({ impl: 'predict_batch_udf', model: 'mlp', rows: r.rows, rows_per_s: Math.round(r.rows / (r.score_ms / 1000)) });
    } catch {
      rows.push({
        impl: 'predict_batch_udf',
        model: 'mlp',
        rows: o.rows,
        rows_per_s: null,
        error: `exit ${submit.exitCode}: ${submit.tail.slice(-5).join(' | ')}`,
      });
    }
    const ours = rows.find((r) => r.impl === 'sparkring')?.rows_per_s;
    const theirs = rows.find((r) => r.impl === 'predict_batch_udf')?.rows_per_s;
    return {
      bench: 'predict',
      rows,
      sparkring_vs_predict_batch_udf: ours && theirs ? Number((ours / theirs).toFixed(2)) : null,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
