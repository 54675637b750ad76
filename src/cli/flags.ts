/**
 * What commander hands each command's action, as zod schemas: the flags are parsed once, typed,
 * instead of cast one by one. commander has already applied each flag's parser and default; a
 * value that still breaks its schema is bad input naming the flag (exit status 2).
 */
import { InvalidArgumentError } from 'commander';
import { z } from 'zod';
import { WIRE_PRECISIONS } from '../collective/half-precision.js';
import { TF_BACKENDS } from '../runtime/backend.js';
import { LOG_PAYLOADS } from '../serve/inference-log.js';

const text = z.string().min(1).optional();

/** withSubmitOptions' flags (main.ts), and --master. */
export const submitFlags = z.object({
  master: text,
  queue: text,
  conf: z.record(z.string(), z.string()),
  redis: text,
  redisCa: text,
  livy: text,
  livyUser: text,
  livyToken: text,
  stage: text,
  requireEncryption: z.boolean().optional(),
  tfBackend: z.enum(TF_BACKENDS),
  json: z.boolean().optional(),
});

/** withJobOptions' flags, and --name. */
export const jobFlags = submitFlags.extend({
  name: text,
  experiments: text,
  ship: z.boolean().optional(),
  shipNode: z.boolean().optional(),
});

export const allreduceFlags = jobFlags.extend({
  workers: z.number().int().positive(),
  data: text,
  partitionBy: text,
  hp: z.record(z.string(), z.string()),
  gpusPerWorker: z.number().nonnegative(),
  maxAttempts: z.number().int().positive(),
  minWorkers: z.number().int().positive().optional(),
  maxWorkers: z.number().int().positive().optional(),
  heartbeatTimeout: z.number().positive(),
  collectiveTimeout: z.number().positive(),
  peerTimeout: z.number().positive(),
  formationTimeout: z.number().positive(),
  ringInterface: text,
  ringEncrypt: z.boolean().optional(),
  wirePrecision: z.enum(WIRE_PRECISIONS),
});

export const launchFlags = jobFlags.extend({
  grid: z.array(z.string()),
  random: z.array(z.string()),
  trials: z.number().int().positive().optional(),
  seed: z.number().int(),
  hp: z.record(z.string(), z.string()),
  metric: z.string().min(1),
  direction: z.enum(['min', 'max']),
  /** `--asha` alone is true; with a value, its text (args.ts earlyStopFlag). */
  asha: z.union([z.boolean(), z.string()]).optional(),
  median: z.union([z.boolean(), z.string()]).optional(),
  executors: z.number().int().positive(),
  maxTrialAttempts: z.number().int().positive(),
  excludeAfter: z.number().int().positive(),
  gpusPerTrial: z.number().nonnegative(),
  // A trial loads TensorFlow synchronously when it first touches ctx.tf; wasm initialises asynchronously.
  tfBackend: z.enum(['auto', 'native', 'cpu'], 'auto, native or cpu (wasm is for allreduce only)'),
});

export const predictFlags = submitFlags.extend({
  data: z.string().min(1),
  out: z.string().min(1),
  features: text,
  output: text,
  where: z.object({ column: z.string(), value: z.number() }).optional(),
  batchSize: z.number().int().positive(),
  executors: z.number().int().positive(),
  overwrite: z.boolean().optional(),
});

/** `sparkring serve`'s flags (cli/serve.ts). */
export const serveFlags = z.object({
  repo: z.string().min(1),
  host: z.string().min(1),
  httpPort: z.number().int().nonnegative(),
  grpcPort: z.number().int().nonnegative(),
  workers: z.number().int().positive(),
  maxBatchSize: z.number().int().positive(),
  maxQueueDelayMs: z.number().int().nonnegative(),
  maxBodyMb: z.number().int().positive(),
  pollMs: z.number().int().positive(),
  drainS: z.number().nonnegative(),
  tokenFile: text,
  tlsCert: text,
  tlsKey: text,
  logRedis: text,
  logMaxLen: z.number().int().positive(),
  logPayload: z.enum(LOG_PAYLOADS),
  tfBackend: z.enum(TF_BACKENDS),
});

const version = z.number().int().positive();

/** `sparkring models route`'s flags (cli/serve.ts); `--no-shadow` gives shadow false. */
export const routeFlags = z.object({
  repo: z.string().min(1),
  canary: z.object({ version, percent: z.number() }).optional(),
  only: version.optional(),
  latest: z.boolean().optional(),
  shadow: z.union([version, z.literal(false)]).optional(),
  pin: z.array(version),
  unpin: z.array(version),
  keep: z.number().int().positive().optional(),
  stickyHeader: text,
  json: z.boolean().optional(),
});

/** The action's flags checked by `schema`; a bad one names its flag. */
export function parseFlags<S extends z.ZodType>(schema: S, flags: Record<string, unknown>): z.output<S> {
  const parsed = schema.safeParse(flags);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const key = String(issue?.path[0] ?? '');
  const flag = `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  throw new InvalidArgumentError(`${flag}: ${issue?.message}`);
}
