/** What linear.ts returns, and the one-worker training it must equal. */
import * as tf from '@tensorflow/tfjs';
import { FEATURES, LR, makeModel, rowOf } from '../fixtures/entries/linear-model.js';

export interface LinearResult {
  rank: number;
  batches: number[][];
  gpus: string[];
  cudaVisibleDevices: string | null;
  weights: number[];
}

/** One worker, batch W*b: batch k is the union of every worker's batch k. */
export async function singleWorkerReference(workers: LinearResult[]): Promise<number[]> {
  await tf.setBackend('cpu');
  const { w, b } = makeModel(tf);
  const opt = tf.train.sgd(LR);
  const steps = (workers[0] as LinearResult).batches.length;
  for (let k = 0; k < steps; k++) {
    const ids = workers.flatMap((r) => r.batches[k] as number[]);
    const rows = ids.map(rowOf);
    const xs = tf.tensor2d(
      rows.map((r) => r.x),
      [ids.length, FEATURES.length],
    );
    const ys = tf.tensor2d(
      rows.map((r) => [r.y]),
      [ids.length, 1],
    );
    opt.minimize(() => tf.losses.meanSquaredError(ys, xs.matMul(w).add(b)) as tf.Scalar, false, [w, b]);
    tf.dispose([xs, ys]);
  }
  const weights = [...(await w.data()), ...(await b.data())];
  tf.dispose([w, b]); // its variables' names are free again for the next reference
  return weights;
}

/** The first weights of the ctx.fit tests' one dense unit (fit.test.ts, multihost/elastic.test.ts). */
export const FIT_INITIAL = { kernel: [0.1, -0.2, 0.3, 0.05], bias: [0.5] };

/**
 * tfjs's own model.fit, in this process, on all `rows` rows of the linear table at once (SGD, 0.05,
 * from FIT_INITIAL): the full-batch reference any number of workers must equal.
 */
export async function fullBatchFit(rows: number, epochs: number): Promise<{ weights: number[]; loss: number[] }> {
  await tf.setBackend('cpu');
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [4] })] });
  model.setWeights([tf.tensor2d(FIT_INITIAL.kernel, [4, 1]), tf.tensor1d(FIT_INITIAL.bias)]);
  model.compile({ optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError' });
  const x = (id: number, j: number) => (((id * 7 + j * 13) % 17) - 8) / 4;
  const xs = tf.tensor2d(Array.from({ length: rows }, (_, id) => [0, 1, 2, 3].map((j) => x(id, j))));
  const ys = tf.tensor2d(
    Array.from({ length: rows }, (_, id) => [0.5 * x(id, 0) - 0.25 * x(id, 1) + x(id, 2) + 0.125 * x(id, 3) + 1]),
  );
  const h = await model.fit(xs, ys, { batchSize: rows, epochs, shuffle: false, verbose: 0 });
  const weights = (await Promise.all(model.getWeights().map((w) => w.data()))).flatMap((d) => [...d]);
  tf.dispose([xs, ys]);
  model.dispose();
  return { weights, loss: h.history.loss as number[] };
}
