/**
 * The search kind (`launch`): a hyperparameter search. Trials wait in a Redis queue; one long-lived
 * Spark task per executor runs them one after another, each in a fresh Node process; early stopping
 * decisions are taken here, from the metrics trials report, and go back through Redis
 * (spark-plugin/sparkring/driver/search_rounds.py is its driver's middle).
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { connectRedis } from '../../events/redis.js';
import { VERSIONED_ENTRY, writeVersioned } from '../../experiments/layout.js';
import { EventWriter } from '../../experiments/tensorboard.js';
import type { TrialOutcome } from '../../hpo/protocol.js';
import { TrialQueue, type TrialStatus } from '../../hpo/queue.js';
import { clientAliveMs, reapEveryMs, SEARCH_ROUNDS } from '../../hpo/retry-policy.js';
import type { Hparams } from '../../hpo/space.js';
import { RunError } from '../errors.js';
import { redactConf } from '../run/redaction.js';
import { SearchProgress } from '../run/search-progress.js';
import { workerEntry } from '../submission/bundle.js';
import { compileEntry } from '../submission/entry-compile.js';
import { packageRoot } from '../submission/paths.js';
import { driverResultSchema } from './driver-result-base.js';
import { type SearchSpec, specRedis } from './job-spec.js';
import type { JobKind, JobRun } from './kind.js';
import { runJob } from './run-job.js';
import {
  type LaunchOptions,
  type ResolvedLaunchOptions,
  resolveLaunchOptions,
  searchTrials,
  stoppingRule,
} from './search-options.js';

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

export const searchResultSchema = driverResultSchema({
  dir: z.string(),
  executors: z.number().int(),
  /** Rounds of agent tasks the driver ran (spark-plugin/sparkring/driver/search_rounds.py). */
  rounds: z.number().int(),
  lastTrialEndAt: z.number(),
  /** From the last trial's end to the last executor gone; null in a caller's session, whose executors stay. */
  releaseMs: z.number().nullable(),
});
type SearchDriverResult = z.infer<typeof searchResultSchema>;

export interface SearchState {
  queue: TrialQueue;
  spec?: SearchSpec;
  /** The entry as it ran, self-contained (tfjs imports left bare), for versioned/ and a rerun. */
  versionedEntry?: string;
  trials: number;
  onEvent: (e: Parameters<SearchProgress['on']>[0]) => void;
  close(): Promise<void>;
}

export const searchJob: JobKind<LaunchOptions, ResolvedLaunchOptions, SearchSpec, SearchDriverResult, LaunchResult, SearchState> =
  {
    kind: 'search',
    noun: 'search',
    resolve: resolveLaunchOptions,
    executors: (o) => ({ count: o.executors, flag: '--executors' }),
    async preflight(o) {
      searchTrials(o);
      stoppingRule(o);
      if (!existsSync(o.entry)) throw new RunError('input', `entry file ${o.entry} does not exist`);
      await mkdir(o.experiments, { recursive: true });
    },
    shipEntry: (o) => o.entry,
    async open(run) {
      const { o, say } = run;
      const trials = searchTrials(o);
      const rule = stoppingRule(o);
      const conn = connectRedis(run.redis, { maxRetriesPerRequest: null });
      conn.on('error', () => undefined);
      const policy = { leaseMs: o.leaseMs, maxAttempts: o.maxTrialAttempts, excludeAfter: o.excludeAfter };
      const queue = new TrialQueue(conn, run.runId, policy);
      const progress = new SearchProgress(say, o.metric, o.maxTrialAttempts);
      let reaper: NodeJS.Timeout | undefined;
      const close = async (): Promise<void> => {
        if (reaper) clearInterval(reaper);
        conn.disconnect();
      };
      try {
        await conn.connect();
        await queue.enqueue(trials);
        await queue.clientAlive(clientAliveMs(policy));
      } catch (err) {
        await close();
        throw err;
      }
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
      const onEvent = (e: Parameters<SearchProgress['on']>[0]): void => {
        const decided = progress.on(e, rule);
        if (decided) queue.requestStop(decided).catch(() => undefined);
      };
      return { queue, trials: trials.length, onEvent, close };
    },
    async spec(run, state) {
      const { o } = run;
      state.versionedEntry = await compileEntry(o.entry, join(run.staging, VERSIONED_ENTRY), 'bare');
      state.spec = {
        kind: 'search',
        runId: run.runId,
        name: o.name,
        entry: await workerEntry(o.entry, run.bundle, run.staging),
        executors: o.executors,
        node: run.bundle?.node ?? process.execPath,
        agentMain: run.bundle?.agentMain ?? run.paths.agentMain,
        trialMain: run.bundle?.trialMain ?? run.paths.trialMain,
        bundle: run.bundle?.name ?? null,
        experiments: o.experiments,
        resultPath: run.resultPath,
        secret: run.secret,
        redis: specRedis(run.redis),
        queueKeys: state.queue.keys(),
        metric: o.metric,
        leaseMs: o.leaseMs,
        maxTrialAttempts: o.maxTrialAttempts,
        excludeAfter: o.excludeAfter,
        ...SEARCH_ROUNDS,
        tfBackend: o.tfBackend,
      };
      return state.spec;
    },
    submission: (o) => ({
      line: `sparkring: searching ${searchTrials(o).length} trials of ${o.name} on ${o.executors} executors`,
      settings: { gpusPerWorker: o.gpusPerTrial, search: true },
    }),
    result: searchResultSchema,
    async finish(run, state, driver, submittedAt) {
      const results = (await state.queue.trials()).map(toTrialResult);
      const result: LaunchResult = {
        runId: run.runId,
        appId: driver.appId,
        dir: driver.dir,
        trials: results,
        best: bestTrial(results, run.o.direction),
        timings: { searchMs: Date.now() - submittedAt, releaseMs: driver.releaseMs },
      };
      await recordSearch(run, state, result, driver);
      return result;
    },
    async failed(_run, state, driver) {
      if (driver.dir) {
        await writeFile(
          join(driver.dir, 'result.json'),
          JSON.stringify({ ...driver, trials: await state.queue.trials() }, null, 2),
        );
      }
    },
  };

export const launch = (input: LaunchOptions): Promise<LaunchResult> => runJob(searchJob, input);

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
  let bestMetric = 0;
  for (const t of trials) {
    if (t.status !== 'done' || t.metric === null) continue;
    if (!best || (direction === 'min' ? t.metric < bestMetric : t.metric > bestMetric)) {
      best = t;
      bestMetric = t.metric;
    }
  }
  return best;
}

/** result.json, spec.json, versioned/ and the hparams plugin's experiment for TensorBoard. */
async function recordSearch(
  run: JobRun<ResolvedLaunchOptions>,
  state: SearchState,
  r: LaunchResult,
  driver: SearchDriverResult & { ok: true },
): Promise<void> {
  const { o } = run;
  if (!state.spec) throw new RunError('spark', 'a sparkring bug: the search ended before its spec was written');
  const { redis: _redis, resultPath: _resultPath, queueKeys: _keys, secret: _secret, ...rerunnable } = state.spec;
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
  if (state.versionedEntry) await copyFile(state.versionedEntry, join(r.dir, 'versioned', VERSIONED_ENTRY));
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
