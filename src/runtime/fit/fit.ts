/**
 * ctx.fit: data-parallel training of a compiled tfjs LayersModel in the Keras manner (its loss,
 * optimizer and metrics come from model.compile).
 *
 * Each step, every rank computes the gradient of the sum of its rows' losses divided by the rows
 * all ranks take in that step, and the ring sums those gradients: the step is exactly one step on
 * the union of the ranks' rows, however uneven the partitions (plan.ts makes the steps equal).
 * A rank without rows in a step sends zeros. Epoch metrics and validation are sums over rows,
 * summed across ranks, so they are the metrics of the whole data set. Rank 0's weights are
 * broadcast first; per-epoch checkpoints (state.ts) let a retried attempt resume, and with
 * checkpointEverySteps, checkpoints inside an epoch too.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as tfTypes from '@tensorflow/tfjs';
import type { Ring } from '../../collective/index.js';
import type { Tf } from '../backend.js';
import type { Checkpoints } from '../checkpoint.js';
import { CompiledStep } from '../compiled-step.js';
import type { Resized } from '../control.js';
import { DataColumnError, type PartitionData } from '../data.js';
import { syncWeights } from '../tfjs.js';
import { FitModelError, ResizeRequestedError } from './errors.js';
import { epochOrder, stepRange, stepsPerEpoch } from './plan.js';
import { type Dealt, type FitManifest, loadFitState, saveFitState } from './state.js';

type Logs = Record<string, number>;

/** A tfjs callback (tf.callbacks.earlyStopping(...), a tf.CustomCallback) or an object of hooks. */
export interface FitCallback {
  setModel?(model: tfTypes.LayersModel): void;
  setParams?(params: Record<string, unknown>): void;
  onTrainBegin?(logs?: Logs): unknown;
  onEpochBegin?(epoch: number, logs?: Logs): unknown;
  onBatchEnd?(batch: number, logs?: Logs): unknown;
  onEpochEnd?(epoch: number, logs?: Logs): unknown;
  onTrainEnd?(logs?: Logs): unknown;
}

export interface FitOptions {
  /** The most rows a worker takes in one step (the worker with the most rows takes this many). Default 32. */
  batchSize?: number;
  /** Default 1. */
  epochs?: number;
  /** Feature columns, in the order of the model's input (array columns count their width); default: every column but the label. */
  features?: string[];
  /** The label column (a number, or an array of numbers for one-hot or multi-output targets). */
  label: string;
  /** Shuffle each epoch's rows (seeded by `seed`, the epoch and the rank). Default true. */
  shuffle?: boolean;
  seed?: number;
  /** The rows to train on; default ctx.data. */
  data?: PartitionData;
  /** Rows to validate on after each epoch (e.g. ctx.data.where('is_test', 1)): val_ metrics. */
  validationData?: PartitionData;
  callbacks?: FitCallback | FitCallback[];
  /**
   * Run each step as TensorFlow functions, traced from the first steps as tf.function does (default
   * true; native TensorFlow only). A step that does not trace the same twice, e.g. a model with
   * dropout, runs eagerly on its own; false runs every step eagerly.
   */
  compile?: boolean;
  /** Checkpoint every epoch, so that a retried attempt resumes (default true). */
  checkpoint?: boolean;
  /**
   * Also checkpoint every N steps inside an epoch. A retry on the same ranks and rows goes on from
   * the last one; a stage whose rows were dealt again (an elastic resize) resumes from the start
   * of that epoch, so that each epoch takes every row once.
   */
  checkpointEverySteps?: number;
}

/** What fit returns, as tf.History holds it. */
export interface History {
  epoch: number[];
  history: Record<string, number[]>;
  params: {
    epochs: number;
    steps: number;
    rows: number;
    batchSize: number;
    resumedFromEpoch: number;
    /** The step of that epoch it went on from, where a checkpoint inside the epoch held (checkpointEverySteps). */
    resumedFromStep?: number;
    /** How the steps ran once decided (options.compile): as TensorFlow functions, op by op, or both. */
    stepMode?: 'compiled' | 'eager' | 'mixed';
    /** Why steps ran op by op, when some did. */
    eagerBecause?: string[];
  };
}

/** What fit needs of the worker's context. */
export interface FitRuntime {
  tf: Tf;
  ring: Ring;
  data: PartitionData;
  attempt: number;
  checkpoints: Checkpoints;
  report(metrics: Record<string, number>, step?: number): void;
  /** Counts rows taken, for samples/s. */
  countRows(n: number): void;
  /** The metrics step reports are at now. */
  step(): number;
  /** Which fit call of train() this is (0 for the first): a checkpoint resumes the same call. */
  fitIndex: number;
  /** A line for the run's log (ctx.log). */
  log?(line: string): void;
  /** Whether the driver asks this stage to end at the next epoch's end for a larger ring (--min-workers). */
  resizeRequested?(): boolean;
  /** This stage follows an elastic resize (ctx.resized). */
  resized?: Resized | null;
}

/** How often, at most, a long epoch reports its running loss. */
const BATCH_REPORT_MS = 2000;

interface Compiled {
  loss: (yTrue: tfTypes.Tensor, yPred: tfTypes.Tensor) => tfTypes.Tensor;
  metrics: Array<{ name: string; fn: (yTrue: tfTypes.Tensor, yPred: tfTypes.Tensor) => tfTypes.Tensor }>;
  regularization: () => tfTypes.Scalar[];
  inputShape: number[];
}

interface CompiledFields {
  optimizer?: unknown;
  lossFunctions?: Compiled['loss'][];
  metricsNames?: string[];
  metricsTensors?: Array<[Compiled['loss'], number]>;
  calculateLosses(): tfTypes.Scalar[];
  inputs: Array<{ shape: Array<number | null> }>;
  outputs: unknown[];
  /** A tf.Sequential compiles the LayersModel it wraps. */
  model?: CompiledFields;
}

/** The parts of a compiled model fit uses: tfjs-layers 4.x keeps them as public fields of LayersModel. */
function compiled(model: tfTypes.LayersModel): Compiled {
  const outer = model as unknown as CompiledFields;
  const m = outer.lossFunctions === undefined && outer.model ? outer.model : outer;
  if (!m.optimizer || !m.lossFunctions?.length) {
    throw new FitModelError('ctx.fit needs a compiled model: call model.compile({ optimizer, loss, metrics }) first');
  }
  if (m.inputs.length !== 1 || m.outputs.length !== 1) {
    throw new FitModelError(
      `ctx.fit trains models with one input and one output; this one has ${m.inputs.length} and ${m.outputs.length} (train it with ctx.distributedOptimizer)`,
    );
  }
  const names = (m.metricsNames ?? []).slice(1);
  return {
    loss: m.lossFunctions[0] as Compiled['loss'],
    metrics: (m.metricsTensors ?? []).map(([fn], i) => ({ name: names[i] ?? `metric_${i}`, fn })),
    regularization: () => m.calculateLosses(),
    inputShape: (m.inputs[0] as { shape: Array<number | null> }).shape.slice(1).map((d) => d ?? -1),
  };
}

/** The rows of `data` as the model's input and target: the features must fill the input's shape. */
function arraysFor(data: PartitionData, features: string[], label: string, c: Compiled) {
  const a = data.toArrays({ features, label });
  const width = c.inputShape.reduce((n, d) => n * d, 1);
  if (a.rows > 0 && width !== a.featureCount) {
    throw new DataColumnError(
      features.length > 3 ? `${features[0]}..${features.at(-1)}` : features.join(','),
      0,
      `the features give ${a.featureCount} values a row; the model's input [${c.inputShape.join(', ')}] takes ${width}`,
    );
  }
  const labelWidth = a.rows > 0 ? a.ys.length / a.rows : 1;
  return { ...a, labelWidth };
}

type Arrays = ReturnType<typeof arraysFor>;

/** The rows `order[from..to)` as tensors. */
function gather(tf: Tf, a: Arrays, c: Compiled, order: Int32Array, from: number, to: number) {
  const n = to - from;
  const xs = new Float32Array(n * a.featureCount);
  const ys = new Float32Array(n * a.labelWidth);
  for (let i = 0; i < n; i++) {
    const r = order[from + i] as number;
    xs.set(a.xs.subarray(r * a.featureCount, (r + 1) * a.featureCount), i * a.featureCount);
    ys.set(a.ys.subarray(r * a.labelWidth, (r + 1) * a.labelWidth), i * a.labelWidth);
  }
  return { x: tf.tensor(xs, [n, ...c.inputShape]), y: tf.tensor2d(ys, [n, a.labelWidth]) };
}

/** Sum over rows of a per-row (or per-row-and-output) loss or metric, averaged over its outputs. */
function rowSum(tf: Tf, values: tfTypes.Tensor, rows: number): tfTypes.Scalar {
  const perRow = values.size / rows;
  return tf.div(tf.sum(values), perRow) as tfTypes.Scalar;
}

/** Loss and metric sums over `data` in batches, summed across ranks: the val_ logs. */
async function evaluate(tf: Tf, ring: Ring, model: tfTypes.LayersModel, c: Compiled, a: Arrays, batchSize: number) {
  const sums = new Float64Array(2 + c.metrics.length);
  const order = epochOrder(a.rows, { shuffle: false, seed: 0, epoch: 0, rank: 0 });
  for (let from = 0; from < a.rows; from += batchSize) {
    const to = Math.min(a.rows, from + batchSize);
    const values = tf.tidy(() => {
      const { x, y } = gather(tf, a, c, order, from, to);
      const pred = model.apply(x, { training: false }) as tfTypes.Tensor;
      return [rowSum(tf, c.loss(y, pred), to - from), ...c.metrics.map((m) => rowSum(tf, m.fn(y, pred), to - from))];
    });
    const got = await Promise.all(values.map((v) => v.data()));
    got.forEach((v, i) => {
      sums[i] = (sums[i] as number) + (v[0] as number);
    });
    tf.dispose(values);
  }
  sums[sums.length - 1] = a.rows;
  await ring.allreduceInPlace(sums, 'sum');
  const rows = sums[sums.length - 1] as number;
  if (rows === 0) return {};
  const logs: Logs = { val_loss: (sums[0] as number) / rows };
  c.metrics.forEach((m, i) => {
    logs[`val_${m.name}`] = (sums[1 + i] as number) / rows;
  });
  return logs;
}

/** What an elastic resize (ctx.resized) does to this fit's steps: nothing in full batch, else the global batch. */
function resizedLine(r: Resized, batchSize: number, largestPartition: number): string {
  const how =
    batchSize >= largestPartition
      ? 'each step still takes every row (full batch)'
      : `a step takes up to ${r.to} x ${batchSize} rows now, ${r.from} x ${batchSize} before`;
  return `fit: the ring went ${r.from} -> ${r.to} ranks (${r.why}); ${how}`;
}

/**
 * A test hook: with SPARKRING_TEST_FIT_ROWS=column:dir in the worker's environment, each rank
 * writes the `column` values of the rows it took in an epoch's steps to
 * dir/a{attempt}-e{epoch}-r{rank}.json (test/multihost/elastic.test.ts checks that every completed
 * epoch took every row once, across resizes).
 */
function rowRecorder(data: PartitionData, attempt: number, rank: number, worldSize: number) {
  const hook = process.env.SPARKRING_TEST_FIT_ROWS;
  if (!hook) return undefined;
  const [column, dir] = [hook.slice(0, hook.indexOf(':')), hook.slice(hook.indexOf(':') + 1)];
  const ids = data.column(column).values;
  let taken: number[] = [];
  return {
    took(order: Int32Array, from: number, to: number): void {
      for (let i = from; i < to; i++) taken.push(ids[order[i] as number] as number);
    },
    epochEnded(epoch: number): void {
      writeFileSync(join(dir, `a${attempt}-e${epoch}-r${rank}.json`), JSON.stringify({ worldSize, ids: taken }));
      taken = [];
    },
  };
}

async function each(callbacks: FitCallback[], call: (cb: FitCallback) => unknown): Promise<void> {
  for (const cb of callbacks) await call(cb);
}

export async function fit(rt: FitRuntime, model: tfTypes.LayersModel, o: FitOptions): Promise<History> {
  const { tf, ring } = rt;
  const fitIndex = rt.fitIndex;
  const c = compiled(model);
  const batchSize = o.batchSize ?? 32;
  const epochs = o.epochs ?? 1;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`fit: batchSize must be a positive integer, not ${batchSize}`);
  if (!Number.isInteger(epochs) || epochs < 0) throw new RangeError(`fit: epochs must be a whole number, not ${epochs}`);
  const everySteps = o.checkpointEverySteps;
  if (everySteps !== undefined && !(Number.isInteger(everySteps) && everySteps > 0))
    throw new RangeError(`fit: checkpointEverySteps must be a positive integer (steps), not ${everySteps}`);
  if (typeof o.label !== 'string')
    throw new FitModelError('fit: options.label names the label column (fit({ label: "y", ... }))');
  const data = o.data ?? rt.data;
  const features = o.features ?? data.columns.filter((col) => col !== o.label);
  const train = arraysFor(data, features, o.label, c);
  const validation = o.validationData ? arraysFor(o.validationData, features, o.label, c) : undefined;
  const callbacks = o.callbacks === undefined ? [] : Array.isArray(o.callbacks) ? o.callbacks : [o.callbacks];
  const shuffle = o.shuffle ?? true;
  const seed = o.seed ?? 0;

  const rowsPerRank = await ring.allgather(train.rows);
  const steps = stepsPerEpoch(rowsPerRank, batchSize);
  const totalRows = rowsPerRank.reduce((a, b) => a + b, 0);
  if (totalRows === 0)
    throw new FitModelError('fit: no worker has a row to train on (is the data, or the where() selection, empty?)');
  if (rt.resized && ring.rank === 0) rt.log?.(resizedLine(rt.resized, batchSize, Math.max(...rowsPerRank)));
  const history: Record<string, number[]> = {};
  let start = 0;
  const checkpoint = o.checkpoint ?? true;
  const dealt: Dealt = { worldSize: ring.worldSize, rowsPerRank };
  const resumed = await loadFitState(tf, ring, rt.checkpoints, { fit: fitIndex, attempt: rt.attempt, dealt });
  // Where the first epoch run here starts, inside it (a checkpoint written within an epoch).
  let startStep = 0;
  let resumedSums: number[] | undefined;
  // The last checkpoint at an epoch's end (or at the start), which those within the next epoch keep.
  let epochStart: FitManifest | undefined;
  if (resumed) {
    model.setWeights(resumed.weights);
    if (resumed.optimizerWeights.length > 0) await model.optimizer.setWeights(resumed.optimizerWeights);
    resumed.restoreOptimizerFields(model.optimizer);
    tf.dispose(resumed.weights);
    // A run stopped early (a callback's decision) stays stopped.
    start = resumed.manifest.stopped ? epochs : resumed.manifest.epochs;
    Object.assign(history, resumed.manifest.history);
    const within = resumed.manifest.within;
    startStep = within?.steps ?? 0;
    resumedSums = within?.sums[ring.rank];
    epochStart = within ? within.epochStart : resumed.manifest;
    if (resumed.passedOver && ring.rank === 0) {
      const { epochs: e, steps: k } = resumed.passedOver;
      rt.log?.(
        `fit: resumed from the start of epoch ${e + 1}, not from its step ${k}: the rows were dealt again over ${ring.worldSize} ranks (a checkpoint inside an epoch holds only for the ranks that wrote it)`,
      );
    }
  } else {
    await syncWeights(tf, ring, model);
    if (everySteps !== undefined && checkpoint && ring.rank === 0) {
      // The weights at the start, for checkpoints inside the first epoch to fall back to.
      epochStart = await saveFitState(tf, rt.checkpoints, model, {
        fit: fitIndex,
        epochs: 0,
        stopped: false,
        history,
        reportedStep: rt.step(),
      });
    }
  }

  const vars = model.trainableWeights.map((w) => w.read() as tfTypes.Variable);
  // The step's gradients and its update, as TensorFlow functions unless the caller asked for eager steps.
  const eager = !(o.compile ?? true);
  const step = new CompiledStep(tf, vars, model.optimizer, {
    eager,
    allreduce: ring.worldSize > 1 ? (grads) => ring.allreduceGradients(grads, 'sum') : undefined,
  });
  const params: History['params'] = {
    epochs,
    steps,
    rows: totalRows,
    batchSize,
    resumedFromEpoch: start,
    ...(startStep > 0 ? { resumedFromStep: startStep } : {}),
  };
  for (const cb of callbacks) {
    cb.setModel?.(model);
    cb.setParams?.({ ...params, samples: totalRows, metrics: ['loss', ...c.metrics.map((m) => m.name)] });
  }
  model.stopTraining = false;
  await each(callbacks, (cb) => cb.onTrainBegin?.());
  const epochList = Array.from({ length: resumed?.manifest.epochs ?? 0 }, (_, i) => i);
  const recorder = rowRecorder(data, rt.attempt, ring.rank, ring.worldSize);
  /** The checkpoint after `done` steps of `epoch`: every rank's running sums go to rank 0, which writes it. */
  const saveWithinEpoch = async (done: number, sums: Float64Array, epoch: number): Promise<void> => {
    const all = new Float64Array(ring.worldSize * sums.length);
    all.set(sums, ring.rank * sums.length);
    await ring.allreduceInPlace(all, 'sum'); // zeros but each rank's own sums: they arrive exact
    if (ring.rank !== 0 || epochStart === undefined) return;
    const width = sums.length;
    const byRank = Array.from({ length: ring.worldSize }, (_, r) => Array.from(all.subarray(r * width, (r + 1) * width)));
    await saveFitState(tf, rt.checkpoints, model, {
      fit: fitIndex,
      epochs: epoch,
      stopped: false,
      history,
      reportedStep: rt.step(),
      within: { steps: done, dealt, sums: byRank, epochStart },
      attempt: rt.attempt,
    });
  };

  for (let epoch = start; epoch < epochs; epoch++) {
    await each(callbacks, (cb) => cb.onEpochBegin?.(epoch));
    const order = epochOrder(train.rows, { shuffle, seed, epoch, rank: ring.rank });
    // [loss, ...metrics] summed over this rank's rows
    const sums = new Float64Array(1 + c.metrics.length + 1);
    const first = epoch === start ? startStep : 0;
    if (first > 0 && resumedSums) sums.set(resumedSums);
    let lastReport = Date.now();
    let batchLoss = 0;
    let batchRows = 0;
    for (let k = first; k < steps; k++) {
      const [from, to] = stepRange(train.rows, steps, k);
      const n = to - from;
      const stepRows = rowsPerRank.reduce((sum, rows) => {
        const [a, b] = stepRange(rows, steps, k);
        return sum + b - a;
      }, 0);
      let kept: tfTypes.Tensor[] = [];
      recorder?.took(order, from, to);
      if (n > 0) {
        const { x, y } = gather(tf, train, c, order, from, to);
        // n and stepRows are constants of the step's graph: a short last step is a signature of its own.
        const computed = await step.run([x, y], `${n}/${stepRows}`, ([xs, ys]) => {
          const pred = model.apply(xs as tfTypes.Tensor, { training: true }) as tfTypes.Tensor;
          const lossSum = rowSum(tf, c.loss(ys as tfTypes.Tensor, pred), n);
          const extras = [lossSum, ...c.metrics.map((m) => rowSum(tf, m.fn(ys as tfTypes.Tensor, pred), n))];
          const regularization = c.regularization();
          const objective = tf.div(lossSum, stepRows) as tfTypes.Scalar;
          if (regularization.length === 0) return { loss: objective, extras };
          // Each rank adds its share of the penalty, so the ranks' sum holds it once.
          return { loss: tf.add(objective, tf.mul(tf.addN(regularization), n / stepRows)) as tfTypes.Scalar, extras };
        });
        kept = computed.extras;
        computed.loss.dispose();
        tf.dispose([x, y]);
      } else {
        await step.runWithoutRows();
      }
      const values = await Promise.all(kept.map((t) => t.data()));
      tf.dispose(kept);
      values.forEach((v, i) => {
        sums[i] = (sums[i] as number) + (v[0] as number);
      });
      sums[sums.length - 1] = (sums[sums.length - 1] as number) + n;
      rt.countRows(n);
      batchLoss += (values[0]?.[0] as number | undefined) ?? 0;
      batchRows += n;
      await each(callbacks, (cb) =>
        cb.onBatchEnd?.(k, { batch: k, size: n, loss: n > 0 ? ((values[0]?.[0] as number) ?? 0) / n : 0 }),
      );
      if (Date.now() - lastReport >= BATCH_REPORT_MS && k < steps - 1) {
        rt.report(batchRows > 0 ? { batch_loss: batchLoss / batchRows, epoch } : { epoch }, epoch * steps + k + 1);
        lastReport = Date.now();
        batchLoss = 0;
        batchRows = 0;
      }
      if (everySteps !== undefined && checkpoint && (k + 1) % everySteps === 0 && k + 1 < steps) {
        await saveWithinEpoch(k + 1, sums, epoch);
      }
    }
    await ring.allreduceInPlace(sums, 'sum');
    recorder?.epochEnded(epoch);
    const logs: Logs = { loss: (sums[0] as number) / totalRows };
    c.metrics.forEach((m, i) => {
      logs[m.name] = (sums[1 + i] as number) / totalRows;
    });
    if (validation) Object.assign(logs, await evaluate(tf, ring, model, c, validation, batchSize));
    epochList.push(epoch);
    for (const [name, value] of Object.entries(logs)) {
      history[name] = [...(history[name] ?? []), value];
    }
    rt.report({ ...logs, epoch }, (epoch + 1) * steps);
    const how = step.summary();
    if (params.stepMode === undefined && how.mode !== 'tracing') {
      Object.assign(params, { stepMode: how.mode, ...(how.eagerBecause.length ? { eagerBecause: how.eagerBecause } : {}) });
      if (ring.rank === 0) {
        rt.log?.(
          how.mode === 'compiled'
            ? 'fit: steps run as TensorFlow functions (traced in the first steps)'
            : `fit: ${how.mode === 'eager' ? 'steps run' : 'some steps run'} op by op: ${how.eagerBecause.join('; ')}`,
        );
        if (ring.halfPrecisionAllreduces > 0) {
          rt.log?.(`fit: gradients went on the ring in ${ring.wirePrecision}, with error feedback (--wire-precision)`);
        }
      }
    }
    await each(callbacks, (cb) => cb.onEpochEnd?.(epoch, { ...logs }));
    // A callback (early stopping) may stop training; any rank's stop stops every rank. Rank 0 also
    // passes on the driver's ask for a larger ring, which only a checkpointed run can honour.
    const grow = checkpoint && ring.rank === 0 && epoch + 1 < epochs && rt.resizeRequested?.() === true ? 1 : 0;
    const [stop, resize] = await ring.allreduce(new Int32Array([model.stopTraining ? 1 : 0, grow]), 'max');
    if (checkpoint && ring.rank === 0) {
      const at = { fit: fitIndex, epochs: epoch + 1, stopped: stop === 1, history, reportedStep: rt.step() };
      epochStart = await saveFitState(tf, rt.checkpoints, model, at);
    }
    if (stop) break;
    if (resize) {
      await ring.barrier(); // rank 0's checkpoint is written before any rank ends its task
      throw new ResizeRequestedError(`epoch ${epoch + 1}`);
    }
  }
  await each(callbacks, (cb) => cb.onTrainEnd?.());
  return { epoch: epochList, history, params };
}
