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

/** dst[at + i] = op(dst[at + i], src[i]) for every i of src. */
export function reduceInto(dst: NumericArray, at: number, src: NumericArray, op: ReduceOp): void {
  const n = src.length;
  if (op === 'sum' || op === 'mean') {
    if (dst instanceof Int32Array) {
      for (let i = 0; i < n; i++) dst[at + i] = ((dst[at + i] as number) + (src[i] as number)) | 0;
    } else {
      for (let i = 0; i < n; i++) dst[at + i] = (dst[at + i] as number) + (src[i] as number);
    }
  } else if (op === 'max') {
    for (let i = 0; i < n; i++) {
      const a = dst[at + i] as number;
      const b = src[i] as number;
      if (b > a || Number.isNaN(b)) dst[at + i] = b;
    }
  } else {
    for (let i = 0; i < n; i++) {
      const a = dst[at + i] as number;
      const b = src[i] as number;
      if (b < a || Number.isNaN(b)) dst[at + i] = b;
    }
  }
}

/** The last touch on a fully reduced range: mean divides by the world size. */
export function finishReduce(x: NumericArray, start: number, end: number, op: ReduceOp, worldSize: number): void {
  if (op !== 'mean' || worldSize === 1) return;
  for (let i = start; i < end; i++) x[i] = (x[i] as number) / worldSize;
}
