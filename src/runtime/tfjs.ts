/**
 * The two data-parallel helpers over the worker's TensorFlow.js (backend.ts chooses which one): an
 * optimizer wrapper that averages gradients across the ring, and weight sync from rank 0.
 */
import type * as tfTypes from '@tensorflow/tfjs';
import type { Ring } from '../collective/index.js';
import type { Tf } from './backend.js';

export type { Tf } from './backend.js';

type Variables = tfTypes.Variable[];

/** Things whose weights can be synced: a LayersModel or a list of variables. */
export type Weighted = { getWeights(): tfTypes.Tensor[]; setWeights(w: tfTypes.Tensor[]): void } | Variables;

export interface DistributedOptimizer {
  /**
   * Computes the gradients of `loss` on this worker, averages them across every worker, and
   * applies the average. Returns the local loss (dispose it, or pass returnCost = false).
   */
  minimize(loss: () => tfTypes.Scalar, returnCost?: boolean, varList?: Variables): Promise<tfTypes.Scalar | null>;
  readonly optimizer: tfTypes.Optimizer;
}

export function distributedOptimizer(tf: Tf, ring: Ring, optimizer: tfTypes.Optimizer): DistributedOptimizer {
  return {
    optimizer,
    async minimize(loss, returnCost = true, varList) {
      const { value, grads } = optimizer.computeGradients(loss, varList);
      const averaged = await ring.allreduceGradients(grads, 'mean');
      optimizer.applyGradients(averaged);
      tf.dispose([grads, averaged]);
      if (returnCost) return value;
      value.dispose();
      return null;
    },
  };
}

/** Makes every worker's weights equal to rank 0's (one fused broadcast). */
export async function syncWeights(tf: Tf, ring: Ring, target: Weighted): Promise<void> {
  const tensors = Array.isArray(target) ? target : target.getWeights();
  const sizes = tensors.map((t) => t.size);
  const flat = new Float32Array(sizes.reduce((a, b) => a + b, 0));
  let at = 0;
  for (const t of tensors) {
    flat.set(t.dataSync() as Float32Array, at);
    at += t.size;
  }
  await ring.broadcastInPlace(flat, 0);
  at = 0;
  const values = tensors.map((t, i) => {
    const v = tf.tensor(flat.subarray(at, at + (sizes[i] as number)), t.shape, t.dtype);
    at += sizes[i] as number;
    return v;
  });
  if (Array.isArray(target)) for (const [i, v] of target.entries()) v.assign(values[i] as tfTypes.Tensor);
  else target.setWeights(values);
  tf.dispose(values);
}
