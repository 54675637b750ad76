/** `sparkring demo`: the digits MLP on 2 workers of the embedded local Spark. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { type AllreduceResult, allreduce } from '../client/allreduce.js';
import { RunError } from '../client/errors.js';
import { packageRoot, sparkPaths } from '../client/paths.js';
import type { TfBackendChoice } from '../runtime/backend.js';

export async function ensureDigits(): Promise<string> {
  const path = join(packageRoot(), '.cache', 'digits.parquet');
  if (existsSync(path)) return path;
  const { python } = sparkPaths();
  const r = await execa(python, ['-m', 'sparkring.datasets', 'digits', path], { reject: false });
  if (r.exitCode !== 0) throw new RunError('setup', `could not write the digits dataset: ${String(r.stderr).split('\n').at(-1)}`);
  return path;
}

export async function runDemo(o: {
  experiments?: string;
  json?: boolean;
  tfBackend?: TfBackendChoice;
}): Promise<AllreduceResult> {
  const data = await ensureDigits();
  return allreduce({
    entry: join(packageRoot(), 'examples', 'digits', 'train.ts'),
    workers: 2,
    data,
    name: 'digits-demo',
    experiments: o.experiments,
    hparams: { epochs: 30, batchSize: 32, lr: 0.05 },
    tfBackend: o.tfBackend,
  });
}
