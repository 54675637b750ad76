/** The TrainContext a training module receives: see the README, "Training module". */
import { existsSync, mkdirSync } from 'node:fs';
import { format } from 'node:util';
import type { Ring } from '../collective/index.js';
import { EventWriter } from '../experiments/tensorboard.js';
import type { Checkpoints } from './checkpoint.js';
import { CompiledApply, CompiledGradients, CompiledStep, type GradientAllreduce } from './compiled-step.js';
import type { Resized } from './control.js';
import type { PartitionData } from './data.js';
import { type FitOptions, fit as fitModel, type History } from './fit/fit.js';
import { type SaveModelOptions, saveModel } from './fit/save-model.js';
import { resizePoint } from './resize-point.js';
import { type DistributedOptimizer, distributedOptimizer, syncWeights, type Tf, type Weighted } from './tfjs.js';

export interface TrainContext {
  readonly rank: number;
  readonly worldSize: number;
  /** 0 for the first try of a run, then 1, 2, ... after failures. */
  readonly attempt: number;
  /**
   * In an elastic run (--min-workers), the stage after a resize: the ring's size before (`from`),
   * now (`to`, as worldSize) and why (`lost host 10.0.0.12 (rank 3)`, `executors returned`); else null.
   */
  readonly resized: Resized | null;
  /** GPU addresses Spark assigned to this worker (also in CUDA_VISIBLE_DEVICES). */
  readonly gpus: readonly string[];
  readonly hparams: Readonly<Record<string, unknown>>;
  /** This worker's partition of the DataFrame. */
  readonly data: PartitionData;
  /** TensorBoard directory of this worker. */
  readonly logdir: string;
  /** The TensorFlow.js this worker runs (tfjs-node(-gpu) when installed). Use it, not your own copy. */
  readonly tf: Tf;
  readonly ring: Ring;
  allreduce: Ring['allreduce'];
  broadcast<T extends Float32Array | Float64Array | Int32Array>(x: T, root?: number): Promise<T>;
  barrier(): Promise<void>;
  allgather<T>(value: T): Promise<T[]>;
  /** Live metrics: progress on the client and TensorBoard scalars in logdir. */
  report(metrics: Record<string, number>, step?: number): void;
  readonly checkpoint: { save(state: unknown): Promise<void>; load<T = unknown>(): Promise<T | undefined> };
  log(...args: unknown[]): void;
  /**
   * For a custom loop in an elastic run (--min-workers): call it on every rank right after
   * ctx.checkpoint.save() (it is a collective). While the run is shrunk and the driver has slots
   * for more workers again, it ends this stage (SR_RESIZE, not a failure), and train() starts again
   * in a larger one, which resumes from that checkpoint; otherwise it returns at once. ctx.fit does
   * this at each epoch's end by itself.
   */
  resizePoint(): Promise<void>;
  distributedOptimizer(optimizer: import('@tensorflow/tfjs').Optimizer): DistributedOptimizer;
  syncWeights(target: Weighted): Promise<void>;
  /**
   * Trains a compiled LayersModel on the partitions, Keras's model.fit across the ring: equal steps
   * on every rank, gradients weighted by the rows each rank took, per-epoch checkpoints.
   */
  fit(model: import('@tensorflow/tfjs').LayersModel, options: FitOptions): Promise<History>;
  /**
   * Rank 0 writes the model to <run>/model/ (tfjs layers format, and signature.json naming its
   * feature columns); returns that folder's path on every rank.
   */
  saveModel(model: import('@tensorflow/tfjs').LayersModel, options?: SaveModelOptions): Promise<string>;
  /**
   * A custom loop's gradients as TensorFlow functions, as tf.function compiles a Keras step:
   * `.run(inputs, key, lossOf)` traces the first steps of each input shape, then runs the step as
   * one op (native TensorFlow only; other backends and `{ eager: true }` run it op by op).
   */
  compileGradients(vars: import('@tensorflow/tfjs').Variable[], options?: { eager?: boolean }): CompiledGradients;
  /** optimizer.applyGradients as a TensorFlow function, the same way: `.apply(grads)`. */
  compileApply(optimizer: import('@tensorflow/tfjs').Optimizer, options?: { eager?: boolean }): CompiledApply;
  /**
   * A whole custom-loop step: `await step.run([xs, ys], '', lossOf)` computes the gradients, averages
   * them across the ring (`allreduce` replaces that: `(grads) => ctx.allreduce(grads, 'sum')`) and
   * applies them. On one worker, gradients and update run as a single TensorFlow function. With
   * `overlap: true`, on more, the first layer's gradients are computed off the JS thread while the
   * ring moves the others (`vars` in layer order, as model.trainableWeights gives them): for rings
   * whose allreduce waits on a network rather than on the worker's own core.
   */
  compileStep(
    vars: import('@tensorflow/tfjs').Variable[],
    optimizer: import('@tensorflow/tfjs').Optimizer,
    options?: { eager?: boolean; allreduce?: GradientAllreduce; overlap?: boolean },
  ): CompiledStep;
  /** The search trial this process runs (sparkring launch); null in an allreduce run. */
  readonly trial: { readonly id: string } | null;
  /** True once the search's early-stopping rule stopped this trial: return what you have. */
  shouldStop(): boolean;
  /** Aborted when the trial is told to stop (pass it to anything that takes an AbortSignal). */
  readonly signal: AbortSignal;
}

/** Where reports and log lines go: the run's Redis stream (allreduce) or the trial's agent (search). */
export interface ReportSink {
  send(type: 'metrics' | 'log', fields: Record<string, unknown>): void;
}

/** The context, and what the runtime must close once train() returned. */
export function createContext(o: {
  rank: number;
  worldSize: number;
  attempt: number;
  gpus: string[];
  hparams: Record<string, unknown>;
  data: PartitionData;
  logdir: string;
  /** Where ctx.saveModel writes. */
  modelDir: string;
  /** TensorFlow.js, or a function that loads it on first use (a trial that never touches tf starts faster). */
  tf: Tf | (() => Tf);
  ring: Ring;
  events: ReportSink;
  checkpoints: Checkpoints;
  /** The metrics step of the checkpoint this attempt resumes from (0 for a fresh start). */
  resumedStep: number;
  /** The file by which the driver asks this stage to end at an epoch's end for a larger ring (--min-workers). */
  resizeRequest?: string;
  /** This stage follows an elastic resize (ctx.resized). */
  resized?: Resized | null;
  trial?: { id: string; group: string; stop: AbortSignal };
}): { ctx: TrainContext; board: EventWriter; close(): void } {
  const logdir = o.logdir;
  mkdirSync(logdir, { recursive: true });
  const board = new EventWriter(logdir);
  if (o.attempt > 0) board.sessionStart(o.resumedStep + 1);
  if (o.rank === 0) {
    board.hparams(o.hparams, o.trial?.group);
    // Each stage's size where it starts, so a resize (--min-workers) shows as a step in the curve,
    // and its cause as text at that step.
    board.scalars({ 'sparkring/workers': o.worldSize }, o.resumedStep);
    if (o.resized) {
      board.text('sparkring/resized', `workers ${o.resized.from} -> ${o.resized.to}: ${o.resized.why}`, o.resumedStep);
    }
  }
  const signal = o.trial?.stop ?? new AbortController().signal;
  let loadedTf: Tf | undefined = typeof o.tf === 'function' ? undefined : o.tf;
  const tf = (): Tf => {
    loadedTf ??= (o.tf as () => Tf)();
    return loadedTf;
  };
  let step = o.resumedStep;
  let samples = 0;
  let since = Date.now();
  o.data.onSamples = (n) => {
    samples += n;
  };
  const ring = o.ring;
  const resizeRequested = () => o.resizeRequest !== undefined && existsSync(o.resizeRequest);
  let lastFit: { features?: string[]; label: string } | undefined;
  let fitCalls = 0;
  const ctx: TrainContext = {
    rank: o.rank,
    worldSize: o.worldSize,
    attempt: o.attempt,
    resized: o.resized ?? null,
    gpus: o.gpus,
    hparams: o.hparams,
    data: o.data,
    logdir,
    get tf() {
      return tf();
    },
    ring,
    allreduce: ring.allreduce.bind(ring) as Ring['allreduce'],
    broadcast: (x, root = 0) => ring.broadcast(x, root),
    barrier: () => ring.barrier(),
    allgather: (v) => ring.allgather(v),
    report(metrics, at) {
      step = at ?? step + 1;
      ring.noteStep(step);
      const now = Date.now();
      const samplesPerSec = samples > 0 && now > since ? (samples * 1000) / (now - since) : undefined;
      samples = 0;
      since = now;
      board.scalars(samplesPerSec === undefined ? metrics : { ...metrics, samples_per_sec: samplesPerSec }, step);
      o.events.send('metrics', { rank: o.rank, step, metrics, samplesPerSec });
    },
    checkpoint: {
      save: (s) => o.checkpoints.save(s, step),
      load: async <T>() => (await o.checkpoints.load())?.state as T | undefined,
    },
    log(...args) {
      const line = format(...args);
      process.stdout.write(`${line}\n`);
      o.events.send('log', { rank: o.rank, line });
    },
    resizePoint: () => resizePoint(ring, resizeRequested, `step ${step}`),
    distributedOptimizer: (opt) => distributedOptimizer(tf(), ring, opt),
    syncWeights: (target) => syncWeights(tf(), ring, target),
    fit: (model, options) => {
      lastFit = options;
      const fitIndex = fitCalls++;
      return fitModel(
        {
          tf: tf(),
          ring,
          data: o.data,
          attempt: o.attempt,
          checkpoints: o.checkpoints,
          report: ctx.report,
          countRows: (n) => {
            samples += n;
          },
          step: () => step,
          fitIndex,
          log: (line) => ctx.log(line),
          resizeRequested,
          resized: o.resized ?? null,
        },
        model,
        options,
      );
    },
    saveModel: (model, options = {}) => {
      const label = options.label ?? lastFit?.label;
      const features = options.features ?? lastFit?.features ?? o.data.columns.filter((c) => c !== label);
      return saveModel(tf(), ring, model, o.modelDir, { ...options, label, features });
    },
    compileGradients: (vars, options) => new CompiledGradients(tf(), vars, options),
    compileApply: (optimizer, options) => new CompiledApply(tf(), optimizer, options),
    compileStep: (vars, optimizer, options = {}) =>
      new CompiledStep(tf(), vars, optimizer, {
        eager: options.eager,
        overlap: options.overlap,
        allreduce: o.worldSize > 1 ? (options.allreduce ?? ((grads) => ring.allreduceGradients(grads, 'mean'))) : undefined,
      }),
    trial: o.trial ? { id: o.trial.id } : null,
    shouldStop: () => signal.aborted,
    signal,
  };
  return { ctx, board, close: () => board.close() };
}
