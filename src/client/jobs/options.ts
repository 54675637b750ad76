import { basename, extname, resolve } from 'node:path';
import { z } from 'zod';
import { WIRE_PRECISIONS } from '../../collective/half-precision.js';
import { ringTimeoutFields } from '../../collective/options.js';
import type { RunEvent } from '../../events/protocol.js';
import { TF_BACKENDS } from '../../runtime/backend.js';
import { RunError } from '../errors.js';

export const DEFAULT_EXPERIMENTS = (): string => resolve(process.env.SPARKRING_EXPERIMENTS ?? 'experiments');

/**
 * The one rule for run names: a name is one folder of the experiment layout, so "." and ".." (and
 * anything with a separator) are refused.
 */
function runNameProblem(name: string): string | undefined {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) return 'use letters, digits, ".", "_" or "-"';
  if (/^\.+$/.test(name)) return 'a name made only of dots is not a folder name; use letters or digits too';
  return undefined;
}

function checkName(name: string, ctx: z.RefinementCtx): void {
  const problem = runNameProblem(name);
  if (problem) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(name)}: ${problem}` });
}

/** What every job (a training run or a search) is told: where it runs, where it records, how it reports. */
/** The Spark setting --require-encryption becomes; the driver reads it (spark-plugin/sparkring/driver/rpc_encryption.py). */
export const REQUIRE_ENCRYPTION_CONF = 'spark.sparkring.requireEncryption';

export const jobFields = {
  /** The training module (.ts or .js) with a default export `train(ctx)`. */
  entry: z.string().min(1),
  /** Run name (experiment folder); default: the entry's file name. */
  name: z.string().superRefine(checkName).optional(),
  /** Spark master; default: the embedded local-cluster[W,1,1024]. */
  master: z.string().min(1).optional(),
  /**
   * A host of the cluster, where the master names none (a local master on a Spark Connect server's
   * machine): the executors reach this client by the address toward it. The Python API sets it.
   */
  clusterHost: z.string().min(1).optional(),
  /** Submit through this Livy server (http(s)://host:port) instead of spark-submit. */
  livy: z
    .string()
    .regex(/^https?:\/\//, 'an http:// or https:// URL')
    .optional(),
  /** Headers for Livy's auth (e.g. livy/client.ts basicAuth or bearer). */
  livyHeaders: z.record(z.string(), z.string()).optional(),
  /** YARN queue (spark-submit --queue, or the Livy batch's queue). */
  queue: z.string().min(1).optional(),
  experiments: z.string().min(1).optional(),
  /** Extra Spark configuration, passed as --conf. */
  sparkConf: z.record(z.string(), z.string()).default({}),
  /** Redis for the run's events (redis:// or rediss://); default: a private redis-server. */
  redis: z
    .string()
    .regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL')
    .optional(),
  /** CA certificate (PEM file) for a rediss:// server with a private CA. */
  redisCa: z.string().min(1).optional(),
  /** Progress and log lines; default: stderr. */
  onProgress: z.custom<(line: string) => void>((v) => typeof v === 'function').optional(),
  /** Every run event as it arrives (after the progress line it makes), e.g. for a notebook's table. */
  onEvent: z.custom<(e: RunEvent) => void>((v) => typeof v === 'function').optional(),
  /**
   * Ship the runtime and the entry to the executors as a Spark archive (default: unless the master
   * is local or on loopback, where the executors run this checkout's files in place).
   */
  ship: z.boolean().optional(),
  /**
   * Where the run's files for the cluster go (job spec, plugin zip, runtime archive): a directory
   * Livy and the nodes can read, e.g. a shared mount in livy.file.local-dir-whitelist. Default: $TMPDIR.
   */
  stage: z.string().min(1).optional(),
  /**
   * Refuse to run where Spark's RPC to the executors is not encrypted (a master other than local
   * without spark.network.crypto.enabled): the run's secret and Redis password ride in task closures.
   */
  requireEncryption: z.boolean().optional(),
  /** Ship this machine's Node binary in the archive too, for nodes without Node 20. */
  shipNode: z.boolean().default(false),
  /**
   * Which TensorFlow the workers train on: native (tfjs-node over the executors' TensorFlow), wasm,
   * cpu (pure-JS tfjs), or auto: native, else cpu with a line that says why (runtime/backend.ts).
   */
  tfBackend: z.enum(TF_BACKENDS).default('auto'),
  /** Aborting it ends the job (its Spark application or Livy batch with it). */
  signal: z.custom<AbortSignal>((v) => v instanceof AbortSignal).optional(),
};

export const allreduceOptionsSchema = z.object({
  ...jobFields,
  workers: z.number().int().positive().default(2),
  /** A parquet (or .csv/.json/.orc) path Spark can read; without it each worker gets one row. */
  data: z.string().min(1).optional(),
  /**
   * Rows with equal values of this column go to the same worker (Spark's df.repartition(W, col));
   * default: rows are dealt round-robin, so partitions are near-equal.
   */
  partitionBy: z.string().min(1).optional(),
  hparams: z.record(z.string(), z.unknown()).default({}),
  gpusPerWorker: z.number().nonnegative().default(0),
  maxAttempts: z.number().int().positive().default(1),
  /**
   * Elastic training: when a worker's host is lost and the cluster cannot give the old size back
   * within a short wait, the next barrier stage starts with the workers that are free, as long as
   * there are at least this many, resumed from the last checkpoint (spark-plugin/sparkring/driver/
   * lifecycle.py). Such a shrink does not count against maxAttempts. Default: off (the run needs
   * all its workers).
   */
  minWorkers: z.number().int().positive().optional(),
  /**
   * Elastic training: the most workers the ring grows to, at an epoch's end (ctx.resizePoint() in
   * a custom loop), when the application has slots for more than it runs with. Default: workers.
   * Needs minWorkers.
   */
  maxWorkers: z.number().int().positive().optional(),
  /** How long to wait for executors to offer the task slots before failing. */
  slotWaitSeconds: z.number().positive().default(30),
  /** The ring's peer, formation and collective timeouts (collective/options.ts, declared once). */
  ...ringTimeoutFields,
  /**
   * The interface name (eth1) or subnet (10.0.0.0/16) the ranks' ring listens on; default: each
   * executor's own address as Spark knows it (runtime/ring-address.ts).
   */
  ringInterface: z.string().min(1).optional(),
  /**
   * Seal the ring's frames with AES-256-GCM (collective/link-seal.ts); default: on where the
   * cluster's Spark RPC is encrypted (spark.network.crypto.enabled), else off.
   */
  ringEncrypt: z.boolean().optional(),
  /**
   * The gradients' format on the ring: fp32, or fp16 / bf16 in half the bytes with error feedback
   * (collective/half-precision.ts): ctx.fit's, compileStep's and the distributed optimizer's.
   */
  wirePrecision: z.enum(WIRE_PRECISIONS).default('fp32'),
  /** A worker silent this long on the run's stream counts as failed (its attempt is ended). */
  heartbeatTimeoutMs: z.number().int().positive().default(60_000),
  /** Give the executors back to the cluster when training ends (default on). */
  releaseExecutors: z.boolean().default(true),
});

export type AllreduceOptions = z.input<typeof allreduceOptionsSchema>;

/** Every option's default, from the schema: the CLI's flags show and use these. */
export const ALLREDUCE_DEFAULTS = allreduceOptionsSchema.parse({ entry: '-' });
export type ResolvedAllreduceOptions = z.output<typeof allreduceOptionsSchema> & {
  name: string;
  experiments: string;
  entry: string;
};

/** Options checked by `schema`, with its defaults; a bad one is the run's input error, naming the option. */
export function parseOptions<S extends z.ZodType>(schema: S, input: z.input<S>): z.output<S> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new RunError('input', `invalid option ${i?.path.join('.') || ''}: ${i?.message}`);
  }
  return parsed.data;
}

/**
 * Options checked by `schema`, with what every run derives: the entry's absolute path, the run name
 * (default: the entry's file name) and the experiments directory.
 */
export function resolveRunOptions<S extends z.ZodType<{ entry: string; name?: string; experiments?: string }>>(
  schema: S,
  input: z.input<S>,
): z.output<S> & { entry: string; name: string; experiments: string } {
  const o = parseOptions(schema, input);
  const entry = resolve(o.entry);
  // The default name is the entry's file name, made into a valid one.
  const fromEntry = basename(entry, extname(entry)).replace(/[^A-Za-z0-9._-]/g, '-');
  const name = o.name ?? (runNameProblem(fromEntry) ? 'run' : fromEntry);
  return {
    ...o,
    entry,
    name,
    experiments: resolve(o.experiments ?? DEFAULT_EXPERIMENTS()),
  };
}

export function resolveAllreduceOptions(input: AllreduceOptions): ResolvedAllreduceOptions {
  const o = resolveRunOptions(allreduceOptionsSchema, input);
  if (o.minWorkers !== undefined && o.minWorkers > o.workers) {
    throw new RunError(
      'input',
      `--min-workers ${o.minWorkers} is more than --workers ${o.workers}: a run goes on with at least --min-workers of its --workers; lower --min-workers to ${o.workers} or less`,
    );
  }
  if (o.maxWorkers !== undefined && o.maxWorkers < o.workers) {
    throw new RunError(
      'input',
      `--max-workers ${o.maxWorkers} is less than --workers ${o.workers}: the ring starts at --workers and grows up to --max-workers; raise --max-workers to ${o.workers} or more`,
    );
  }
  if (o.maxWorkers !== undefined && o.maxWorkers > o.workers && o.minWorkers === undefined) {
    throw new RunError(
      'input',
      `--max-workers ${o.maxWorkers} needs --min-workers: only an elastic run changes its size; add --min-workers ${o.workers} to start at --workers ${o.workers} and grow from there`,
    );
  }
  return {
    ...o,
    data: o.data && !/^[a-z][a-z0-9+.-]*:\/\//i.test(o.data) ? resolve(o.data) : o.data,
  };
}
