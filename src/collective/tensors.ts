/**
 * Allreduce of a tfjs NamedTensorMap: names sorted (every rank must agree on the order),
 * values fused, results as new tensors of the same shapes. tfjs-core is loaded only here.
 */
import type { TensorMapLike } from './fusion.js';
import { checkReduceOp, type NumericArray, type NumericArrayConstructor, type ReduceOp } from './reduce.js';

/** What a tensor map's allreduce needs of the ring (collective/ring.ts): the ring, seen from here without importing it. */
export interface ReducingRing {
  readonly worldSize: number;
  readonly fusionThresholdBytes: number;
  allreduceManyInPlace<T extends NumericArray>(
    xs: T[],
    op: ReduceOp,
    fusionThresholdBytes?: number,
    gradients?: string,
  ): Promise<T[]>;
  fusionBuffer(ctor: NumericArrayConstructor, length: number): NumericArray;
  allreduceInPlace<T extends NumericArray>(x: T, op: ReduceOp, gradients?: string): Promise<T>;
}

/**
 * `gradients`: the map holds gradients, which go on the wire as the ring's wirePrecision says, with
 * their error feedback kept under their names.
 */
export async function allreduceTensorMap<M extends TensorMapLike>(
  ring: ReducingRing,
  map: M,
  op: ReduceOp,
  gradients = false,
): Promise<M> {
  const tf = await import('@tensorflow/tfjs-core');
  const names = Object.keys(map).sort();
  const key = gradients ? names.join(',') : undefined;
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
  }
  // A ring of one: every op's result is the tensor itself. Clones share its data (no copy out of
  // TensorFlow and back, 2.4 ms a step for bench train's CNN), and the caller may dispose either.
  if (ring.worldSize === 1) {
    const out: TensorMapLike = {};
    for (const name of names) out[name] = tf.clone(map[name] as never);
    return out as M;
  }
  const direct = directAccess(tf, map, names, ring.fusionThresholdBytes);
  if (direct) return (await allreduceDirect(ring, map, names, op, direct, key)) as M;
  const arrays: NumericArray[] = [];
  for (const name of names) {
    const t = map[name] as TensorMapLike[string];
    // A native backend's tensors are read synchronously (one copy out of TensorFlow): awaiting
    // data() per tensor cost about 4 ms a step for the CNN of bench train (8 gradients, 4.8 MB).
    arrays.push((t.dataSync ? t.dataSync() : await t.data()) as NumericArray);
  }
  // tfjs hands out copies from data(), so they can be reduced in place.
  const reduced = await ring.allreduceManyInPlace(arrays, op, undefined, key);
  const out: TensorMapLike = {};
  names.forEach((name, i) => {
    const t = map[name] as TensorMapLike[string];
    out[name] = tf.tensor(reduced[i] as NumericArray, t.shape, t.dtype as 'float32' | 'int32');
  });
  return out as M;
}

type TfCore = typeof import('@tensorflow/tfjs-core');

interface NodeBinding {
  tensorDataInto(id: number, target: NumericArray): void;
  tensorFromData(shape: number[], source: Float32Array): number;
  TF_FLOAT: number;
}

interface DirectBackend {
  binding: Partial<NodeBinding>;
  getInputTensorIds(tensors: unknown[]): number[];
  /** How tfjs-node makes a tfjs tensor of a tensor its binding holds. */
  createOutputTensor(info: { id: number; shape: number[]; dtype: number }): TensorMapLike[string];
}

/**
 * tfjs-node's binding built with native/tf_data_into.cc, when every tensor is float32 and together
 * they fit one fusion buffer: then gradients go from TensorFlow straight into the ring's buffer and
 * back, with no array made on the way (the garbage that made V8 stall the ring).
 */
function directAccess(tf: TfCore, map: TensorMapLike, names: string[], thresholdBytes: number): DirectBackend | undefined {
  if (tf.getBackend() !== 'tensorflow') return undefined;
  const backend = tf.backend() as unknown as DirectBackend;
  if (typeof backend.binding?.tensorDataInto !== 'function' || typeof backend.binding.tensorFromData !== 'function') {
    return undefined;
  }
  let bytes = 0;
  for (const name of names) {
    const t = map[name] as TensorMapLike[string] & { size?: number };
    if (t.dtype !== 'float32' || typeof t.size !== 'number') return undefined;
    bytes += t.size * 4;
  }
  return bytes <= thresholdBytes ? backend : undefined;
}

async function allreduceDirect(
  ring: ReducingRing,
  map: TensorMapLike,
  names: string[],
  op: ReduceOp,
  backend: DirectBackend,
  gradients: string | undefined,
): Promise<TensorMapLike> {
  const tensors = names.map((name) => map[name] as TensorMapLike[string] & { size: number });
  const total = tensors.reduce((sum, t) => sum + t.size, 0);
  const buffer = ring.fusionBuffer(Float32Array, total);
  const ids = backend.getInputTensorIds(tensors);
  const binding = backend.binding as NodeBinding;
  let at = 0;
  tensors.forEach((t, i) => {
    binding.tensorDataInto(ids[i] as number, buffer.subarray(at, at + t.size));
    at += t.size;
  });
  await ring.allreduceInPlace(buffer, op, gradients);
  const out: TensorMapLike = {};
  at = 0;
  // Copied into memory TensorFlow allocates: tfjs's own tf.tensor(view) would keep the view as the
  // tensor's memory (tfjs-node's createTensor wraps aligned arrays), and the next allreduce would
  // change it; tf.tensor(copy) would make a new JS array per tensor per step.
  const made = tensors.map((t) => {
    const id = binding.tensorFromData(t.shape, buffer.subarray(at, at + t.size) as Float32Array);
    at += t.size;
    return backend.createOutputTensor({ id, shape: t.shape, dtype: binding.TF_FLOAT });
  });
  names.forEach((name, i) => {
    out[name] = made[i] as TensorMapLike[string];
  });
  return out;
}
