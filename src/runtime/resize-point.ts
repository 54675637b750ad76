/**
 * Where a shrunk elastic stage (--min-workers) may end for a larger ring: the driver asks for one
 * with a file in the run directory once executors return (spark-plugin/sparkring/driver/elastic.py
 * GrowWatch), rank 0 reads it, and every rank learns its answer from one allreduce, so that they all
 * end together, after the checkpoint the caller has written.
 */
import type { Ring } from '../collective/index.js';
import { ResizeRequestedError } from './fit/errors.js';

/** Ends the stage on every rank (ResizeRequestedError, SR_RESIZE: not a failure) where rank 0 saw the ask. */
export async function resizePoint(ring: Ring, requested: () => boolean, after: string): Promise<void> {
  const [grow] = await ring.allreduce(new Int32Array([ring.rank === 0 && requested() ? 1 : 0]), 'max');
  if (!grow) return;
  await ring.barrier(); // the caller's checkpoint is written before any rank ends its task
  throw new ResizeRequestedError(after);
}
