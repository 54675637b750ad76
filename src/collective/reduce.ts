/** Element-wise reductions over typed arrays: the arithmetic of the ring, free of I/O. */

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

type Kernel = (dst: NumericArray, at: number, src: NumericArray) => void;

/**
 * One compiled loop per element type and op. Each `new Function` gets its own type feedback,
 * so V8 keeps every loop monomorphic (a shared loop over Float32/Float64/Int32 runs ~2x slower).
 */
function kernel(combine: string): Kernel {
  return new Function(
    'dst',
    'at',
    'src',
    `const d = dst.subarray(at, at + src.length);
     const n = src.length;
     let i = 0;
     for (; i + 3 < n; i += 4) {
       { const a = d[i], b = src[i]; d[i] = ${combine}; }
       { const a = d[i + 1], b = src[i + 1]; d[i + 1] = ${combine}; }
       { const a = d[i + 2], b = src[i + 2]; d[i + 2] = ${combine}; }
       { const a = d[i + 3], b = src[i + 3]; d[i + 3] = ${combine}; }
     }
     for (; i < n; i++) { const a = d[i], b = src[i]; d[i] = ${combine}; }`,
  ) as Kernel;
}

const COMBINE = {
  sum: 'a + b',
  max: '(b > a || b !== b) ? b : a',
  min: '(b < a || b !== b) ? b : a',
} as const;

const KERNELS = new Map<NumericArrayConstructor, Record<keyof typeof COMBINE, Kernel>>(
  ([Float32Array, Float64Array, Int32Array] as NumericArrayConstructor[]).map((ctor) => [
    ctor,
    {
      sum: kernel(ctor === Int32Array ? '(a + b) | 0' : COMBINE.sum),
      max: kernel(COMBINE.max),
      min: kernel(COMBINE.min),
    },
  ]),
);

/** dst[at + i] = op(dst[at + i], src[i]) for every i of src (NaN wins max and min). */
export function reduceInto(dst: NumericArray, at: number, src: NumericArray, op: ReduceOp): void {
  const kernels = KERNELS.get(dst.constructor as NumericArrayConstructor);
  if (!kernels) throw new TypeError(`cannot reduce a ${dst.constructor.name}`);
  kernels[op === 'mean' ? 'sum' : op](dst, at, src);
}

/** The last touch on a fully reduced range: mean divides by the world size. */
export function finishReduce(x: NumericArray, start: number, end: number, op: ReduceOp, worldSize: number): void {
  if (op !== 'mean' || worldSize === 1) return;
  for (let i = start; i < end; i++) x[i] = (x[i] as number) / worldSize;
}
