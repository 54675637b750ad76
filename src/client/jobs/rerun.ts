/**
 * `experiments rerun RUN`: the same job again, of the kind its spec.json names (a training run or
 * a search), from the run's spec.json and the entry kept in its versioned/ (as it ran, with its own
 * imports). Without `trustSpec` only inert Spark settings are applied, and another user's run is
 * refused (rerun-trust.ts): a spec.json may come from someone else. The rerun's experiments root is
 * the caller's, never the one spec.json names.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findRun, VERSIONED_ENTRY } from '../../experiments/layout.js';
import { RunError } from '../errors.js';
import { REDACTED } from '../run/redaction.js';
import type { AllreduceOptions } from './options.js';
import { foreignPaths, isInertConf, refuseForeignRun } from './rerun-trust.js';
import { type LaunchResult, launch } from './search.js';
import { type AllreduceResult, allreduce } from './train.js';

/** A rerun's outcome, by the kind of the run it repeated. */
export type RerunResult = { kind: 'train'; run: AllreduceResult } | { kind: 'search'; search: LaunchResult };

export async function rerun(
  ref: string,
  experiments: string,
  extra: Pick<AllreduceOptions, 'onProgress' | 'redis' | 'redisCa' | 'signal'> & { trustSpec?: boolean } = {},
): Promise<RerunResult> {
  const { trustSpec, ...options } = extra;
  let dir: string;
  try {
    dir = findRun(experiments, ref).dir;
  } catch (err) {
    throw new RunError('input', (err as Error).message);
  }
  const specPath = join(dir, 'spec.json');
  if (!existsSync(specPath)) throw new RunError('input', `run ${ref} has no spec.json (${specPath}); it cannot be rerun`);
  const spec = JSON.parse(readFileSync(specPath, 'utf8')) as Record<string, unknown>;
  // What spec.json leaves out gets the options' defaults (client/jobs/options.ts, search-options.ts).
  const given = <T>(v: unknown): T | undefined => (v === null || v === undefined ? undefined : (v as T));
  const say = extra.onProgress ?? ((l: string) => process.stderr.write(`${l}\n`));
  const kept = join(dir, 'versioned', VERSIONED_ENTRY);
  const entry = existsSync(kept) ? kept : String(spec.entry);
  const env = join(dir, 'versioned', 'environment.json');
  if (existsSync(env) && existsSync(String(spec.entry))) {
    const recorded = (JSON.parse(readFileSync(env, 'utf8')) as { entry?: { sha256?: string } }).entry?.sha256;
    const now = createHash('sha256')
      .update(readFileSync(String(spec.entry)))
      .digest('hex');
    if (recorded && recorded !== now) {
      say(
        `sparkring: note: ${spec.entry} changed since the run; ${entry === kept ? `running the entry as it ran (${kept})` : 'running it as it is now'}`,
      );
    }
  }
  const recordedConf = (spec.sparkConf as Record<string, string>) ?? {};
  const redacted = Object.keys(recordedConf).filter((k) => recordedConf[k] === REDACTED);
  const untrusted = trustSpec ? [] : Object.keys(recordedConf).filter((k) => !isInertConf(k) && !redacted.includes(k));
  const foreign = foreignPaths([dir, specPath, kept]);
  if (foreign.length > 0 && !trustSpec) {
    refuseForeignRun({
      ref,
      owned: foreign,
      entry,
      master: given<string>(spec.master),
      queue: given<string>(spec.queue),
      conf: untrusted,
    });
  }
  if (redacted.length > 0) {
    say(`sparkring: spec.json holds ${redacted.join(', ')} redacted; the rerun goes without them`);
  }
  if (untrusted.length > 0) {
    say(
      `sparkring: not applying ${untrusted.join(', ')} from spec.json (Spark settings that can run code or choose where the job goes); pass --trust-spec to apply them`,
    );
  }
  const sparkConf = Object.fromEntries(
    Object.entries(recordedConf).filter(([k]) => !untrusted.includes(k) && !redacted.includes(k)),
  );
  const common = {
    entry,
    name: String(spec.name),
    experiments,
    sparkConf,
    master: given<string>(spec.master),
    queue: given<string>(spec.queue),
    ...options,
  };
  if (spec.kind === 'search') {
    const search = await launch({
      ...common,
      grid: given(spec.grid),
      random: given(spec.random),
      trials: given(spec.trials),
      seed: given(spec.seed),
      hparams: given(spec.hparams),
      metric: given(spec.metric),
      direction: given(spec.direction),
      earlyStop: given(spec.earlyStop),
      executors: given(spec.executors),
      maxTrialAttempts: given(spec.maxTrialAttempts),
      excludeAfter: given(spec.excludeAfter),
      leaseMs: given(spec.leaseMs),
      tfBackend: given(spec.tfBackend),
    });
    return { kind: 'search', search };
  }
  // Older spec.json files hold the worker's settings at the top level.
  const worker = (spec.worker ?? spec) as Record<string, unknown>;
  const run = await allreduce({
    ...common,
    workers: given(spec.workers),
    data: given(spec.data),
    partitionBy: given(spec.partitionBy),
    hparams: given(spec.hparams),
    gpusPerWorker: given(spec.gpusPerWorker),
    maxAttempts: given(spec.maxAttempts),
    minWorkers: given(spec.minWorkers),
    maxWorkers: given(spec.maxWorkers),
    slotWaitSeconds: given(spec.slotWaitSeconds),
    heartbeatTimeoutMs: given(spec.heartbeatTimeoutMs),
    releaseExecutors: given(spec.releaseExecutors),
    peerTimeoutMs: given(worker.peerTimeoutMs),
    formationTimeoutMs: given(worker.formationTimeoutMs),
    collectiveTimeoutMs: given(worker.collectiveTimeoutMs),
    ringInterface: given(worker.ringInterface),
    ringEncrypt: given(worker.ringEncrypt),
    wirePrecision: given(worker.wirePrecision),
    tfBackend: given(worker.tfBackend),
  });
  return { kind: 'train', run };
}
