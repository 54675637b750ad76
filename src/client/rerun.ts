/** `experiments rerun RUN`: the same job again, from nothing but the run's spec.json. */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findRun } from '../experiments/layout.js';
import { type AllreduceResult, allreduce } from './allreduce.js';
import { RunError } from './errors.js';
import type { AllreduceOptions } from './options.js';

export async function rerun(
  ref: string,
  experiments: string,
  extra: Pick<AllreduceOptions, 'onProgress' | 'redis' | 'redisCa'> = {},
): Promise<AllreduceResult> {
  let dir: string;
  try {
    dir = findRun(experiments, ref).dir;
  } catch (err) {
    throw new RunError('input', (err as Error).message);
  }
  const specPath = join(dir, 'spec.json');
  if (!existsSync(specPath)) throw new RunError('input', `run ${ref} has no spec.json (${specPath}); it cannot be rerun`);
  const spec = JSON.parse(readFileSync(specPath, 'utf8')) as Record<string, unknown>;
  if (spec.kind === 'search') {
    throw new RunError(
      'input',
      `run ${ref} is a search; start it again with \`sparkring launch\` (its spec.json holds the space)`,
    );
  }
  const say = extra.onProgress ?? ((l: string) => process.stderr.write(`${l}\n`));
  const env = join(dir, 'versioned', 'environment.json');
  if (existsSync(env) && existsSync(String(spec.entry))) {
    const recorded = (JSON.parse(readFileSync(env, 'utf8')) as { entry?: { sha256?: string } }).entry?.sha256;
    const now = createHash('sha256')
      .update(readFileSync(String(spec.entry)))
      .digest('hex');
    if (recorded && recorded !== now)
      say(`sparkring: note: ${spec.entry} changed since the run (versioned/ holds the file as it ran)`);
  }
  const optional = <T>(v: unknown): T | undefined => (v === null || v === undefined ? undefined : (v as T));
  return allreduce({
    entry: String(spec.entry),
    workers: Number(spec.workers),
    data: optional<string>(spec.data),
    hparams: (spec.hparams as Record<string, unknown>) ?? {},
    name: String(spec.name),
    master: optional<string>(spec.master),
    queue: optional<string>(spec.queue),
    gpusPerWorker: Number(spec.gpusPerWorker ?? 0),
    experiments: String(spec.experiments ?? experiments),
    maxAttempts: Number(spec.maxAttempts ?? 1),
    sparkConf: (spec.sparkConf as Record<string, string>) ?? {},
    slotWaitSeconds: Number(spec.slotWaitSeconds ?? 30),
    peerTimeoutMs: Number(spec.peerTimeoutMs ?? 30_000),
    collectiveTimeoutMs: Number(spec.collectiveTimeoutMs ?? 600_000),
    heartbeatTimeoutMs: Number(spec.heartbeatTimeoutMs ?? 60_000),
    releaseExecutors: spec.releaseExecutors !== false,
    ...extra,
  });
}
