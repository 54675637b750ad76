/**
 * Dynamic batching, as Triton's scheduler does it: requests for one model version that arrive
 * together are joined into one model call of up to `maxBatchSize` rows, and the answers are cut back
 * per request. A batch goes when it is full, or `maxQueueDelayMs` after its first request came; with a
 * delay of 0 it goes once the requests already read off the sockets are queued (setImmediate runs
 * after the event loop's I/O). A request larger than `maxBatchSize` runs alone. `maxBatchSize` 1
 * turns batching off: each request is its own call.
 */

export interface BatchingOptions {
  maxBatchSize: number;
  maxQueueDelayMs: number;
}

/** One model call: `rows` rows of the input, row-major, to the output's rows. */
export type ModelCall = (x: Float32Array, rows: number) => Float32Array;

export interface Batched {
  y: Float32Array;
  /** Time from queueing to the model call. */
  queueMs: number;
  /** Rows in the call that answered it. */
  batchRows: number;
}

interface Pending {
  x: Float32Array;
  rows: number;
  queuedAt: number;
  resolve: (b: Batched) => void;
  reject: (err: unknown) => void;
}

export class DynamicBatcher {
  private queue: Pending[] = [];
  private queuedRows = 0;
  private scheduled: { timer: NodeJS.Timeout } | { immediate: NodeJS.Immediate } | null = null;

  constructor(
    private readonly call: ModelCall,
    private readonly widths: { input: number; output: number },
    private readonly o: BatchingOptions,
    private readonly onBatch: (rows: number) => void = () => {},
  ) {}

  submit(x: Float32Array, rows: number): Promise<Batched> {
    return new Promise((resolve, reject) => {
      this.queue.push({ x, rows, queuedAt: performance.now(), resolve, reject });
      this.queuedRows += rows;
      if (this.queuedRows >= this.o.maxBatchSize) this.flushSoon(true);
      else this.flushSoon(false);
    });
  }

  /** Requests waiting for a model call. */
  get waiting(): number {
    return this.queue.length;
  }

  private flushSoon(now: boolean): void {
    if (this.scheduled && (!now || 'immediate' in this.scheduled)) return;
    if (this.scheduled && 'timer' in this.scheduled) clearTimeout(this.scheduled.timer);
    this.scheduled =
      now || this.o.maxQueueDelayMs <= 0
        ? { immediate: setImmediate(() => this.flush()) }
        : { timer: setTimeout(() => this.flush(), this.o.maxQueueDelayMs) };
  }

  private flush(): void {
    this.scheduled = null;
    if (this.queue.length === 0) return;
    const batch: Pending[] = [];
    let rows = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0] as Pending;
      if (batch.length > 0 && rows + next.rows > this.o.maxBatchSize) break;
      batch.push(next);
      rows += next.rows;
      this.queue.shift();
    }
    this.queuedRows -= rows;
    if (this.queue.length > 0) this.flushSoon(this.queuedRows >= this.o.maxBatchSize);
    const started = performance.now();
    let y: Float32Array;
    try {
      let x: Float32Array;
      if (batch.length === 1) x = (batch[0] as Pending).x;
      else {
        x = new Float32Array(rows * this.widths.input);
        let at = 0;
        for (const p of batch) {
          x.set(p.x, at);
          at += p.x.length;
        }
      }
      y = this.call(x, rows);
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    this.onBatch(rows);
    let from = 0;
    for (const p of batch) {
      const n = p.rows * this.widths.output;
      p.resolve({ y: batch.length === 1 ? y : y.slice(from, from + n), queueMs: started - p.queuedAt, batchRows: rows });
      from += n;
    }
  }
}
