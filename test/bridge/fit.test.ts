/**
 * ctx.fit and ctx.saveModel on real Spark: partitions of 9, 700 and 1300 rows (--partition-by)
 * take equal steps and every row; full-batch fit equals tfjs's model.fit on all rows in one
 * process; a worker killed mid-fit resumes to the same weights; the saved model loads with
 * tf.loadLayersModel in a plain Node process, and PyPI's tensorflowjs converter turns it into a
 * Keras model that predicts the same. The entry lives in a temp folder, as a user's does.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type AllreduceResult, allreduce } from '../../src/index.js';
import { FIT_INITIAL, fullBatchFit } from '../helpers/linear-reference.js';
import { predictInPlainNode } from '../helpers/load-model.js';
import { TestRedis } from '../helpers/redis.js';
import { pidOf, ROOT, tempDir, waitForNoLeftovers, writeTable } from '../helpers/spark.js';

const SIZES = [9, 700, 1300];
/** The converter's own venv (make tfjs-converter): tensorflowjs cannot live beside the workers' TensorFlow. */
const CONVERTER_BIN = (name: string): string => join(ROOT, '.cache', 'tfjs-converter', 'bin', name);
const PROBE = [
  [1, 2, 3, 4],
  [-1, 0.5, 0, 2],
  [0.25, -2, 1, 0],
];

const TRAIN = `import type { TrainContext } from 'sparkring';

const FEATURES = ['x0', 'x1', 'x2', 'x3'];

export default async function train(ctx: TrainContext) {
  const { tf } = ctx;
  const h = ctx.hparams as { optimizer: string; batchSize: number; epochs: number; shuffle: boolean; epochMs: number };
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [4] })] });
  model.setWeights([tf.tensor2d(${JSON.stringify(FIT_INITIAL.kernel)}, [4, 1]), tf.tensor1d(${JSON.stringify(FIT_INITIAL.bias)})]);
  model.compile({
    optimizer: h.optimizer === 'adam' ? tf.train.adam(0.02) : tf.train.sgd(0.05),
    loss: 'meanSquaredError',
    metrics: ['mae'],
  });
  const sizes: number[] = [];
  const history = await ctx.fit(model, {
    label: 'y',
    features: FEATURES,
    batchSize: h.batchSize,
    epochs: h.epochs,
    shuffle: h.shuffle,
    seed: 5,
    callbacks: {
      onBatchEnd: (_batch, logs) => void sizes.push(logs?.size ?? -1),
      onEpochEnd: () => new Promise((r) => setTimeout(r, h.epochMs)),
    },
  });
  const modelDir = await ctx.saveModel(model);
  const prediction = model.predict(tf.tensor2d(${JSON.stringify(PROBE)})) as import('@tensorflow/tfjs').Tensor;
  const weights = (await Promise.all(model.getWeights().map((w) => w.data()))).flatMap((d) => [...d]);
  return {
    attempt: ctx.attempt,
    ranks: await ctx.allgather({ rows: ctx.data.numRows, sizes }),
    history: history.history,
    params: history.params,
    weights,
    predictions: [...(await prediction.data())],
    modelDir,
  };
}
`;

interface FitResult {
  attempt: number;
  ranks: Array<{ rows: number; sizes: number[] }>;
  history: Record<string, number[]>;
  params: { steps: number; rows: number; resumedFromEpoch: number; stepMode?: string };
  weights: number[];
  predictions: number[];
  modelDir: string;
}

let redis: TestRedis;
let dir: string;
let data: string;
/** A two-epoch run, shuffled, in batches of 128: its steps, and the model it saved. */
let shuffled: AllreduceResult & { result: FitResult };

async function run(
  hparams: Record<string, unknown>,
  victim?: { pattern: RegExp; atStep: number },
): Promise<AllreduceResult & { result: FitResult }> {
  let killed = false;
  const r = await allreduce({
    entry: join(dir, 'train.ts'),
    workers: 3,
    // Three executors of one core each on this 2-core machine: the embedded default allows two.
    master: 'local-cluster[3,1,1024]',
    data,
    partitionBy: 'part',
    experiments: join(dir, 'experiments'),
    hparams,
    maxAttempts: victim ? 2 : 1,
    redis: `redis://127.0.0.1:${redis.port}`,
    onProgress: (line) => {
      const m = /^\[worker \d\] step (\d+)/.exec(line);
      if (victim && !killed && m && Number(m[1]) >= victim.atStep) {
        const pid = pidOf(victim.pattern);
        if (pid) {
          killed = true;
          process.kill(pid, 'SIGKILL');
        }
      }
    },
  });
  return r as AllreduceResult & { result: FitResult };
}

beforeAll(async () => {
  redis = await TestRedis.start();
  dir = tempDir('fit');
  writeFileSync(join(dir, 'train.ts'), TRAIN);
  data = writeTable(dir, 'uneven', SIZES.join(','));
  shuffled = await run({ optimizer: 'sgd', batchSize: 128, epochs: 2, shuffle: true, epochMs: 0 });
}, 240_000);

afterAll(async () => {
  await redis?.stop();
});

afterEach(async () => {
  expect(await waitForNoLeftovers()).toEqual([]);
});

describe('ctx.fit on uneven partitions', () => {
  it('takes the same steps on every rank and every row once an epoch', async () => {
    const { result } = shuffled;
    const steps = Math.ceil(1300 / 128);
    expect(result.params).toMatchObject({ steps, rows: 2009 });
    expect(result.ranks.map((r) => r.rows).sort((a, b) => a - b)).toEqual(SIZES);
    for (const r of result.ranks) {
      expect(r.sizes).toHaveLength(2 * steps);
      expect(r.sizes.slice(0, steps).reduce((a, b) => a + b, 0)).toBe(r.rows);
      expect(r.sizes.slice(steps).reduce((a, b) => a + b, 0)).toBe(r.rows);
      expect(Math.max(...r.sizes)).toBeLessThanOrEqual(128);
    }
    expect(result.history.loss).toHaveLength(2);
    expect(result.history.mae).toHaveLength(2);
  });

  it('full-batch fit equals model.fit on all the rows in one process', async () => {
    const { result } = await run({ optimizer: 'sgd', batchSize: 1300, epochs: 3, shuffle: false, epochMs: 0 });
    const reference = await fullBatchFit(
      SIZES.reduce((a, b) => a + b, 0),
      3,
    );
    expect(result.params.steps).toBe(1);
    // One step an epoch: traced in the first two epochs, a TensorFlow function in the third.
    expect(result.params.stepMode).toBe('compiled');
    result.weights.forEach((w, i) => {
      expect(w).toBeCloseTo(reference.weights[i] as number, 5);
    });
    result.history.loss?.forEach((loss, i) => {
      expect(loss).toBeCloseTo(reference.loss[i] as number, 4);
    });
  }, 240_000);

  it('a worker killed -9 mid-fit resumes from the last epoch to the same final weights', async () => {
    const hparams = { optimizer: 'adam', batchSize: 100, epochs: 6, shuffle: true, epochMs: 400 };
    const unbroken = await run(hparams);
    const steps = Math.ceil(1300 / 100);
    const retried = await run(hparams, { pattern: /node .*runtime\/main\.js/, atStep: 2 * steps });
    expect(retried.attempts).toBe(2);
    expect(retried.result.attempt).toBe(1);
    expect(retried.result.params.resumedFromEpoch).toBeGreaterThanOrEqual(1);
    expect(retried.result.history.loss).toHaveLength(6);
    // The same weights to float32's last bits: the retry traces its first steps again, op by op,
    // where the unbroken run had compiled them, and Grappler's fused kernels round differently
    // (one ulp seen). An epoch replayed or skipped moves Adam's weights by ~1e-2.
    expect(retried.result.weights).toHaveLength(unbroken.result.weights.length);
    retried.result.weights.forEach((w, i) => {
      expect(w).toBeCloseTo(unbroken.result.weights[i] as number, 6);
    });
  }, 300_000);
});

describe('ctx.saveModel', () => {
  it('writes a model tf.loadLayersModel loads in a plain Node process, with its signature', async () => {
    const { result, dir: runDir } = shuffled;
    expect(result.modelDir).toBe(join(runDir, 'model'));
    const signature = JSON.parse(readFileSync(join(result.modelDir, 'signature.json'), 'utf8'));
    expect(signature).toMatchObject({
      format: 'sparkring.signature',
      features: ['x0', 'x1', 'x2', 'x3'],
      label: 'y',
      output: { name: 'prediction' },
    });
    const loaded = predictInPlainNode(result.modelDir, PROBE);
    expect(loaded).toHaveLength(PROBE.length);
    loaded.forEach((p, i) => {
      expect(p).toBeCloseTo(result.predictions[i] as number, 5);
    });
  });

  it("PyPI's tensorflowjs converter turns it into a Keras model that predicts the same values", () => {
    const { result } = shuffled;
    const keras = join(tempDir('keras'), 'model.h5');
    execFileSync(
      CONVERTER_BIN('tensorflowjs_converter'),
      ['--input_format', 'tfjs_layers_model', '--output_format', 'keras', join(result.modelDir, 'model.json'), keras],
      { stdio: 'ignore', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' } },
    );
    const script = [
      'import json, sys, numpy as np, tf_keras',
      'model = tf_keras.models.load_model(sys.argv[1])',
      'print(json.dumps(model.predict(np.array(json.loads(sys.argv[2]), dtype="float32"), verbose=0).ravel().tolist()))',
    ].join('\n');
    const out = execFileSync(CONVERTER_BIN('python'), ['-c', script, keras, JSON.stringify(PROBE)], {
      encoding: 'utf8',
      env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' },
    });
    const predicted = JSON.parse(out.trim().split('\n').at(-1) ?? '[]') as number[];
    expect(predicted).toHaveLength(PROBE.length);
    predicted.forEach((p, i) => {
      expect(p).toBeCloseTo(result.predictions[i] as number, 5);
    });
  });
});
