/**
 * The job specs: the spec.json a training run's driver and tasks read (spark-plugin/sparkring/driver/spec.py
 * JobSpec), and a search's (search_tasks.py SearchSpec). These schemas are the contract. `npm run
 * spec-schema` writes them as JSON Schema to spark-plugin/sparkring/{job,search}-spec.schema.json,
 * and the tests of both sides check against those files. The client writes every field, so
 * defaults live only in the options (client/jobs/options.ts, client/jobs/search-options.ts).
 *
 * `worker` holds what the task hands its Node worker as it is (runtime/control.ts `initMessage`):
 * a setting only the worker reads is added here and there, and nowhere in Python.
 */
import { z } from 'zod';
import type { RedisEndpoint } from '../../events/redis.js';
import { workerSettingsSchema } from '../../runtime/control.js';
import type { RuntimeBundle } from '../submission/bundle.js';
import type { SparkPaths } from '../submission/paths.js';
import type { ResolvedAllreduceOptions } from './options.js';

const positiveInt = z.number().int().positive();
const redisEndpoint = z.object({ url: z.string(), stream: z.string(), ca: z.string().nullable() });

export const jobSpecSchema = z.object({
  kind: z.literal('train'),
  runId: z.string(),
  name: z.string(),
  /** The compiled entry the workers import (client/submission/entry-compile.ts). */
  entry: z.string(),
  workers: positiveInt,
  secret: z.string(),
  node: z.string(),
  runtimeMain: z.string(),
  /** The archive's name when the run ships its runtime: node, runtimeMain and entry lie inside it. */
  bundle: z.string().nullable(),
  experiments: z.string(),
  resultPath: z.string(),
  /** 0 for the first attempt. */
  attempt: z.number().int().nonnegative(),
  data: z.string().nullable(),
  partitionBy: z.string().nullable(),
  hparams: z.record(z.string(), z.unknown()),
  gpusPerWorker: z.number().nonnegative(),
  slotWaitSeconds: z.number().positive(),
  redis: redisEndpoint.nullable(),
  worker: workerSettingsSchema,
  releaseExecutors: z.boolean(),
  /** The executors are released after the result is sent: the client returns on the result (JobRun.returnsOnResult). */
  releaseAfterResult: z.boolean().default(false),
  master: z.string().nullable(),
  /** Set from the second attempt on: every attempt of a run shares one directory (its checkpoints). */
  runDir: z.string().nullable(),
  maxAttempts: positiveInt,
  /** --min-workers: a lost host's workers may be given up, down to this many (lifecycle.py); null: never. */
  minWorkers: positiveInt.nullable().default(null),
  /** --max-workers: the most workers an elastic run grows to; null: --workers. */
  maxWorkers: positiveInt.nullable().default(null),
  heartbeatTimeoutMs: positiveInt,
});
export type JobSpec = z.infer<typeof jobSpecSchema>;

/** The run's Redis as a spec holds it (every field written). */
export function specRedis(e: RedisEndpoint): z.infer<typeof redisEndpoint> {
  return { url: e.url, stream: e.stream, ca: e.ca ?? null };
}

/** The spec of one attempt of a run. */
export function jobSpec(
  o: ResolvedAllreduceOptions,
  paths: SparkPaths,
  run: {
    runId: string;
    secret: string;
    attempt: number;
    resultPath: string;
    redis: RedisEndpoint | null;
    runDir?: string;
    returnsOnResult?: boolean;
    /** The compiled entry the workers import (client/submission/entry-compile.ts). */
    entry: string;
  },
  bundle?: RuntimeBundle,
): JobSpec {
  return {
    kind: 'train',
    runId: run.runId,
    name: o.name,
    entry: run.entry,
    workers: o.workers,
    secret: run.secret,
    node: bundle?.node ?? process.execPath,
    runtimeMain: bundle?.runtimeMain ?? paths.runtimeMain,
    bundle: bundle?.name ?? null,
    experiments: o.experiments,
    resultPath: run.resultPath,
    attempt: run.attempt,
    data: o.data ?? null,
    partitionBy: o.partitionBy ?? null,
    hparams: o.hparams,
    gpusPerWorker: o.gpusPerWorker,
    minWorkers: o.minWorkers ?? null,
    maxWorkers: o.maxWorkers ?? null,
    slotWaitSeconds: o.slotWaitSeconds,
    redis: run.redis ? specRedis(run.redis) : null,
    worker: {
      ringInterface: o.ringInterface ?? null,
      ringEncrypt: o.ringEncrypt ?? null,
      wirePrecision: o.wirePrecision,
      peerTimeoutMs: o.peerTimeoutMs,
      formationTimeoutMs: o.formationTimeoutMs,
      collectiveTimeoutMs: o.collectiveTimeoutMs,
      tfBackend: o.tfBackend,
    },
    releaseExecutors: o.releaseExecutors,
    releaseAfterResult: run.returnsOnResult ?? false,
    master: o.master ?? null,
    runDir: run.runDir ?? null,
    maxAttempts: o.maxAttempts,
    heartbeatTimeoutMs: o.heartbeatTimeoutMs,
  };
}

export const searchSpecSchema = z.object({
  kind: z.literal('search'),
  runId: z.string(),
  name: z.string(),
  entry: z.string(),
  executors: positiveInt,
  node: z.string(),
  agentMain: z.string(),
  trialMain: z.string(),
  bundle: z.string().nullable(),
  experiments: z.string(),
  resultPath: z.string(),
  secret: z.string(),
  redis: redisEndpoint,
  /** The trial queue's keys (hpo/queue.ts) the driver reads to size its rounds. */
  queueKeys: z.object({ pending: z.string(), running: z.string(), client: z.string() }),
  metric: z.string(),
  /** The trial retry rules (hpo/retry-policy.ts). */
  leaseMs: positiveInt,
  maxTrialAttempts: positiveInt,
  excludeAfter: positiveInt,
  maxFailedRounds: positiveInt,
  idleRoundLeases: positiveInt,
  tfBackend: z.enum(['auto', 'native', 'cpu']),
});
export type SearchSpec = z.infer<typeof searchSpecSchema>;

/** The JSON Schemas, as spark-plugin/sparkring/<name>.schema.json holds them. */
export function specJsonSchemas(): Record<'job-spec' | 'search-spec', Record<string, unknown>> {
  return {
    'job-spec': z.toJSONSchema(jobSpecSchema) as Record<string, unknown>,
    'search-spec': z.toJSONSchema(searchSpecSchema) as Record<string, unknown>,
  };
}
