/**
 * The train kind (`allreduce`): a training module on W Spark executors in one barrier stage, with
 * the ring formed from Spark's allGather; rank 0's result is the run's (spark-plugin/sparkring/
 * lifecycle.py is its driver's middle).
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { z } from 'zod';
import { curvesSvg } from '../../experiments/curves.js';
import { VERSIONED_ENTRY, writeMetrics, writeVersioned } from '../../experiments/layout.js';
import { workerResultFields } from '../../runtime/control.js';
import { RunError } from '../errors.js';
import { Progress } from '../run/progress.js';
import { redactConf } from '../run/redaction.js';
import { workerEntry } from '../submission/bundle.js';
import { compileEntry } from '../submission/entry-compile.js';
import { packageRoot } from '../submission/paths.js';
import { driverResultSchema } from './driver-result-base.js';
import { type JobSpec, jobSpec } from './job-spec.js';
import type { JobKind, JobRun } from './kind.js';
import { type AllreduceOptions, type ResolvedAllreduceOptions, resolveAllreduceOptions } from './options.js';
import { runJob } from './run-job.js';

/** One rank's report: what its worker sent (runtime/control.ts) and what its task added (task.py). */
export const rankReportSchema = z.looseObject({
  ...workerResultFields,
  /** The executor's host, as Spark names it. */
  host: z.string(),
  handoff: z.object({ rows: z.number(), seconds: z.number() }),
});
export type RankReport = z.infer<typeof rankReportSchema> & { rank: number };

/** A shrink of an elastic run (--min-workers): after attempt `attempt` lost `lostHost`. */
const resizeSchema = z.object({
  attempt: z.number().int(),
  fromWorkers: z.number().int(),
  toWorkers: z.number().int(),
  lostHost: z.string().nullable(),
  lostRank: z.number().int().nullable(),
  /** The lost host's executors the driver removed (they no longer answered). */
  givenUp: z.array(z.string()),
});
export type Resize = z.infer<typeof resizeSchema>;

export const trainResultSchema = driverResultSchema({
  dir: z.string(),
  workers: z.number().int(),
  /** Attempts made, each a barrier stage in the one application (spark-plugin/sparkring/driver/lifecycle.py). */
  attempts: z.number().int(),
  /** --min-workers: each shrink of the run, from the stage that lost a host (spark-plugin/sparkring/driver/elastic.py). */
  resizes: z.array(resizeSchema).optional(),
  ranks: z.array(rankReportSchema),
  result: z.unknown(),
  stageMs: z.number(),
  trainEndAt: z.number(),
  releaseMs: z.number().nullable(),
});
type TrainDriverResult = z.infer<typeof trainResultSchema>;

export interface AllreduceResult {
  runId: string;
  dir: string;
  /** The workers of the stage that finished: fewer than asked where an elastic run lost a host. */
  workers: number;
  attempts: number;
  /** --min-workers: how the run shrank, stage by stage (empty when it kept its size). */
  resizes: Resize[];
  /** Each rank's TensorFlow backend, by rank. */
  backends: string[];
  result: unknown;
  metrics: Record<string, number>;
  timings: { submitToRingMs: number; trainMs: number; releaseMs: number | null };
  ranks: RankReport[];
  appId: string;
}

export interface TrainState {
  progress: Progress;
  spec?: JobSpec;
  /** The entry as it ran, self-contained and portable (tfjs imports left bare), for versioned/. */
  versionedEntry?: string;
}

export const trainJob: JobKind<
  AllreduceOptions,
  ResolvedAllreduceOptions,
  JobSpec,
  TrainDriverResult,
  AllreduceResult,
  TrainState & {
    onEvent: Progress['on'];
    heard(): Progress['errors'];
  }
> = {
  kind: 'train',
  noun: 'run',
  resolve: resolveAllreduceOptions,
  executors: (o) => ({ count: o.workers, flag: '--workers' }),
  async preflight(o) {
    if (!existsSync(o.entry)) throw new RunError('input', `entry file ${o.entry} does not exist`);
    if (o.data && !/^[a-z][a-z0-9+.-]*:\/\//i.test(o.data) && !existsSync(o.data)) {
      throw new RunError('input', `--data ${o.data} does not exist`);
    }
    await mkdir(o.experiments, { recursive: true });
  },
  shipEntry: (o) => o.entry,
  async open(run) {
    const progress = new Progress(run.say);
    return { progress, onEvent: (e) => progress.on(e), heard: () => progress.errors };
  },
  async spec(run, state) {
    const entry = await workerEntry(run.o.entry, run.bundle, run.staging);
    state.versionedEntry = await compileEntry(run.o.entry, join(run.staging, VERSIONED_ENTRY), 'bare');
    state.spec = jobSpec(run.o, run.paths, { ...run, attempt: 0, entry }, run.bundle);
    return state.spec;
  },
  submission(o) {
    const attempts = o.maxAttempts > 1 ? ` (up to ${o.maxAttempts} attempts, in one Spark application)` : '';
    return {
      line: `sparkring: submitting ${o.name} with ${o.workers} workers${attempts}`,
      settings: { gpusPerWorker: o.gpusPerWorker },
    };
  },
  result: trainResultSchema,
  async finish(run, state, driver, submittedAt) {
    await recordRun(run, state, driver.dir, driver);
    const result = toResult(driver, run.runId, submittedAt, state.progress);
    const { ranks: _ranks, ...summary } = result;
    await writeFile(join(driver.dir, 'result.json'), JSON.stringify({ ...driver, ...summary, ok: true }, null, 2));
    return result;
  },
  async failed(run, state, driver) {
    if (driver.dir) await recordRun(run, state, driver.dir, driver);
  },
};

export const allreduce = (input: AllreduceOptions): Promise<AllreduceResult> => runJob(trainJob, input);

/** What the client adds to the run directory: spec.json, versioned/, metrics.jsonl, curves.svg. */
async function recordRun(
  run: JobRun<ResolvedAllreduceOptions>,
  state: TrainState,
  dir: string,
  driver: { appId: string; versions?: Record<string, string | undefined>; ranks?: Array<{ backend: string }> },
): Promise<void> {
  const { o } = run;
  const { spec, versionedEntry } = state;
  if (!spec || !versionedEntry) throw new RunError('spark', 'a sparkring bug: the run ended before its spec was written');
  if (!isInside(o.experiments, dir)) {
    throw new RunError(
      'spark',
      `the driver's result names ${dir}, outside --experiments ${o.experiments}; nothing was written there`,
    );
  }
  const { secret: _s, redis: _r, resultPath: _p, runDir: _d, attempt: _a, ...rerunnable } = spec;
  await writeFile(
    join(dir, 'spec.json'),
    // The user's entry, not the compiled module the workers ran (it lives in the run's staging, gone after the run).
    JSON.stringify({ ...rerunnable, entry: o.entry, sparkConf: redactConf(o.sparkConf), queue: o.queue ?? null }, null, 2),
  );
  // Each worker's TensorFlow backend, as it reported it (also for an attempt that failed later).
  const { progress } = state;
  const backends =
    driver.ranks?.map((r) => r.backend) ?? [...progress.backends.entries()].sort(([a], [b]) => a - b).map(([, b]) => b);
  await writeVersioned(dir, o.entry, packageRoot(), { ...driver.versions, tfBackend: o.tfBackend, backends });
  await copyFile(versionedEntry, join(dir, 'versioned', VERSIONED_ENTRY));
  const records = progress.committedRecords();
  await writeMetrics(dir, records);
  await writeFile(join(dir, 'curves.svg'), curvesSvg(records, `${o.name} (${driver.appId})`));
}

function toResult(d: TrainDriverResult & { ok: true }, runId: string, submittedAt: number, progress: Progress): AllreduceResult {
  const ranks = d.ranks.map((r, rank) => ({ ...r, rank }));
  const rank0 = ranks[0];
  const ringFormedAt = Math.max(...ranks.map((r) => r.ringFormedAt));
  return {
    runId,
    appId: d.appId,
    dir: d.dir,
    workers: d.workers,
    attempts: d.attempts,
    resizes: d.resizes ?? [],
    backends: ranks.map((r) => r.backend ?? r.tfjs),
    result: d.result ?? null,
    metrics: progress.lastMetrics.get(0)?.metrics ?? {},
    timings: {
      submitToRingMs: ringFormedAt - submittedAt,
      trainMs: rank0 ? rank0.trainEndAt - rank0.trainStartAt : 0,
      releaseMs: d.releaseMs,
    },
    ranks,
  };
}

/** Whether `path` lies inside `dir`. */
function isInside(dir: string, path: string): boolean {
  const r = relative(resolve(dir), resolve(path));
  return r !== '' && !r.startsWith('..') && !isAbsolute(r);
}
