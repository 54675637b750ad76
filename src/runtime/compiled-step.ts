/**
 * Compiled steps: the ops of a training step run as one TensorFlow function instead of one by one,
 * as tf.function does for Keras: Grappler and oneDNN's graph passes rewrite it, and tfjs's per-op
 * dispatch is gone.
 *
 * A function comes from tracing: tfjs runs the step eagerly while tfjs-node's binding mirrors
 * every op into a graph (native/tf_trace.cc). It is used only once two traces of the same input
 * shapes give the same graph, constants included: tfjs makes some tensors in JS (its scalars,
 * random values, a loss's weights), and the graph holds their values. A step whose graph changes
 * from one trace to the next (dropout's masks drawn in JS, a data-dependent branch) stays eager,
 * and `reason` says why. Tensors a step reads that are not its inputs are frozen into the function
 * as they were when it was traced.
 */
import type * as tfTypes from '@tensorflow/tfjs';
import type { Tf } from './backend.js';

type Tensor = tfTypes.Tensor;

interface TensorInfo {
  id: number;
  shape: number[];
  dtype: number;
}

interface TracingBinding {
  beginTrace(inputIds: number[]): void;
  endTrace(name: string | null, outputIds: number[]): Uint8Array;
  /** Also splits the function at `splitAt` for overlap (native/tf_overlap.cc). */
  endTrace(name: string | null, outputIds: number[], splitAt: number): { graph: Uint8Array; cuts: number | null };
  abortTrace(): void;
  runFunctionAsync(name: string, inputIds: number[], numOutputs: number): Promise<TensorInfo[]>;
}

interface NodeBackendLike {
  binding: Partial<TracingBinding>;
  getInputTensorIds(tensors: Tensor[]): number[];
  executeMultipleOutputs(name: string, attrs: unknown[], inputs: Tensor[], numOutputs: number): Tensor[];
  createOutputTensor(info: TensorInfo): Tensor;
}

/** How steps of one signature run: being traced, compiled, or eager for good. */
export type StepMode = 'tracing' | 'compiled' | 'eager';

interface Signature {
  mode: StepMode;
  traces: Buffer[];
  fn?: string;
  outputs: number;
  reason?: string;
  /** Compiled and split for overlap: where, and how many tensors pass from the first function to the second. */
  split?: { at: number; cuts: number };
}

/** A step's outputs; with `rest`, only those before the split, the others computed off the JS thread. */
export interface StepOutputs {
  outputs: Tensor[];
  compiled: boolean;
  rest?: Promise<Tensor[]>;
}

/** Traces before giving up: a step that makes state on its first run (Adam's moments) settles on the second. */
const MAX_TRACES = 3;
let functions = 0;

/** Whether this process's tfjs runs on a tfjs-node binding built with the trace hooks. */
export function canCompile(tf: Tf): boolean {
  if (tf.getBackend() !== 'tensorflow') return false;
  return typeof (tf.backend() as unknown as NodeBackendLike).binding?.beginTrace === 'function';
}

/**
 * Runs `body` (a function of `inputs` that returns its outputs) eagerly while tracing it, then as
 * one TensorFlow function per signature (the inputs' dtypes and shapes, and the caller's key).
 */
export class TracedSteps {
  private readonly signatures = new Map<string, Signature>();

  /** With `eagerBecause`, nothing is traced and reason() gives that. */
  constructor(
    private readonly tf: Tf,
    private readonly eagerBecause?: string,
  ) {}

  mode(inputs: Tensor[], key = ''): StepMode {
    return this.signatures.get(this.keyOf(inputs, key))?.mode ?? 'tracing';
  }

  /**
   * How the steps so far ran: 'tracing' until a signature is decided, then 'compiled' when none
   * stayed eager, 'eager' when none compiled, else 'mixed'; with the reasons the eager ones gave.
   */
  summary(): { mode: 'tracing' | 'compiled' | 'eager' | 'mixed'; eagerBecause: string[]; overlapped: boolean } {
    const all = [...this.signatures.values()];
    const count = (m: StepMode) => all.filter((s) => s.mode === m).length;
    const eagerBecause = [...new Set(all.flatMap((s) => (s.mode === 'eager' && s.reason ? [s.reason] : [])))];
    const overlapped = all.some((s) => s.split !== undefined);
    if (all.length === 0 || count('tracing') === all.length) return { mode: 'tracing', eagerBecause, overlapped };
    const mode = count('compiled') === 0 ? 'eager' : count('eager') === 0 ? 'compiled' : 'mixed';
    return { mode, eagerBecause, overlapped };
  }

  /** Why steps of this signature run eagerly, if they do. */
  reason(inputs: Tensor[], key = ''): string | undefined {
    return this.signatures.get(this.keyOf(inputs, key))?.reason;
  }

  /**
   * The outputs, and whether they came from the function (new tensors) or from `body`. With
   * `splitAt` (how many of body's outputs come first, asked once it has run), a compiled step runs
   * as two functions and the later outputs come in `rest`, computed on a libuv thread while the
   * caller works with the first ones (native/tf_overlap.cc).
   */
  run(inputs: Tensor[], key: string, body: () => Tensor[], splitAt?: () => number): StepOutputs {
    const k = this.keyOf(inputs, key);
    let sig = this.signatures.get(k);
    if (!sig) {
      const reason =
        this.eagerBecause ??
        (canCompile(this.tf) ? undefined : 'the TensorFlow binding has no trace hooks (not native, or built without them)');
      sig = reason ? { mode: 'eager', traces: [], outputs: 0, reason } : { mode: 'tracing', traces: [], outputs: 0 };
      this.signatures.set(k, sig);
    }
    if (sig.mode === 'compiled' && sig.split) return this.runSplit(sig, sig.split, inputs);
    if (sig.mode === 'compiled') {
      const outputs = this.backend().executeMultipleOutputs(sig.fn as string, [], inputs, sig.outputs);
      return { outputs, compiled: true };
    }
    if (sig.mode === 'eager') return { outputs: body(), compiled: false };
    const overlap = splitAt && typeof this.backend().binding.runFunctionAsync === 'function' ? splitAt : undefined;
    return { outputs: this.traced(sig, inputs, body, overlap), compiled: false };
  }

  private runSplit(sig: Signature, split: { at: number; cuts: number }, inputs: Tensor[]): StepOutputs {
    const backend = this.backend();
    const first = backend.executeMultipleOutputs(`${sig.fn}_a`, [], inputs, split.at + split.cuts);
    const cuts = first.splice(split.at);
    const ids = backend.getInputTensorIds([...inputs, ...cuts]);
    const rest = (backend.binding as TracingBinding)
      .runFunctionAsync(`${sig.fn}_b`, ids, sig.outputs - split.at)
      .then((infos) => infos.map((info) => backend.createOutputTensor(info)))
      .finally(() => this.tf.dispose(cuts));
    rest.catch(() => undefined); // a caller that failed before awaiting it has its own error to tell
    return { outputs: first, compiled: true, rest };
  }

  private keyOf(inputs: Tensor[], key: string): string {
    return `${inputs.map((t) => `${t.dtype}[${t.shape.join(',')}]`).join(' ')}|${key}`;
  }

  private backend(): NodeBackendLike {
    return this.tf.backend() as unknown as NodeBackendLike;
  }

  private traced(sig: Signature, inputs: Tensor[], body: () => Tensor[], splitAt?: () => number): Tensor[] {
    const backend = this.backend();
    const binding = backend.binding as TracingBinding;
    try {
      binding.beginTrace(backend.getInputTensorIds(inputs));
    } catch (err) {
      this.giveUp(sig, (err as Error).message);
      return body();
    }
    let outputs: Tensor[];
    try {
      outputs = body();
    } catch (err) {
      binding.abortTrace();
      throw err;
    }
    const name = sig.traces.length >= 1 ? `sparkring_step_${process.pid}_${++functions}` : null;
    try {
      const ids = backend.getInputTensorIds(outputs);
      const at = splitAt?.();
      let graph: Buffer;
      let cuts: number | null = null;
      if (at === undefined) {
        graph = Buffer.from(binding.endTrace(name, ids));
      } else {
        const ended = binding.endTrace(name, ids, at);
        graph = Buffer.from(ended.graph);
        cuts = ended.cuts;
      }
      const previous = sig.traces.at(-1);
      sig.traces.push(graph);
      if (name && previous?.equals(graph)) {
        const split = at !== undefined && cuts !== null ? { at, cuts } : undefined;
        Object.assign(sig, { mode: 'compiled', fn: name, outputs: outputs.length, traces: [], split });
      } else if (sig.traces.length >= MAX_TRACES) {
        this.giveUp(
          sig,
          'its graph changed from one step to the next (random values or state made in JS, or a data-dependent branch)',
        );
      }
    } catch (err) {
      this.giveUp(sig, (err as Error).message);
    }
    return outputs;
  }

  private giveUp(sig: Signature, reason: string): void {
    Object.assign(sig, { mode: 'eager', reason, traces: [] });
  }
}

/** What one step computes: its loss (differentiated) and tensors to hand back beside it (metrics). */
export interface StepLoss {
  loss: tfTypes.Scalar;
  extras?: Tensor[];
}

export interface StepGradients {
  loss: tfTypes.Scalar;
  grads: tfTypes.NamedTensorMap;
  extras: Tensor[];
}

/** `lossOf(inputs)` differentiated with respect to `vars`, and the extras it handed back (kept). */
function differentiate(tf: Tf, vars: tfTypes.Variable[], inputs: Tensor[], lossOf: (inputs: Tensor[]) => StepLoss) {
  let extras: Tensor[] = [];
  const { value, grads } = tf.variableGrads(() => {
    const out = lossOf(inputs);
    extras = (out.extras ?? []).map((t) => tf.keep(t));
    return out.loss;
  }, vars);
  return { value, grads, extras };
}

/**
 * The forward and backward pass: a step's loss differentiated with respect to `vars`, as
 * optimizer.computeGradients gives it. `eager` runs every step op by op (nothing is traced).
 */
export class CompiledGradients {
  readonly steps: TracedSteps;

  constructor(
    private readonly tf: Tf,
    private readonly vars: tfTypes.Variable[],
    options: { eager?: boolean } = {},
  ) {
    this.steps = new TracedSteps(tf, options.eager ? 'compile is off' : undefined);
  }

  /**
   * `lossOf(inputs)` is the step; `key` names what else its graph depends on (numbers it uses,
   * such as the rows of a short last batch). Steps of one signature must compute the same thing.
   */
  run(inputs: Tensor[], key: string, lossOf: (inputs: Tensor[]) => StepLoss): StepGradients {
    const tf = this.tf;
    const { outputs } = this.steps.run([...inputs, ...this.vars], key, () => {
      const { value, grads, extras } = differentiate(tf, this.vars, inputs, lossOf);
      return [value, ...this.vars.map((v) => grads[v.name] as Tensor), ...extras];
    });
    const grads: tfTypes.NamedTensorMap = {};
    this.vars.forEach((v, i) => {
      grads[v.name] = outputs[1 + i] as Tensor;
    });
    return { loss: outputs[0] as tfTypes.Scalar, grads, extras: outputs.slice(1 + this.vars.length) };
  }

  /**
   * As run, but the gradients of the `late` variables (those backpropagation reaches last: a
   * model's first layers) come in a promise: once compiled, a second function computes them off
   * the JS thread while the caller reduces the early ones. Traced or eager, all come at once.
   */
  runOverlapped(
    inputs: Tensor[],
    key: string,
    lossOf: (inputs: Tensor[]) => StepLoss,
    late: ReadonlySet<string>,
  ): OverlappedGradients {
    const tf = this.tf;
    const [early, lateVars] = splitVariables(this.vars, late);
    let extraCount = 0;
    const { outputs, rest } = this.steps.run(
      [...inputs, ...this.vars],
      `${key}|overlap`,
      () => {
        const { value, grads, extras } = differentiate(tf, this.vars, inputs, lossOf);
        extraCount = extras.length;
        return [value, ...extras, ...[...early, ...lateVars].map((v) => grads[v.name] as Tensor)];
      },
      () => 1 + extraCount + early.length,
    );
    const extras = outputs.length - 1 - early.length - (rest ? 0 : lateVars.length);
    const named = (vars: tfTypes.Variable[], tensors: Tensor[]): tfTypes.NamedTensorMap =>
      Object.fromEntries(vars.map((v, i) => [v.name, tensors[i] as Tensor]));
    const after = 1 + extras + early.length;
    return {
      loss: outputs[0] as tfTypes.Scalar,
      extras: outputs.slice(1, 1 + extras),
      early: named(early, outputs.slice(1 + extras, after)),
      late: (rest ?? Promise.resolve(outputs.slice(after))).then((tensors) => named(lateVars, tensors)),
    };
  }
}

export interface OverlappedGradients {
  loss: tfTypes.Scalar;
  extras: Tensor[];
  /** The gradients of the variables backpropagation reaches first, out now. */
  early: tfTypes.NamedTensorMap;
  /** The others, still being computed when the step runs compiled. */
  late: Promise<tfTypes.NamedTensorMap>;
}

interface OptimizerInternals {
  incrementIterations?(): void;
  getConfig(): unknown;
}

/**
 * optimizer.applyGradients as one function of the gradients and every variable (the model's and
 * the optimizer's own: Adam's moments, its beta powers); its outputs are assigned back. The
 * optimizer's config (its learning rate) is part of the signature, so a new rate traces anew.
 */
export class CompiledApply {
  private readonly steps: TracedSteps;
  /** How the last apply ran. */
  lastMode: StepMode = 'tracing';

  /** `eager` applies every update op by op (nothing is traced). */
  constructor(
    private readonly tf: Tf,
    private readonly optimizer: tfTypes.Optimizer,
    private readonly options: { eager?: boolean } = {},
  ) {
    this.steps = new TracedSteps(tf);
  }

  apply(grads: tfTypes.NamedTensorMap): void {
    if (this.options.eager) {
      this.optimizer.applyGradients(grads);
      this.lastMode = 'eager';
      return;
    }
    const names = Object.keys(grads).sort();
    const state = variableState(this.tf, this.optimizer);
    const key = `${names.join(',')}|${state.key}`;
    const inputs = [...names.map((n) => grads[n] as Tensor), ...state.vars];
    const { outputs, compiled } = this.steps.run(inputs, key, () => {
      this.optimizer.applyGradients(grads);
      return state.vars;
    });
    this.lastMode = compiled ? 'compiled' : this.steps.mode(inputs, key);
    if (compiled) state.update(outputs);
  }
}

/**
 * Every variable an update may change (the model's and the optimizer's own: Adam's moments, its beta
 * powers), in a fixed order, and a key naming them and the optimizer's config (a new learning rate
 * is a new function). `update` takes a compiled function's new values for them, in that order.
 */
function variableState(tf: Tf, optimizer: tfTypes.Optimizer) {
  const vars = Object.values(tf.engine().registeredVariables).sort((a, b) => (a.name < b.name ? -1 : 1));
  return {
    vars,
    key: `${vars.map((v) => v.name).join(',')}|${JSON.stringify(optimizer.getConfig())}`,
    update(values: Tensor[]): void {
      vars.forEach((v, i) => {
        v.assign(values[i] as Tensor);
      });
      tf.dispose(values);
      // Traced, applyGradients counted its step; a compiled step has to count it here.
      (optimizer as unknown as OptimizerInternals).incrementIterations?.();
    },
  };
}

/** Sums or averages gradients across the ring (ctx.allreduce, ring.allreduce). */
export type GradientAllreduce = (grads: tfTypes.NamedTensorMap) => Promise<tfTypes.NamedTensorMap>;

export interface StepResult {
  loss: tfTypes.Scalar;
  /** What `lossOf` handed back beside the loss, computed by the same step. */
  extras: Tensor[];
}

/**
 * A whole training step: the gradients of `lossOf`, reduced across the ring by `allreduce`, then the
 * optimizer's update. Without `allreduce` (a ring of one) there is nothing to wait for between the
 * two, so they run as one TensorFlow function, as a Keras step under tf.function does: the
 * gradients never leave it, and one op runs a step instead of two.
 */
export class CompiledStep {
  /**
   * With an allreduce: the step in two functions, the allreduce between them. With `overlap`, the
   * gradients of `late` variables are reduced on their own, after the others, whose reduction
   * overlaps their computation (CompiledGradients.runOverlapped). Off by default: on workers of one
   * core each, the ring's copies and sums need the same core as the backward pass, and overlapping
   * them was slower (bench train, CNN on 2 workers: 2,492 samples/s overlapped, 2,594 not).
   */
  private readonly split?: {
    gradients: CompiledGradients;
    update: CompiledApply;
    allreduce: GradientAllreduce;
    late: ReadonlySet<string>;
  };
  /** The function(s) whose modes summary() reports: the whole step's, or the gradients'. */
  private readonly steps: TracedSteps;

  constructor(
    private readonly tf: Tf,
    private readonly vars: tfTypes.Variable[],
    private readonly optimizer: tfTypes.Optimizer,
    options: { eager?: boolean; allreduce?: GradientAllreduce; overlap?: boolean } = {},
  ) {
    const eager = { eager: options.eager };
    if (options.allreduce) {
      const gradients = new CompiledGradients(tf, vars, eager);
      this.split = {
        gradients,
        update: new CompiledApply(tf, optimizer, eager),
        allreduce: options.allreduce,
        late: options.overlap ? lateVariables(vars) : new Set(),
      };
      this.steps = gradients.steps;
    } else {
      this.steps = new TracedSteps(tf, options.eager ? 'compile is off' : undefined);
    }
  }

  /** How the steps so far ran, as TracedSteps.summary gives it. */
  summary(): ReturnType<TracedSteps['summary']> {
    return this.steps.summary();
  }

  /** `key` and `lossOf` as CompiledGradients.run takes them. */
  async run(inputs: Tensor[], key: string, lossOf: (inputs: Tensor[]) => StepLoss): Promise<StepResult> {
    if (this.split && this.split.late.size > 0) {
      const { loss, extras, early, late } = this.split.gradients.runOverlapped(inputs, key, lossOf, this.split.late);
      await this.reduceAndApply(early, late);
      return { loss, extras };
    }
    if (this.split) {
      const { loss, grads, extras } = this.split.gradients.run(inputs, key, lossOf);
      await this.reduceAndApply(grads);
      return { loss, extras };
    }
    const tf = this.tf;
    const state = variableState(tf, this.optimizer);
    let extraCount = 0;
    const { outputs, compiled } = this.steps.run([...inputs, ...state.vars], `${key}|${state.key}`, () => {
      const { value, grads, extras } = differentiate(tf, this.vars, inputs, lossOf);
      this.optimizer.applyGradients(grads);
      tf.dispose(grads);
      extraCount = extras.length;
      return [value, ...extras, ...state.vars];
    });
    if (compiled) {
      extraCount = outputs.length - 1 - state.vars.length;
      state.update(outputs.slice(1 + extraCount));
    }
    return { loss: outputs[0] as tfTypes.Scalar, extras: outputs.slice(1, 1 + extraCount) };
  }

  /**
   * A rank with no rows in this step still takes its part in the allreduce, with zeros, and applies
   * what the others sent.
   */
  async runWithoutRows(): Promise<void> {
    if (!this.split) throw new Error('CompiledStep.runWithoutRows: a ring of one always has rows');
    const [early, late] = splitVariables(this.vars, this.split.late);
    const zeros = (vars: tfTypes.Variable[]) => Object.fromEntries(vars.map((v) => [v.name, this.tf.zerosLike(v)]));
    await this.reduceAndApply(zeros(early), late.length > 0 ? Promise.resolve(zeros(late)) : undefined);
  }

  /**
   * Reduces `grads`, then (every rank in the same order) `late` once it is computed, and applies
   * both: the ring moves the first while TensorFlow computes the second.
   */
  private async reduceAndApply(grads: tfTypes.NamedTensorMap, late?: Promise<tfTypes.NamedTensorMap>): Promise<void> {
    const split = this.split as NonNullable<CompiledStep['split']>;
    const reduced = await split.allreduce(grads);
    const lateGrads = late ? await late : {};
    const reducedLate = late ? await split.allreduce(lateGrads) : {};
    split.update.apply({ ...reduced, ...reducedLate });
    this.tf.dispose([grads, reduced, lateGrads, reducedLate]);
  }
}

/** `vars` whose gradients a step reduces first, and those in `late`, each in their order. */
function splitVariables(vars: tfTypes.Variable[], late: ReadonlySet<string>): [tfTypes.Variable[], tfTypes.Variable[]] {
  return [vars.filter((v) => !late.has(v.name)), vars.filter((v) => late.has(v.name))];
}

/**
 * The variables whose gradients a step reduces last: the first layer's (variables come in layer
 * order; a layer's share the name before the last '/'), which backpropagation reaches last. Its
 * backward pass runs while the ring reduces everything else. Only the first layer: split deeper,
 * the second function loses oneDNN's fusions across the layers it takes, more than the allreduce
 * it hides (CNN: 107 ms of compute a step in two functions against 83 in one; with the first
 * layer alone, 87). None when that layer holds over a tenth of the bytes: its own allreduce would
 * then come after the backward pass, unhidden (an MLP's first layer is most of its bytes).
 */
function lateVariables(vars: tfTypes.Variable[]): ReadonlySet<string> {
  const layerOf = (v: tfTypes.Variable) => (v.name.includes('/') ? v.name.slice(0, v.name.lastIndexOf('/')) : v.name);
  const first = vars[0];
  if (!first || vars.length < 2) return new Set();
  const late = vars.filter((v) => layerOf(v) === layerOf(first));
  const total = vars.reduce((sum, v) => sum + v.size, 0);
  const bytes = late.reduce((sum, v) => sum + v.size, 0);
  return late.length < vars.length && bytes * 10 <= total ? new Set(late.map((v) => v.name)) : new Set();
}
