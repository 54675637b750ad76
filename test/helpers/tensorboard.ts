import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { FIXTURES, PYTHON } from './spark.js';

/** What TensorBoard's own EventAccumulator reads from a log directory (test/fixtures/read-tensorboard.py). */
export function readTensorBoard(logdir: string): {
  scalars: Record<string, Array<[number, number]>>;
  hparams: Record<string, unknown>;
  /** The hparams plugin's experiment summary, when the directory has one. */
  experiment: { hparams: Record<string, unknown[]>; metrics: string[] } | null;
  /** The hparams plugin's session end status (1 success, 2 failure), when written. */
  sessionEnd: number | null;
} {
  return JSON.parse(execFileSync(PYTHON, [join(FIXTURES, 'read-tensorboard.py'), logdir], { encoding: 'utf8' }));
}
