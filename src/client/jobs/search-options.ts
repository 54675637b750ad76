/** Options of `launch(options)` / `sparkring launch`, and the trials they describe. */
import { z } from 'zod';
import {
  checkDistribution,
  type Distribution,
  expandGrid,
  type Hparams,
  SearchSpaceError,
  sampleRandom,
} from '../../hpo/space.js';
import { Asha, type Direction, MedianStopping, type StoppingRule } from '../../hpo/stopping.js';
import { jobFields, resolveRunOptions } from './options.js';

const earlyStopSchema = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('asha'),
    minSteps: z.number().int().positive().default(1),
    eta: z.number().min(2).default(3),
    maxSteps: z.number().int().positive().default(81),
  }),
  z.object({
    kind: z.literal('median'),
    graceSteps: z.number().int().nonnegative().default(1),
    minTrials: z.number().int().positive().default(3),
  }),
]);

export const launchOptionsSchema = z.object({
  ...jobFields,
  /** Grid search: every combination of each key's values. */
  grid: z.record(z.string(), z.array(z.unknown())).optional(),
  /** Random search: `trials` draws from each key's distribution. */
  random: z
    .record(
      z.string(),
      z.custom<Distribution>((v) => typeof v === 'object' && v !== null),
    )
    .optional(),
  trials: z.number().int().positive().optional(),
  seed: z.number().int().default(0),
  /** Hyperparameters every trial gets as they are. */
  hparams: z.record(z.string(), z.unknown()).default({}),
  /** The metric trials report (ctx.report) or return, which decides the best trial. */
  metric: z.string().min(1).default('loss'),
  direction: z.enum(['min', 'max']).default('min'),
  earlyStop: earlyStopSchema.optional(),
  /** Executors (one long-lived task each, one trial at a time each). */
  executors: z.number().int().positive().default(2),
  /** A trial that fails this many times is failed with its error. */
  maxTrialAttempts: z.number().int().positive().default(3),
  /** An executor that fails this many trials in a row, while others complete theirs, is excluded. */
  excludeAfter: z.number().int().positive().default(3),
  /** A trial whose executor stops renewing its lease this long goes back to the queue. */
  leaseMs: z.number().int().positive().default(10_000),
  gpusPerTrial: z.number().nonnegative().default(0),
  // A trial loads TensorFlow synchronously when it first touches ctx.tf; wasm initialises asynchronously.
  tfBackend: z.enum(['auto', 'native', 'cpu'], 'auto, native or cpu (wasm is for allreduce only)').default('auto'),
});

export type LaunchOptions = z.input<typeof launchOptionsSchema>;

/** Every option's default, from the schema: the CLI's flags show and use these. */
export const LAUNCH_DEFAULTS = launchOptionsSchema.parse({ entry: '-' });
export type ResolvedLaunchOptions = z.output<typeof launchOptionsSchema> & { name: string; experiments: string };

export function resolveLaunchOptions(input: LaunchOptions): ResolvedLaunchOptions {
  return resolveRunOptions(launchOptionsSchema, input);
}

/** The search's trials (ids "0", "1", ... in order); a malformed space throws SearchSpaceError. */
export function searchTrials(o: ResolvedLaunchOptions): Array<{ id: string; hparams: Hparams }> {
  if (o.grid && o.random) throw new SearchSpaceError('grid', 'give a grid or a random space, not both');
  let spaces: Hparams[];
  if (o.grid) {
    if (Object.keys(o.grid).length === 0) throw new SearchSpaceError('grid', 'no keys to search');
    if (o.trials !== undefined) throw new SearchSpaceError('trials', 'a grid runs every combination; --trials is for --random');
    spaces = expandGrid(o.grid);
  } else if (o.random) {
    if (Object.keys(o.random).length === 0) throw new SearchSpaceError('random', 'no keys to search');
    for (const [k, d] of Object.entries(o.random)) checkDistribution(k, d);
    if (o.trials === undefined) throw new SearchSpaceError('trials', 'random search needs a trial count (--trials N)');
    spaces = sampleRandom(o.random, o.trials, o.seed);
  } else {
    throw new SearchSpaceError('grid', 'nothing to search: give --grid key=v1,v2 or --random key=dist(...) with --trials N');
  }
  return spaces.map((h, i) => ({ id: String(i), hparams: { ...o.hparams, ...h } }));
}

export function stoppingRule(o: ResolvedLaunchOptions): StoppingRule | undefined {
  const direction: Direction = o.direction;
  if (o.earlyStop?.kind === 'asha') return new Asha({ ...o.earlyStop, direction });
  if (o.earlyStop?.kind === 'median') return new MedianStopping({ ...o.earlyStop, direction });
  return undefined;
}
