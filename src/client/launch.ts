/**
 * `launch(options)`: a hyperparameter search. Trials wait in a Redis queue; one long-lived Spark
 * task per executor runs them one after another, each in a fresh Node process; early stopping
 * decisions are taken here, from the metrics trials report, and go back through Redis.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connectRedis, type RedisEndpoint } from '../events/redis.js';
import { writeVersioned } from '../experiments/layout.js';
import { EventWriter } from '../experiments/tensorboard.js';
import type { TrialOutcome } from '../hpo/protocol.js';
import { TrialQueue, type TrialStatus } from '../hpo/queue.js';
import { clientAliveMs, reapEveryMs, SEARCH_ROUNDS } from '../hpo/retry-policy.js';
import type { Hparams } from '../hpo/space.js';
import { type Staging, shipRuntime, stagingDir, workerEntry } from './bundle.js';
import { type DriverError, driverError } from './driver-error.js';
import { readDriverResult } from './driver-result.js';
import { RunError } from './errors.js';
import { EventFollower } from './event-stream.js';
import { type SearchSpec, specRedis } from './job-spec.js';
import {
  type LaunchOptions,
  type ResolvedLaunchOptions,
  resolveLaunchOptions,
  searchTrials,
  stoppingRule,
} from './launch-options.js';
import { checkLivy, runLivyBatch } from './livy-submit.js';
import { packageRoot, requireSparkPaths, type SparkPaths } from './paths.js';
import { placeJob } from './reachable.js';
import { redactConf } from './redaction.js';
import { openRunRedis } from './redis-server.js';
import { SearchProgress } from './search-progress.js';
import { checkEmbeddedSlots, runSparkSubmit, type SubmitOutcome, submitError } from './spark-submit.js';
import { checkYarnQueue } from './yarn.js';

export interface TrialResult {
  id: string;
  hparams: Hparams;
  status: TrialStatus;
  metric: number | null;
  attempts: number;
  steps: number;
  stoppedEarly: boolean;
  error: string | null;
  executor: string | null;
  /** The trial's TensorFlow backend (`tensorflow 2.21.0 cpu`, ...), null when it never touched ctx.tf. */
  backend: string | null;
  result: unknown;
  timings: TrialOutcome['timings'] | null;
}

export interface LaunchResult {
  runId: string;
  appId: string;
  dir: string;
  trials: TrialResult[];
  best: TrialResult | null;
  timings: { searchMs: number; releaseMs: number | null };
}

interface DriverResult {
  ok: boolean;
  appId: string;
  dir: string;
  rounds?: number;
  releaseMs?: number | null;
  versions?: { spark?: string; python?: string; master?: string };
  error?: DriverError;
}

/** One search's client side, from its options to its spec on disk, with its queue filled and its events followed. */
export interface OpenSearch {
  o: ResolvedLaunchOptions;
  paths: SparkPaths;
  say: (line: string) => void;
  trials: number;
  spec: SearchSpec;
  specPath: string;
  resultPath: string;
  staging: string;
  sparkConf: Record<string, string>;
  archives: string[];
  queue: TrialQueue;
  redis: RedisEndpoint;
  /** Stops the reaper, following and the private Redis, and removes the staging. */
  close(): Promise<void>;
}

/**
 * The client's half of a search up to its spec (the one pipeline of `launch` and of the Python
 * API's session, client/session.ts): checks, the run's Redis with the trials queued, the lease
 * reaper, early-stopping decisions, the shipped runtime, spec.json. `submits`: whether this client
 * runs spark-submit (the Python API's driver is the caller's own process).
 */
export async function openSearch(input: LaunchOptions, submits = true): Promise<OpenSearch> {
  const o = resolveLaunchOptions(input);
  const trials = searchTrials(o);
  const rule = stoppingRule(o);
  if (!existsSync(o.entry)) throw new RunError('input', `entry file ${o.entry} does not exist`);
  if (!o.master && !o.livy) checkEmbeddedSlots(o.executors, '--executors');
  if (o.livy) await checkLivy({ livy: o.livy, livyHeaders: o.livyHeaders });
  if (o.queue && (o.master === 'yarn' || o.livy)) await checkYarnQueue(o.queue);
  const paths = requireSparkPaths(submits);
  const say = o.onProgress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const runId = randomUUID();
  const secret = randomBytes(32).toString('hex');
  await mkdir(o.experiments, { recursive: true });
  const placed = await placeJob(o);
  const redis = await openRunRedis(o, runId, placed.address);
  const conn = connectRedis(redis.endpoint, { maxRetriesPerRequest: null });
  conn.on('error', () => undefined);
  const policy = { leaseMs: o.leaseMs, maxAttempts: o.maxTrialAttempts, excludeAfter: o.excludeAfter };
  const queue = new TrialQueue(conn, runId, policy);
  const progress = new SearchProgress(say, o.metric, o.maxTrialAttempts);
  const follower = new EventFollower(redis.endpoint, (e) => {
    const decided = progress.on(e, rule);
    if (decided) queue.requestStop(decided).catch(() => undefined);
    o.onEvent?.(e);
  });
  let stage: Staging | undefined;
  let reaper: NodeJS.Timeout | undefined;
  const close = async (): Promise<void> => {
    if (reaper) clearInterval(reaper);
    await follower.stop();
    conn.disconnect();
    await redis.stop();
    await stage?.remove();
  };
  try {
    await conn.connect();
    await queue.enqueue(trials);
    await queue.clientAlive(clientAliveMs(policy));
    // Lost executors' trials go back to the queue once their lease runs out.
    reaper = setInterval(() => {
      queue
        .reap()
        .then((ids) => {
          for (const id of ids) say(`sparkring: trial ${id} went back to the queue: its executor stopped renewing the lease`);
        })
        .catch(() => undefined);
      queue.clientAlive(clientAliveMs(policy)).catch(() => undefined);
    }, reapEveryMs(policy));
    stage = await stagingDir(o.stage, 'sparkring-search-');
    const staging = stage.dir;
    const resultPath = join(staging, 'result.json');
    const bundle = await shipRuntime(o, paths, staging, say);
    const entry = await workerEntry(o.entry, bundle, staging);
    const spec: SearchSpec = {
      kind: 'search',
      runId,
      name: o.name,
      entry,
      executors: o.executors,
      node: bundle?.node ?? process.execPath,
      agentMain: bundle?.agentMain ?? paths.agentMain,
      trialMain: bundle?.trialMain ?? paths.trialMain,
      bundle: bundle?.name ?? null,
      experiments: o.experiments,
      resultPath,
      secret,
      redis: specRedis(redis.endpoint),
      queueKeys: queue.keys(),
      metric: o.metric,
      leaseMs: o.leaseMs,
      maxTrialAttempts: o.maxTrialAttempts,
      excludeAfter: o.excludeAfter,
      ...SEARCH_ROUNDS,
      tfBackend: o.tfBackend,
    };
    const specPath = join(staging, 'spec.json');
    await writeFile(specPath, JSON.stringify(spec, null, 2), { mode: 0o600 });
    return {
      o,
      paths,
      say,
      trials: trials.length,
      spec,
      specPath,
      resultPath,
      staging,
      sparkConf: placed.sparkConf,
      archives: bundle ? [bundle.archive] : [],
      queue,
      redis: redis.endpoint,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

export async function launch(input: LaunchOptions): Promise<LaunchResult> {
  const search = await openSearch(input);
  const { o, paths, say } = search;
  try {
    say(`sparkring: searching ${search.trials} trials of ${o.name} on ${o.executors} executors`);
    const startedAt = Date.now();
    const submit = {
      workers: o.executors,
      master: o.master,
      queue: o.queue,
      gpusPerWorker: o.gpusPerTrial,
      sparkConf: search.sparkConf,
      search: true,
      archives: search.archives,
    };
    const program = [paths.submitFile, search.specPath];
    const outcome = o.livy
      ? await runLivyBatch(
          { ...submit, livy: o.livy, livyHeaders: o.livyHeaders, name: o.name },
          paths,
          program,
          search.staging,
          say,
          o.signal,
        )
      : await runSparkSubmit(submit, paths, program, o.signal);
    if (o.signal?.aborted) throw new RunError('input', 'interrupted; the search was stopped');
    return await finishSearch(search, startedAt, outcome);
  } finally {
    await search.close();
  }
}

/**
 * The driver's result (its file, or its signed last event) as the search's outcome: its trials
 * from the queue, the best one, the run's files recorded. `outcome`: spark-submit's, where this client ran it.
 */
export async function finishSearch(search: OpenSearch, startedAt: number, outcome?: SubmitOutcome): Promise<LaunchResult> {
  const { o, queue, spec } = search;
  const searchMs = Date.now() - startedAt;
  const driver = await readDriverResult<DriverResult>(search.resultPath, search.redis, spec.secret);
  if (!driver?.ok) {
    if (driver?.dir) {
      await writeFile(join(driver.dir, 'result.json'), JSON.stringify({ ...driver, trials: await queue.trials() }, null, 2));
    }
    if (driver?.error) throw driverError(driver.error, [], driver.dir);
    if (outcome) throw submitError(outcome);
    throw new RunError('spark', 'the search driver ended without a result; see its log above');
  }
  const results = (await queue.trials()).map(toTrialResult);
  const result: LaunchResult = {
    runId: spec.runId,
    appId: driver.appId,
    dir: driver.dir,
    trials: results,
    best: bestTrial(results, o.direction),
    timings: { searchMs, releaseMs: driver.releaseMs ?? null },
  };
  await recordSearch(result, o, spec as unknown as Record<string, unknown>, driver);
  return result;
}

function toTrialResult(t: Awaited<ReturnType<TrialQueue['trials']>>[number]): TrialResult {
  const out = (t.result ?? null) as TrialOutcome | null;
  return {
    id: t.id,
    hparams: t.hparams,
    status: t.status,
    metric: out?.metric ?? null,
    attempts: t.attempts,
    steps: out?.steps ?? 0,
    stoppedEarly: out?.stoppedEarly ?? false,
    error: t.status === 'done' ? null : t.error,
    executor: out?.executor ?? null,
    backend: out?.backend ?? null,
    result: out?.result ?? null,
    timings: out?.timings ?? null,
  };
}

/** The done trial with the best metric (ties: the lower id). */
export function bestTrial(trials: TrialResult[], direction: 'min' | 'max'): TrialResult | null {
  let best: TrialResult | null = null;
  for (const t of trials) {
    if (t.status !== 'done' || t.metric === null) continue;
    if (!best || (direction === 'min' ? t.metric < (best.metric as number) : t.metric > (best.metric as number))) best = t;
  }
  return best;
}

/** result.json, spec.json, versioned/ and the hparams plugin's experiment for TensorBoard. */
async function recordSearch(
  r: LaunchResult,
  o: ResolvedLaunchOptions,
  spec: Record<string, unknown>,
  driver: DriverResult,
): Promise<void> {
  const { redis: _redis, resultPath: _resultPath, queueKeys: _keys, secret: _secret, ...rerunnable } = spec;
  await writeFile(
    join(r.dir, 'spec.json'),
    JSON.stringify(
      {
        ...rerunnable,
        entry: o.entry,
        grid: o.grid ?? null,
        random: o.random ?? null,
        trials: o.trials ?? null,
        seed: o.seed,
        hparams: o.hparams,
        direction: o.direction,
        earlyStop: o.earlyStop ?? null,
        sparkConf: redactConf(o.sparkConf),
      },
      null,
      2,
    ),
  );
  await writeFile(join(r.dir, 'result.json'), JSON.stringify({ ...r, ok: true, rounds: driver.rounds }, null, 2));
  await writeVersioned(r.dir, o.entry, packageRoot(), driver.versions ?? {});
  const searched: Record<string, unknown[]> = {};
  for (const t of r.trials) {
    for (const [k, v] of Object.entries(t.hparams)) {
      const seen = searched[k] ?? [];
      if (!seen.includes(v)) seen.push(v);
      searched[k] = seen;
    }
  }
  const board = new EventWriter(r.dir, '.search');
  board.experiment(o.name, searched, [o.metric]);
  board.close();
}
