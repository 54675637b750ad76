/**
 * One inference, whichever transport brought it: the version chosen (routing.ts), the input checked
 * against the version's metadata, the model call through the version's batcher, the answer's
 * outputs, the metrics and the log entry; and, where the policy names a shadow version, the same
 * input mirrored to it after the answer, its outputs logged and never returned.
 */
import { randomUUID } from 'node:crypto';
import { asInferError } from './errors.js';
import type { InferenceLog } from './inference-log.js';
import type { ServeMetrics } from './metrics.js';
import type { LoadedVersion, ModelStore } from './model-store.js';
import { type InferRequest, modelInput, type OutputTensor, type RequestedOutput, selectOutputs } from './tensors.js';

export type Protocol = 'http' | 'grpc';

export interface InferAnswer {
  model_name: string;
  model_version: string;
  id?: string;
  outputs: OutputTensor[];
  wanted: RequestedOutput[];
}

export class InferenceService {
  /** Answers started and not yet sent (the drain on SIGTERM waits for them). */
  inFlight = 0;

  constructor(
    readonly store: ModelStore,
    readonly metrics: ServeMetrics,
    private readonly log: InferenceLog | null,
  ) {}

  async infer(
    name: string,
    version: string | undefined,
    read: () => InferRequest | Promise<InferRequest>,
    ctx: { protocol: Protocol; header: (name: string) => string | undefined },
  ): Promise<InferAnswer> {
    const started = performance.now();
    this.inFlight += 1;
    let held: ReturnType<ModelStore['acquire']> | null = null;
    try {
      const request = await read();
      held = this.store.acquire(name, version, ctx.header(this.store.stickyHeader(name)));
      const { target, route } = held;
      const { x, rows } = modelInput(target.io, request);
      const wanted = selectOutputs(target.io, request);
      const answer = await target.batcher.submit(x, rows);
      const outputs = this.outputs(target, answer.y, rows);
      const latencyMs = performance.now() - started;
      const v = String(target.version);
      this.metrics.requests.inc({ model: name, version: v, protocol: ctx.protocol });
      this.metrics.latency.observe({ model: name, version: v, protocol: ctx.protocol }, latencyMs / 1000);
      this.metrics.queue.observe({ model: name, version: v }, answer.queueMs / 1000);
      // The entry is for the log and the shadow only: none is made on a request that needs neither.
      const entry =
        this.log || held.shadow
          ? {
              id: request.id ?? randomUUID(),
              model: name,
              version: target.version,
              via: route.via,
              protocol: ctx.protocol,
              latencyMs,
              queueMs: answer.queueMs,
              at: Date.now(),
              rows,
              input: { shape: [rows, ...(target.io.inputs[0]?.shape.slice(1) ?? [])], data: x },
              outputs,
            }
          : null;
      if (entry) this.log?.record(entry);
      if (held.shadow && entry) this.mirror(held.shadow, entry, held.release);
      else held.release();
      held = null;
      return { model_name: name, model_version: v, ...(request.id ? { id: request.id } : {}), outputs, wanted };
    } catch (err) {
      held?.release();
      const e = asInferError(err);
      this.metrics.failures.inc({ model: name, protocol: ctx.protocol, kind: e.kind });
      throw e;
    } finally {
      this.inFlight -= 1;
    }
  }

  private outputs(target: LoadedVersion, y: Float32Array, rows: number): OutputTensor[] {
    const spec = target.io.outputs[0] as (typeof target.io.outputs)[number];
    return [{ name: spec.name, datatype: 'FP32', shape: [rows, ...target.outputShape], data: y }];
  }

  /** The shadow's call, after the answer went: its outputs go to the shadow log, its failure to the metrics. */
  private mirror(shadow: LoadedVersion, served: Parameters<InferenceLog['record']>[0], release: () => void): void {
    const started = performance.now();
    shadow.batcher
      .submit(served.input.data, served.rows)
      .then((answer) => {
        this.log?.record(
          {
            ...served,
            version: shadow.version,
            via: 'shadow',
            latencyMs: performance.now() - started,
            queueMs: answer.queueMs,
            outputs: this.outputs(shadow, answer.y, served.rows),
          },
          true,
        );
      })
      .catch((err) => {
        this.metrics.failures.inc({ model: served.model, protocol: served.protocol, kind: `shadow_${asInferError(err).kind}` });
      })
      .finally(release);
  }
}
