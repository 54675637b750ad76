/**
 * Train: samples/s of real training steps (batch 128, SGD) in sparkring workers on Spark, per model,
 * worker count and TensorFlow backend, each step split into gradients, allreduce and apply; beside
 * the same models in Python Keras on the same TensorFlow in one process, eager (GradientTape, op by
 * op as tfjs runs) and compiled (tf.function, what model.fit gives), in the same run. Every worker
 * and the Keras process use one core (spark.task.cpus = 1: one TensorFlow thread each).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { allreduce } from '../src/client/jobs/train.js';
import { packageRoot, sparkPaths } from '../src/client/submission/paths.js';
import type { TfBackendChoice } from '../src/runtime/backend.js';
import { packageFile } from '../src/util/package-file.js';

export const TRAIN_MODELS = ['mlp', 'cnn'] as const;
export type TrainModel = (typeof TRAIN_MODELS)[number];
export const TRAIN_BACKENDS = ['native', 'wasm', 'cpu'] as const;
export type TrainBackend = (typeof TRAIN_BACKENDS)[number];

const BATCH = 128;
/** Warm-up and timed steps: pure-JS takes over a minute for one CNN step (reference E). */
const STEPS: Record<TrainBackend, { warmup: Record<TrainModel, number>; steps: Record<TrainModel, number> }> = {
  native: { warmup: { mlp: 5, cnn: 3 }, steps: { mlp: 100, cnn: 40 } },
  wasm: { warmup: { mlp: 2, cnn: 1 }, steps: { mlp: 10, cnn: 2 } },
  cpu: { warmup: { mlp: 1, cnn: 0 }, steps: { mlp: 3, cnn: 1 } },
};

/**
 * How a sparkring step runs: op by op as tfjs runs it, or as TensorFlow functions (compiled-step.ts),
 * on more workers either side of the allreduce ('compiled') or with the first layer's gradients
 * computed while the ring moves the others ('overlap').
 */
export type StepMode = 'eager' | 'compiled' | 'overlap';

export interface TrainRow {
  impl: 'sparkring' | 'independent' | 'keras-eager' | 'keras';
  model: TrainModel;
  mode?: StepMode;
  /** A compiled row whose steps ran eagerly after all: why. */
  eager_because?: string;
  workers: number;
  backend: string;
  threads: number;
  /** On more workers: how rank 0's gradients reached rank 1 ('shared memory' or 'tcp'; SPARKRING_SHARED_MEMORY=0 for tcp). */
  data_path?: string;
  samples_per_s: number | null;
  allreduce_share?: number;
  step_ms?: number;
  split_ms?: Record<string, number>;
  /** Rank 0's compute a step (p50, p90, max) and, on more workers, what waiting for the slower rank costs a step. */
  compute_ms?: Record<string, number>;
  /** With --rounds above 1: every round's samples/s, in run order (the row is the median one). */
  rounds_samples_per_s?: (number | null)[];
  error?: string;
}

interface EntryRow {
  model: TrainModel;
  mode?: StepMode;
  eager_because?: string;
  samples_per_s?: number;
  step_ms?: number;
  allreduce_share?: number;
  split_ms?: Record<string, number>;
  compute_ms?: Record<string, number>;
  error?: string;
}

const round = (v: number, digits = 0): number => Number(v.toFixed(digits));
const roundAll = (o: Record<string, number> | undefined): Record<string, number> =>
  Object.fromEntries(Object.entries(o ?? {}).map(([k, v]) => [k, round(v, 1)]));

export async function trainBench(
  o: { models: TrainModel[]; workers: number[]; backends: TrainBackend[]; rounds: number; cpuCnn?: boolean },
  progress: (l: string) => void,
) {
  const dir = await mkdtemp(join(tmpdir(), 'sparkring-train-'));
  const rows: TrainRow[] = [];
  const rounds: TrainRow[][] = [];
  try {
    const unmeasured = (model: TrainModel, workers: number, backend: string, error: string): TrainRow => ({
      impl: 'sparkring',
      model,
      mode: 'eager',
      workers,
      backend,
      threads: 1,
      samples_per_s: null,
      error,
    });
    const runConfig = async (workers: number, backend: TrainBackend): Promise<TrainRow[]> => {
      // A pure-JS CNN step takes minutes (reference E: more than 75 s; over 10 min seen here).
      const models = backend === 'cpu' && !o.cpuCnn ? o.models.filter((m) => m !== 'cnn') : o.models;
      const out: TrainRow[] = o.models
        .filter((m) => !models.includes(m))
        .map((m) => unmeasured(m, workers, backend, 'skipped: pure-JS takes minutes a CNN step (--cpu-cnn runs it)'));
      if (models.length === 0) return out;
      progress(`sparkring: ${models.join(', ')} on ${workers} worker(s), --tf-backend ${backend}`);
      let run: Awaited<ReturnType<typeof allreduce>>;
      try {
        run = await allreduce({
          entry: packageFile('bench/entries/train-models.mjs'),
          name: `train-${backend}-${workers}`,
          workers,
          experiments: join(dir, 'experiments'),
          tfBackend: backend as TfBackendChoice,
          // Only native TensorFlow compiles steps; the others run both modes op by op.
          hparams: {
            models,
            batch: BATCH,
            modes: backend !== 'native' ? ['eager'] : workers > 1 ? ['eager', 'compiled', 'overlap'] : ['eager', 'compiled'],
            ...STEPS[backend],
          },
          // A pure-JS CNN step blocks the worker's event loop, and so its heartbeats, for over a minute.
          heartbeatTimeoutMs: 900_000,
          onProgress: (l) => progress(`  ${l}`),
        });
      } catch (err) {
        return [...out, ...models.map((model) => unmeasured(model, workers, backend, (err as Error).message))];
      }
      const result = run.result as { rows: EntryRow[] };
      progress(`  ${JSON.stringify(result.rows)}`);
      for (const r of result.rows) {
        out.push({
          impl: 'sparkring',
          model: r.model,
          mode: r.mode ?? 'eager',
          ...(r.eager_because ? { eager_because: r.eager_because } : {}),
          workers,
          backend: run.backends[0] ?? backend,
          threads: run.ranks[0]?.tfThreads ?? 1,
          ...(workers > 1 ? { data_path: run.ranks[0]?.ringDataPath } : {}),
          samples_per_s: r.samples_per_s === undefined ? null : round(r.samples_per_s),
          ...(r.error
            ? { error: r.error }
            : {
                step_ms: round(r.step_ms as number, 1),
                allreduce_share: round(r.allreduce_share as number, 3),
                split_ms: roundAll(r.split_ms),
                compute_ms: roundAll(r.compute_ms),
              }),
        });
      }
      return out;
    };
    // Rounds repeat every native configuration, the machine's ceiling and Keras, one after the
    // other, so a slow spell of this shared VM lands on both sides of a ratio rather than on one
    // run: rows are each configuration's median round, goals the median of each round's ratio.
    for (let r = 0; r < (o.backends.includes('native') ? o.rounds : 0); r++) {
      if (o.rounds > 1) progress(`round ${r + 1} of ${o.rounds}`);
      const these: TrainRow[] = [];
      for (const workers of o.workers) these.push(...(await runConfig(workers, 'native')));
      for (const workers of o.workers.filter((w) => w > 1)) {
        progress(`independent: ${workers} Node processes training alone at once, no Spark, no ring (the machine's ceiling)`);
        these.push(...(await independentRows(o.models, workers)));
      }
      progress('keras: the same models in one Python process on the same TensorFlow (1 thread)');
      these.push(...(await kerasRows(o.models)));
      rounds.push(these);
    }
    const key = (row: TrainRow) => `${row.impl}/${row.model}/${row.workers}/${row.mode ?? ''}`;
    for (const k of [...new Set(rounds.flat().map(key))]) rows.push(medianRow(rounds.flat().filter((row) => key(row) === k)));
    // Pure-JS and wasm on one worker: the cost of not having native TensorFlow.
    for (const backend of o.backends.filter((b) => b !== 'native')) rows.push(...(await runConfig(1, backend)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const rowOf = (rows: TrainRow[], impl: string, model: string, workers = 1, mode: StepMode = 'compiled') =>
    rows.find(
      (r) =>
        r.impl === impl &&
        r.model === model &&
        r.workers === workers &&
        (impl !== 'sparkring' || r.mode === mode) &&
        (!impl.match(/^(sparkring|independent)$/) || r.backend.startsWith('tensorflow')),
    );
  const find = (rows: TrainRow[], impl: string, model: string, workers = 1, mode: StepMode = 'compiled') =>
    rowOf(rows, impl, model, workers, mode)?.samples_per_s ?? null;
  /**
   * The most two workers could reach over one if the allreduce cost nothing (hidden entirely behind
   * the backward pass): their compute a step, with its contention for the shared cores, plus the
   * wait for the slower rank that a synchronous step cannot avoid.
   */
  const allreduceHidden = (rows: TrainRow[], m: TrainModel): number | null => {
    const one = rowOf(rows, 'sparkring', m)?.step_ms;
    const two = rowOf(rows, 'sparkring', m, 2);
    const split = two?.split_ms;
    const slower = two?.compute_ms?.slower_rank;
    if (!one || split?.gradients === undefined || split.apply === undefined || slower === undefined) return null;
    return round((2 * one) / (split.gradients + split.apply + slower), 2);
  };
  const ratio = (a: number | null, b: number | null) => (a && b ? round(a / b, 2) : null);
  const goalsOf = (rows: TrainRow[], m: TrainModel) => {
    const at = (impl: string, workers = 1, mode: StepMode = 'compiled') => find(rows, impl, m, workers, mode);
    return {
      // Op by op against op by op; then compiled steps against tf.function (the moonshot).
      one_worker_vs_keras_eager: ratio(at('sparkring', 1, 'eager'), at('keras-eager')),
      one_worker_vs_keras: ratio(at('sparkring'), at('keras')),
      compiled_vs_eager: ratio(at('sparkring'), at('sparkring', 1, 'eager')),
      two_workers_vs_one: ratio(at('sparkring', 2), at('sparkring')),
      two_workers_vs_one_overlap: ratio(at('sparkring', 2, 'overlap'), at('sparkring')),
      two_workers_vs_one_eager: ratio(at('sparkring', 2, 'eager'), at('sparkring', 1, 'eager')),
      // What two processes that never talk reach on these cores: no data-parallel run can beat it.
      independent_two_vs_one: ratio(at('independent', 2), at('sparkring')),
      two_workers_vs_independent: ratio(at('sparkring', 2), at('independent', 2)),
      two_workers_vs_one_allreduce_hidden: allreduceHidden(rows, m),
    };
  };
  const median = (xs: Array<number | null>): number | null => {
    const v = xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
    return v.length ? (v[Math.floor((v.length - 1) / 2)] as number) : null;
  };
  const goals = Object.fromEntries(
    o.models.map((m) => {
      const each = rounds.map((r) => goalsOf(r, m));
      if (each.length === 0) return [m, goalsOf(rows, m)];
      const names = Object.keys(each[0] as object) as Array<keyof ReturnType<typeof goalsOf>>;
      return [m, Object.fromEntries(names.map((n) => [n, median(each.map((g) => g[n]))]))];
    }),
  );
  const goalsByRound = rounds.map((r) => Object.fromEntries(o.models.map((m) => [m, goalsOf(r, m)])));
  return { bench: 'train', batch: BATCH, rounds: o.rounds, rows, goals, goals_by_round: goalsByRound };
}

/** The same models in one Python process on the same TensorFlow, eager and compiled (bench/keras_train.py). */
async function kerasRows(models: TrainModel[]): Promise<TrainRow[]> {
  const keras = await execa(
    sparkPaths().python,
    [join(packageRoot(), 'bench', 'keras_train.py'), models.join(','), '5', '30', String(BATCH), '1'],
    { env: { TF_CPP_MIN_LOG_LEVEL: '2' } },
  );
  return (JSON.parse(keras.stdout.trim().split('\n').at(-1) as string) as TrainRow[]).map((r) => ({
    ...r,
    samples_per_s: round(r.samples_per_s as number),
    step_ms: round(r.step_ms as number, 1),
  }));
}

/** The run with the median samples/s, carrying every run's figure (a failed run counts as none). */
function medianRow(runs: TrainRow[]): TrainRow {
  const measured = runs
    .filter((r) => r.samples_per_s !== null)
    .sort((a, b) => (a.samples_per_s as number) - (b.samples_per_s as number));
  const median = measured[Math.floor((measured.length - 1) / 2)] ?? (runs[0] as TrainRow);
  return runs.length > 1 ? { ...median, rounds_samples_per_s: runs.map((r) => r.samples_per_s) } : median;
}

/**
 * `workers` copies of bench/solo-train.mjs at once, each one TensorFlow thread, with the steps of
 * the sparkring rows: the speedup this machine gives processes that share nothing but its cores
 * (caches, memory bandwidth, the hypervisor's neighbours).
 */
async function independentRows(models: TrainModel[], workers: number): Promise<TrainRow[]> {
  const env = { TF_NUM_INTRAOP_THREADS: '1', TF_NUM_INTEROP_THREADS: '1', TF_CPP_MIN_LOG_LEVEL: '2' };
  const { warmup, steps } = STEPS.native;
  const args = [
    packageFile('bench/solo-train.mjs'),
    models.join(','),
    '',
    JSON.stringify({ warmup, steps, modes: ['compiled'] }),
  ];
  const outs = await Promise.all(Array.from({ length: workers }, () => execa(process.execPath, args, { env })));
  const results = outs.map(
    (o) => JSON.parse(o.stdout.trim().split('\n').at(-1) as string) as { backend: string; rows: EntryRow[] },
  );
  return models.map((model) => {
    const each = results.map((r) => r.rows.find((row) => row.model === model)?.samples_per_s);
    return {
      impl: 'independent',
      model,
      workers,
      backend: results[0]?.backend ?? 'native',
      threads: 1,
      samples_per_s: each.every((v) => v !== undefined)
        ? round(each.reduce((a, b) => (a as number) + (b as number), 0) as number)
        : null,
      compute_ms: roundAll(results[0]?.rows.find((row) => row.model === model)?.compute_ms),
    };
  });
}
