/** `sparkring demo`: the digits MLP on 2 workers of the embedded local Spark. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { RunError } from '../client/errors.js';
import { type PredictResult, predict } from '../client/jobs/predict.js';
import { type AllreduceResult, allreduce } from '../client/jobs/train.js';
import { dataCache, packageRoot, sparkPaths } from '../client/submission/paths.js';
import type { TfBackendChoice } from '../runtime/backend.js';

export async function ensureDigits(): Promise<string> {
  const path = join(dataCache(), 'digits.parquet');
  if (existsSync(path)) return path;
  const { python } = sparkPaths();
  const r = await execa(python, ['-m', 'sparkring.datasets', 'digits', path], { reject: false });
  if (r.exitCode !== 0) throw new RunError('setup', `could not write the digits dataset: ${String(r.stderr).split('\n').at(-1)}`);
  return path;
}

export interface DemoResult extends AllreduceResult {
  /** The held-out rows scored with the saved model by `sparkring predict`. */
  scored: PredictResult;
}

/** Trains with ctx.fit and saves the model, then scores the held-out rows with it on Spark. */
export async function runDemo(o: { experiments?: string; json?: boolean; tfBackend?: TfBackendChoice }): Promise<DemoResult> {
  const data = await ensureDigits();
  const trained = await allreduce({
    entry: join(packageRoot(), 'examples', 'digits', 'train.ts'),
    workers: 2,
    data,
    name: 'digits-demo',
    experiments: o.experiments,
    hparams: { epochs: 30, batchSize: 32, lr: 0.05 },
    tfBackend: o.tfBackend,
  });
  const scored = await predict({
    model: trained.dir,
    data,
    where: { column: 'is_test', value: 1 },
    out: join(trained.dir, 'held-out-predictions.parquet'),
    executors: 2,
    tfBackend: o.tfBackend,
  });
  return { ...trained, scored };
}
