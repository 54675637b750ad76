/**
 * `allreduce(options)`: runs a training module on W Spark executors in one barrier stage, with
 * the ring formed from Spark's allGather, and returns rank 0's result.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { RunEvent } from '../events/protocol.js';
import { type RedisEndpoint, redactUrl } from '../events/redis.js';
import { curvesSvg } from '../experiments/curves.js';
import { VERSIONED_ENTRY, writeMetrics, writeVersioned } from '../experiments/layout.js';
import { type Staging, shipRuntime, stagingDir, workerEntry } from './bundle.js';
import { type DriverError, driverError } from './driver-error.js';
import { readDriverResult } from './driver-result.js';
import { compileEntry } from './entry-compile.js';
import { RunError } from './errors.js';
import { EventFollower } from './event-stream.js';
import { type JobSpec, jobSpec } from './job-spec.js';
import { checkLivy, runLivyBatch } from './livy-submit.js';
import { type AllreduceOptions, type ResolvedAllreduceOptions, resolveAllreduceOptions } from './options.js';
import { packageRoot, requireSparkPaths, type SparkPaths } from './paths.js';
import { Progress } from './progress.js';
import { placeJob } from './reachable.js';
import { redactConf } from './redaction.js';
import { openRunRedis } from './redis-server.js';
import { checkEmbeddedSlots, runSparkSubmit, type SubmitOutcome, submitError } from './spark-submit.js';
import { checkYarnQueue } from './yarn.js';

export interface RankReport {
  rank: number;
  /** The executor's host, as Spark names it. */
  host: string;
  result: unknown;
  ringFormedAt: number;
  /**
   * How this rank's data reached the next rank: 'shared memory' (both on one host), 'tcp' or
   * 'grpc' (the transport), 'none' for a ring of one (collective/ring.ts dataPath).
   */
  ringDataPath: string;
  trainStartAt: number;
  trainEndAt: number;
  rows: number;
  tfjs: string;
  /** `tensorflow 2.21.0 cpu`, `tensorflow 2.21.0 gpu`, `wasm` or `cpu` (runtime/backend.ts). */
  backend: string;
  /** The intra-op threads of its TensorFlow (the task's spark.task.cpus), for native backends. */
  tfThreads: number | null;
  /** The TensorFlow library the worker loaded (native only). */
  tfLibrary: string | null;
  cudaVisibleDevices: string | null;
  handoff: { rows: number; seconds: number };
}

export interface AllreduceResult {
  runId: string;
  dir: string;
  workers: number;
  attempts: number;
  /** Each rank's TensorFlow backend, by rank. */
  backends: string[];
  result: unknown;
  metrics: Record<string, number>;
  timings: { submitToRingMs: number; trainMs: number; releaseMs: number | null };
  ranks: RankReport[];
  appId: string;
}

interface DriverResult {
  ok: boolean;
  appId: string;
  dir: string;
  result?: unknown;
  ranks?: Array<Omit<RankReport, 'rank'>>;
  releaseMs?: number | null;
  /** Attempts made, each a barrier stage in the one application (spark-plugin/sparkring/lifecycle.py). */
  attempts?: number;
  versions?: { spark?: string; python?: string; master?: string };
  error?: DriverError;
}

function preflight(o: ResolvedAllreduceOptions): void {
  if (!existsSync(o.entry)) throw new RunError('input', `entry file ${o.entry} does not exist`);
  if (o.data && !/^[a-z][a-z0-9+.-]*:\/\//i.test(o.data) && !existsSync(o.data)) {
    throw new RunError('input', `--data ${o.data} does not exist`);
  }
  if (!o.master && !o.livy) checkEmbeddedSlots(o.workers, '--workers');
}

/** One run's client side, from its options to its spec on disk, with its events followed. */
export interface OpenRun {
  o: ResolvedAllreduceOptions;
  paths: SparkPaths;
  say: (line: string) => void;
  progress: Progress;
  runId: string;
  secret: string;
  redis: RedisEndpoint;
  sparkConf: Record<string, string>;
  staging: string;
  archives: string[];
  spec: JobSpec;
  specPath: string;
  resultPath: string;
  versionedEntry: string;
  /** Stops following, the private Redis and removes the staging. */
  close(): Promise<void>;
}

/**
 * The client's half of a run up to its spec (the one pipeline of `allreduce` and of the Python
 * API's session, client/session.ts): checks, the run's Redis and event following, the compiled
 * entry (and the shipped runtime), spec.json. `submits`: whether this client runs spark-submit
 * (the Python API's driver is the caller's own process).
 */
export async function openRun(input: AllreduceOptions, submits = true): Promise<OpenRun> {
  const o = resolveAllreduceOptions(input);
  preflight(o);
  if (o.livy) await checkLivy({ livy: o.livy, livyHeaders: o.livyHeaders });
  if (o.queue && (o.master === 'yarn' || o.livy)) await checkYarnQueue(o.queue);
  const paths = requireSparkPaths(submits);
  const say = o.onProgress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const progress = new Progress(say);
  const runId = randomUUID();
  await mkdir(o.experiments, { recursive: true });
  const placed = await placeJob(o);
  const redis = await openRunRedis(o, runId, placed.address);
  const follower = new EventFollower(redis.endpoint, (e: RunEvent) => {
    progress.on(e);
    o.onEvent?.(e);
  });
  follower.onIgnored = (message) => say(`sparkring: ${message}`);
  let lastTrouble = 0;
  follower.onTrouble = (message) => {
    if (Date.now() - lastTrouble < 10_000) return;
    lastTrouble = Date.now();
    say(`sparkring: Redis at ${redactUrl(redis.endpoint.url)}: ${message}; following the run resumes when it is back`);
  };
  let stage: Staging | undefined;
  const close = async (): Promise<void> => {
    await follower.stop();
    await redis.stop();
    await stage?.remove();
  };
  try {
    const secret = randomBytes(32).toString('hex');
    stage = await stagingDir(o.stage, 'sparkring-');
    const staging = stage.dir;
    const bundle = await shipRuntime(o, paths, staging, say);
    const entry = await workerEntry(o.entry, bundle, staging);
    // The entry as it ran, self-contained and portable (tfjs imports left bare), for versioned/.
    const versionedEntry = await compileEntry(o.entry, join(staging, VERSIONED_ENTRY), 'bare');
    const resultPath = join(staging, 'result.json');
    const spec = jobSpec(o, paths, { runId, secret, attempt: 0, resultPath, redis: redis.endpoint, entry }, bundle);
    const specPath = join(staging, 'spec.json');
    await writeFile(specPath, JSON.stringify(spec, null, 2), { mode: 0o600 });
    return {
      o,
      paths,
      say,
      progress,
      runId,
      secret,
      redis: redis.endpoint,
      sparkConf: placed.sparkConf,
      staging,
      archives: bundle ? [bundle.archive] : [],
      spec,
      specPath,
      resultPath,
      versionedEntry,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

export async function allreduce(input: AllreduceOptions): Promise<AllreduceResult> {
  const run = await openRun(input);
  const { o, paths, say } = run;
  try {
    const submit = { ...o, sparkConf: run.sparkConf, archives: run.archives };
    const attempts = o.maxAttempts > 1 ? ` (up to ${o.maxAttempts} attempts, in one Spark application)` : '';
    say(`sparkring: submitting ${o.name} with ${o.workers} workers${attempts}`);
    const submitAt = Date.now();
    const program = [paths.submitFile, run.specPath];
    const outcome = await (o.livy
      ? runLivyBatch({ ...submit, livy: o.livy }, paths, program, run.staging, say, o.signal)
      : runSparkSubmit(submit, paths, program, o.signal));
    if (o.signal?.aborted) throw new RunError('input', 'interrupted; the run was stopped');
    return await finishRun(run, submitAt, outcome);
  } finally {
    await run.close();
  }
}

/**
 * The driver's result (its file, or its signed last event) as the run's outcome: the run's files
 * recorded, its result returned or its error thrown. `outcome`: spark-submit's, where this client ran it.
 */
export async function finishRun(run: OpenRun, submitAt: number, outcome?: SubmitOutcome): Promise<AllreduceResult> {
  const { o, progress } = run;
  const driver = await readDriverResult<DriverResult>(run.resultPath, run.redis, run.secret);
  if (driver?.dir && !isInside(o.experiments, driver.dir)) {
    throw new RunError(
      'spark',
      `the driver's result names ${driver.dir}, outside --experiments ${o.experiments}; nothing was written there`,
    );
  }
  if (driver?.dir) await recordRun(driver, o, run.spec, progress, run.versionedEntry);
  if (driver?.ok) {
    const result = toResult(driver, run.runId, o.workers, submitAt, progress);
    const { ranks: _ranks, ...summary } = result;
    await writeFile(join(driver.dir, 'result.json'), JSON.stringify({ ...driver, ...summary, ok: true }, null, 2));
    return result;
  }
  if (driver?.error) throw driverError(driver.error, progress.errors, driver.dir);
  if (outcome) throw submitError(outcome);
  throw new RunError('spark', 'the driver ended without a result; see its log above');
}

/** What the client adds to the run directory: spec.json, versioned/, metrics.jsonl, curves.svg. */
async function recordRun(
  driver: DriverResult,
  o: ResolvedAllreduceOptions,
  spec: JobSpec,
  progress: Progress,
  versionedEntry: string,
): Promise<void> {
  const { secret: _secret, redis: _redis, resultPath: _resultPath, runDir: _runDir, attempt: _attempt, ...rerunnable } = spec;
  await writeFile(
    join(driver.dir, 'spec.json'),
    // The user's entry, not the compiled module the workers ran (it lives in the run's staging, gone after the run).
    JSON.stringify({ ...rerunnable, entry: o.entry, sparkConf: redactConf(o.sparkConf), queue: o.queue ?? null }, null, 2),
  );
  // Each worker's TensorFlow backend, as it reported it (also for an attempt that failed later).
  const backends =
    driver.ranks?.map((r) => r.backend) ?? [...progress.backends.entries()].sort(([a], [b]) => a - b).map(([, b]) => b);
  await writeVersioned(driver.dir, o.entry, packageRoot(), { ...driver.versions, tfBackend: o.tfBackend, backends });
  await copyFile(versionedEntry, join(driver.dir, 'versioned', VERSIONED_ENTRY));
  const records = progress.committedRecords();
  await writeMetrics(driver.dir, records);
  await writeFile(join(driver.dir, 'curves.svg'), curvesSvg(records, `${o.name} (${driver.appId})`));
}

function toResult(d: DriverResult, runId: string, workers: number, submitAt: number, progress: Progress): AllreduceResult {
  const ranks = (d.ranks ?? []).map((r, rank) => ({ ...r, rank }));
  const rank0 = ranks[0];
  const ringFormedAt = Math.max(...ranks.map((r) => r.ringFormedAt));
  return {
    runId,
    appId: d.appId,
    dir: d.dir,
    workers,
    attempts: d.attempts ?? 1,
    backends: ranks.map((r) => r.backend ?? r.tfjs),
    result: d.result ?? null,
    metrics: progress.lastMetrics.get(0)?.metrics ?? {},
    timings: {
      submitToRingMs: ringFormedAt - submitAt,
      trainMs: rank0 ? rank0.trainEndAt - rank0.trainStartAt : 0,
      releaseMs: d.releaseMs ?? null,
    },
    ranks,
  };
}

/** Whether `path` lies inside `dir`. */
function isInside(dir: string, path: string): boolean {
  const r = relative(resolve(dir), resolve(path));
  return r !== '' && !r.startsWith('..') && !isAbsolute(r);
}
