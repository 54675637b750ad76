/** Tensor fusion: which tensors share a fusion buffer. Pure logic. */
import type { NumericArray } from './reduce.js';

/** A tfjs NamedTensorMap, seen structurally so the ring does not load tfjs. */
export interface TensorLike {
  readonly shape: number[];
  readonly dtype: string;
  data(): Promise<ArrayLike<number> | unknown>;
  dataSync?(): ArrayLike<number> | unknown;
}
export type TensorMapLike = { [name: string]: TensorLike };

/**
 * Groups indices of `xs` into runs of the same element type whose bytes stay within the
 * threshold; a single array larger than the threshold gets a bucket of its own. Order is kept,
 * so every rank builds the same buckets from the same list.
 */
export function fusionBuckets(xs: readonly NumericArray[], thresholdBytes: number): number[][] {
  const buckets: number[][] = [];
  let current: number[] = [];
  let bytes = 0;
  let ctor: unknown;
  xs.forEach((x, i) => {
    if (current.length > 0 && (x.constructor !== ctor || bytes + x.byteLength > thresholdBytes)) {
      buckets.push(current);
      current = [];
      bytes = 0;
    }
    current.push(i);
    bytes += x.byteLength;
    ctor = x.constructor;
  });
  if (current.length > 0) buckets.push(current);
  return buckets;
}
