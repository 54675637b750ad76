/**
 * The inference log: one entry per answered request on the Redis stream
 * `sparkring:inference:<model>` (a shadow version's answers on `...:<model>:shadow`), trimmed to
 * about --log-max-len entries (XADD MAXLEN ~). Each entry: the request id, model, version, how it was
 * routed, protocol, latency and queue time, the time, the rows, and the inputs and outputs, in full
 * or summarised (shape, min, max, mean) by --log-payload. `sparkring models log` exports a stream
 * to Parquet for drift analysis in Spark.
 */
import type { Redis } from 'ioredis';
import type { OutputTensor } from './tensors.js';

export const LOG_PAYLOADS = ['full', 'summary'] as const;
export type LogPayload = (typeof LOG_PAYLOADS)[number];

export const streamKey = (model: string, shadow = false): string => `sparkring:inference:${model}${shadow ? ':shadow' : ''}`;

export interface LogEntry {
  id: string;
  model: string;
  version: number;
  via: string;
  protocol: 'http' | 'grpc';
  latencyMs: number;
  queueMs: number;
  at: number;
  rows: number;
  input: { shape: number[]; data: Float32Array };
  outputs: OutputTensor[];
}

function summary(shape: number[], data: Float32Array): Record<string, unknown> {
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let sum = 0;
  for (const v of data) {
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
  }
  return data.length === 0 ? { shape } : { shape, min, max, mean: sum / data.length };
}

export class InferenceLog {
  private failedOnce = false;

  constructor(
    private readonly redis: Redis,
    private readonly o: { maxLen: number; payload: LogPayload; say: (line: string) => void },
  ) {}

  private payload(shape: number[], data: Float32Array): string {
    return JSON.stringify(this.o.payload === 'full' ? { shape, data: Array.from(data) } : summary(shape, data));
  }

  /** Queued on the connection, not awaited: the answer does not wait for the log. */
  record(e: LogEntry, shadow = false): void {
    const outputs = Object.fromEntries(e.outputs.map((o) => [o.name, JSON.parse(this.payload(o.shape, o.data))]));
    this.redis
      .xadd(
        streamKey(e.model, shadow),
        'MAXLEN',
        '~',
        String(this.o.maxLen),
        '*',
        'id',
        e.id,
        'model',
        e.model,
        'version',
        String(e.version),
        'via',
        e.via,
        'protocol',
        e.protocol,
        'latency_ms',
        e.latencyMs.toFixed(3),
        'queue_ms',
        e.queueMs.toFixed(3),
        'ts',
        String(e.at),
        'rows',
        String(e.rows),
        'inputs',
        this.payload(e.input.shape, e.input.data),
        'outputs',
        JSON.stringify(outputs),
      )
      .catch((err: Error) => {
        if (this.failedOnce) return;
        this.failedOnce = true;
        this.o.say(`sparkring serve: the inference log could not write to Redis (${err.message}); requests are still answered`);
      });
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
