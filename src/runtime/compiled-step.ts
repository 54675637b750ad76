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

interface TracingBinding {
  beginTrace(inputIds: number[]): void;
  endTrace(name: string | null, outputIds: number[]): Uint8Array;
  abortTrace(): void;
}

interface NodeBackendLike {
  binding: Partial<TracingBinding>;
  getInputTensorIds(tensors: Tensor[]): number[];
  executeMultipleOutputs(name: string, attrs: unknown[], inputs: Tensor[], numOutputs: number): Tensor[];
}

/** How steps of one signature run: being traced, compiled, or eager for good. */
export type StepMode = 'tracing' | 'compiled' | 'eager';

interface Signature {
  mode: StepMode;
  traces: Buffer[];
  fn?: string;
  outputs: number;
  reason?: string;
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
  summary(): { mode: 'tracing' | 'compiled' | 'eager' | 'mixed'; eagerBecause: string[] } {
    const all = [...this.signatures.values()];
    const count = (m: StepMode) => all.filter((s) => s.mode === m).length;
    const eagerBecause = [...new Set(all.flatMap((s) => (s.mode === 'eager' && s.reason ? [s.reason] : [])))];
    if (all.length === 0 || count('tracing') === all.length) return { mode: 'tracing', eagerBecause };
    const mode = count('compiled') === 0 ? 'eager' : count('eager') === 0 ? 'compiled' : 'mixed';
    return { mode, eagerBecause };
  }

  /** Why steps of this signature run eagerly, if they do. */
  reason(inputs: Tensor[], key = ''): string | undefined {
    return this.signatures.get(this.keyOf(inputs, key))?.reason;
  }

  /** The outputs, and whether they came from the function (new tensors) or from `body`. */
  run(inputs: Tensor[], key: string, body: () => Tensor[]): { outputs: Tensor[]; compiled: boolean } {
    const k = this.keyOf(inputs, key);
    let sig = this.signatures.get(k);
    if (!sig) {
      const reason =
        this.eagerBecause ??
        (canCompile(this.tf) ? undefined : 'the TensorFlow binding has no trace hooks (not native, or built without them)');
      sig = reason ? { mode: 'eager', traces: [], outputs: 0, reason } : { mode: 'tracing', traces: [], outputs: 0 };
      this.signatures.set(k, sig);
    }
    if (sig.mode === 'compiled') {
      const outputs = this.backend().executeMultipleOutputs(sig.fn as string, [], inputs, sig.outputs);
      return { outputs, compiled: true };
    }
    if (sig.mode === 'eager') return { outputs: body(), compiled: false };
    return { outputs: this.traced(sig, inputs, body), compiled: false };
  }

  private keyOf(inputs: Tensor[], key: string): string {
    return `${inputs.map((t) => `${t.dtype}[${t.shape.join(',')}]`).join(' ')}|${key}`;
  }

  private backend(): NodeBackendLike {
    return this.tf.backend() as unknown as NodeBackendLike;
  }

  private traced(sig: Signature, inputs: Tensor[], body: () => Tensor[]): Tensor[] {
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
      const graph = Buffer.from(binding.endTrace(name, backend.getInputTensorIds(outputs)));
      const previous = sig.traces.at(-1);
      sig.traces.push(graph);
      if (name && previous?.equals(graph)) {
        Object.assign(sig, { mode: 'compiled', fn: name, outputs: outputs.length, traces: [] });
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
  /** With an allreduce: the step in two functions, the allreduce between them. */
  private readonly split?: { gradients: CompiledGradients; update: CompiledApply; allreduce: GradientAllreduce };
  /** The function(s) whose modes summary() reports: the whole step's, or the gradients'. */
  private readonly steps: TracedSteps;

  constructor(
    private readonly tf: Tf,
    private readonly vars: tfTypes.Variable[],
    private readonly optimizer: tfTypes.Optimizer,
    options: { eager?: boolean; allreduce?: GradientAllreduce } = {},
  ) {
    const eager = { eager: options.eager };
    if (options.allreduce) {
      const gradients = new CompiledGradients(tf, vars, eager);
      this.split = { gradients, update: new CompiledApply(tf, optimizer, eager), allreduce: options.allreduce };
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
    await this.reduceAndApply(Object.fromEntries(this.vars.map((v) => [v.name, this.tf.zerosLike(v)])));
  }

  private async reduceAndApply(grads: tfTypes.NamedTensorMap): Promise<void> {
    const split = this.split as NonNullable<CompiledStep['split']>;
    const reduced = await split.allreduce(grads);
    split.update.apply(reduced);
    this.tf.dispose([grads, reduced]);
  }
}
