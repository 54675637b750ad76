/**
 * TensorFlow.js for the worker: tfjs-node-gpu when the task has GPUs and it is installed,
 * tfjs-node when installed, else pure-JS tfjs on its cpu backend. Plus the two data-parallel
 * helpers: an optimizer wrapper that averages gradients across the ring, and weight sync.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as tfTypes from '@tensorflow/tfjs';
import type { Ring } from '../collective/index.js';

export type Tf = typeof tfTypes;

/**
 * Where the native backends may be installed: beside this module (a checkout's node_modules), then
 * $SPARKRING_NODE_MODULES, then the global folders of `npm install -g`. A runtime shipped to the
 * executors (client/bundle.ts) carries pure-JS tfjs only; tfjs-node-gpu, with its libtensorflow,
 * is installed on the GPU nodes.
 */
function nativeSearchPaths(): string[] {
  const fromEnv = process.env.SPARKRING_NODE_MODULES?.split(':').filter(Boolean) ?? [];
  const prefix = dirname(dirname(process.execPath));
  return [...fromEnv, join(prefix, 'lib', 'node_modules'), '/usr/local/lib/node_modules', '/usr/lib/node_modules'];
}

/** A native tfjs backend package (CommonJS), or undefined when none is installed anywhere we look. */
function requireNative(name: string): Tf | undefined {
  const bases = [fileURLToPath(import.meta.url), ...nativeSearchPaths().map((d) => join(d, 'sparkring-search-base.js'))];
  for (const base of bases) {
    try {
      return createRequire(base)(name) as Tf;
    } catch (err) {
      const code = (err as { code?: string }).code;
      // A package that is found but fails to load (a missing CUDA library) is the user's to see.
      if (code !== 'MODULE_NOT_FOUND' || !String((err as Error).message).includes(`'${name}'`)) throw err;
    }
  }
  return undefined;
}

function native(gpus: readonly string[]): { tf: Tf; flavour: string } | undefined {
  const candidates = [...(gpus.length > 0 ? ['@tensorflow/tfjs-node-gpu'] : []), '@tensorflow/tfjs-node'];
  for (const name of candidates) {
    const tf = requireNative(name);
    if (tf) return { tf, flavour: name.slice('@tensorflow/'.length) };
  }
  return undefined;
}

export async function loadTf(gpus: readonly string[]): Promise<{ tf: Tf; flavour: string }> {
  const found = native(gpus);
  if (found) return found;
  const tf = (await import('@tensorflow/tfjs')) as Tf;
  await tf.setBackend('cpu');
  await tf.ready();
  return { tf, flavour: 'tfjs-cpu' };
}

/** The same choice as loadTf, loaded synchronously (CommonJS) at the moment a trial first uses tf. */
export function loadTfSync(gpus: readonly string[]): { tf: Tf; flavour: string } {
  return native(gpus) ?? { tf: createRequire(import.meta.url)('@tensorflow/tfjs') as Tf, flavour: 'tfjs-cpu' };
}

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
      const averaged = await ring.allreduce(grads, 'mean');
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
