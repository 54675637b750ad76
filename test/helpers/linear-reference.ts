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
