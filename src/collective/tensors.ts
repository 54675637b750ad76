/**
 * Allreduce of a tfjs NamedTensorMap: names sorted (every rank must agree on the order),
 * values fused, results as new tensors of the same shapes. tfjs-core is loaded only here.
 */
import type { TensorMapLike } from './fusion.js';
import { checkReduceOp, type NumericArray, type ReduceOp } from './reduce.js';
import type { Ring } from './ring.js';

export async function allreduceTensorMap<M extends TensorMapLike>(ring: Ring, map: M, op: ReduceOp): Promise<M> {
  const tf = await import('@tensorflow/tfjs-core');
  const names = Object.keys(map).sort();
  const arrays: NumericArray[] = [];
  for (const name of names) {
    const t = map[name];
    if (!t || typeof t.data !== 'function' || !Array.isArray(t.shape)) {
      throw new TypeError(`allreduce: "${name}" is not a tfjs tensor`);
    }
    if (t.dtype !== 'float32' && t.dtype !== 'int32') {
      throw new TypeError(`allreduce: tensor "${name}" has dtype ${t.dtype}; only float32 and int32 can be reduced`);
    }
    // What the ring would refuse, refused on a ring of one too (it skips the ring below).
    checkReduceOp(op, t.dtype === 'int32' ? new Int32Array(0) : new Float32Array(0));
    if (ring.worldSize === 1) continue;
    // A native backend's tensors are read synchronously (one copy out of TensorFlow): awaiting
    // data() per tensor cost about 4 ms a step for the CNN of bench train (8 gradients, 4.8 MB).
    arrays.push((t.dataSync ? t.dataSync() : await t.data()) as NumericArray);
  }
  // A ring of one: every op's result is the tensor itself. Clones share its data (no copy out of
  // TensorFlow and back, 2.4 ms a step for bench train's CNN), and the caller may dispose either.
  if (ring.worldSize === 1) {
    const out: TensorMapLike = {};
    for (const name of names) out[name] = tf.clone(map[name] as never);
    return out as M;
  }
  // tfjs hands out copies from data(), so they can be reduced in place.
  const reduced = await ring.allreduceManyInPlace(arrays, op);
  const out: TensorMapLike = {};
  names.forEach((name, i) => {
    const t = map[name] as TensorMapLike[string];
    out[name] = tf.tensor(reduced[i] as NumericArray, t.shape, t.dtype as 'float32' | 'int32');
  });
  return out as M;
}
