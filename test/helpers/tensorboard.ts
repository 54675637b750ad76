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
  /** Text summaries by tag: [step, text] pairs. */
  texts: Record<string, Array<[number, string]>>;
} {
  // TensorBoard's reader imports TensorFlow where the venv has it (make setup installs it), whose
  // start-up banners go to stderr whatever TF_CPP_MIN_LOG_LEVEL says; they are kept off the test output.
  const stdio: ['ignore', 'pipe', 'pipe'] = ['ignore', 'pipe', 'pipe'];
  return JSON.parse(execFileSync(PYTHON, [join(FIXTURES, 'read-tensorboard.py'), logdir], { encoding: 'utf8', stdio }));
}
