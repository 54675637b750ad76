/**
 * Element-wise reductions over typed arrays: the arithmetic of the ring, free of I/O. The loops run
 * in native/ring_reduce.cc when it was built (about ten times faster), else in the JavaScript
 * kernels below; both give the same bits. SPARKRING_NATIVE_REDUCE=0 keeps them in JavaScript.
 */
import { type ReduceAddon, reduceAddon } from '../util/addons.js';

export type NumericArray = Float32Array | Float64Array | Int32Array;
export type ReduceOp = 'sum' | 'mean' | 'max' | 'min';
export const REDUCE_OPS: readonly ReduceOp[] = ['sum', 'mean', 'max', 'min'];

export type NumericArrayConstructor = Float32ArrayConstructor | Float64ArrayConstructor | Int32ArrayConstructor;

export function isNumericArray(x: unknown): x is NumericArray {
  return x instanceof Float32Array || x instanceof Float64Array || x instanceof Int32Array;
}

export function checkReduceOp(op: string, x: NumericArray): asserts op is ReduceOp {
  if (!(REDUCE_OPS as readonly string[]).includes(op)) {
    throw new TypeError(`allreduce op "${op}" is not one of ${REDUCE_OPS.join(', ')}`);
  }
  if (op === 'mean' && x instanceof Int32Array) {
    throw new TypeError('allreduce op "mean" on an Int32Array would truncate; use "sum" and divide, or pass floats');
  }
}

/** A typed view over bytes of the same element type; copies only when the bytes are unaligned. */
export function viewAs(ctor: NumericArrayConstructor, bytes: Uint8Array): NumericArray {
  const size = ctor.BYTES_PER_ELEMENT;
  if (bytes.byteOffset % size === 0) {
    return new ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength / size);
  }
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new ctor(copy.buffer, 0, bytes.byteLength / size);
}

export function bytesOf(x: NumericArray, start = 0, end = x.length): Uint8Array {
  const size = x.BYTES_PER_ELEMENT;
  return new Uint8Array(x.buffer, x.byteOffset + start * size, (end - start) * size);
}

type Kernel = (dst: NumericArray, at: number, src: NumericArray, n: number) => void;

/**
 * One compiled loop per element type and op. Each `new Function` gets its own type feedback,
 * so V8 keeps every loop monomorphic (a shared loop over Float32/Float64/Int32 runs ~2x slower).
 * `combine` reads a (dst), b (src) and n (the world size, for the mean).
 */
function kernel(combine: string): Kernel {
  return new Function(
    'dst',
    'at',
    'src',
    'n',
    `const d = dst.subarray(at, at + src.length);
     const len = src.length;
     let i = 0;
     for (; i + 3 < len; i += 4) {
       { const a = d[i], b = src[i]; d[i] = ${combine}; }
       { const a = d[i + 1], b = src[i + 1]; d[i + 1] = ${combine}; }
       { const a = d[i + 2], b = src[i + 2]; d[i + 2] = ${combine}; }
       { const a = d[i + 3], b = src[i + 3]; d[i + 3] = ${combine}; }
     }
     for (; i < len; i++) { const a = d[i], b = src[i]; d[i] = ${combine}; }`,
  ) as Kernel;
}

const COMBINE = {
  sum: 'a + b',
  max: '(b > a || b !== b) ? b : a',
  min: '(b < a || b !== b) ? b : a',
} as const;

type KernelSet = Record<keyof typeof COMBINE | 'meanLast', Kernel>;

const KERNELS = new Map<NumericArrayConstructor, KernelSet>(
  ([Float32Array, Float64Array, Int32Array] as NumericArrayConstructor[]).map((ctor) => [
    ctor,
    {
      sum: kernel(ctor === Int32Array ? '(a + b) | 0' : COMBINE.sum),
      max: kernel(COMBINE.max),
      min: kernel(COMBINE.min),
      // The sum rounded to the element type first, then divided: what summing, storing and then
      // dividing in a second pass gave (that pass over a generic array cost 2.4 ms per 4.8 MB).
      meanLast: kernel(ctor === Float32Array ? 'Math.fround(a + b) / n' : '(a + b) / n'),
    },
  ]),
);

const NATIVE_OP = { sum: 0, mean: 0, max: 1, min: 2 } as const;
const NATIVE_MEAN_LAST = 3;
const useNative = process.env.SPARKRING_NATIVE_REDUCE !== '0';
/** Loaded on the first reduction, not at import: a ring of one (a search trial) never reduces. */
let native: ReduceAddon | undefined | null = null;
const nativeAddon = (): ReduceAddon | undefined => {
  if (native === null) native = useNative ? reduceAddon() : undefined;
  return native;
};

function kernelsOf(dst: NumericArray): KernelSet {
  const kernels = KERNELS.get(dst.constructor as NumericArrayConstructor);
  if (!kernels) throw new TypeError(`cannot reduce a ${dst.constructor.name}`);
  return kernels;
}

/** dst[at + i] = op(dst[at + i], src[i]) for every i of src (NaN wins max and min). */
export function reduceInto(dst: NumericArray, at: number, src: NumericArray, op: ReduceOp): void {
  const addon = nativeAddon();
  if (addon) addon.reduce(dst, at, src, NATIVE_OP[op], 1);
  else kernelsOf(dst)[op === 'mean' ? 'sum' : op](dst, at, src, 1);
}

/**
 * The last contribution to a range: reduceInto, and for mean the division by the world size in the
 * same pass.
 */
export function reduceLastInto(dst: NumericArray, at: number, src: NumericArray, op: ReduceOp, worldSize: number): void {
  const addon = nativeAddon();
  if (op !== 'mean' || worldSize === 1) reduceInto(dst, at, src, op);
  else if (addon) addon.reduce(dst, at, src, NATIVE_MEAN_LAST, worldSize);
  else kernelsOf(dst).meanLast(dst, at, src, worldSize);
}
