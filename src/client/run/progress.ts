/** Progress of a run on stderr: driver stages, per-worker step / metrics / samples/s, worker logs. */
import type { RunEvent } from '../../events/protocol.js';
import type { MetricRecord } from '../../experiments/layout.js';
import { printable } from '../../util/terminal.js';
import { type DriverError, driverError, type HeardError } from '../jobs/driver-error.js';

const isDriverError = (v: unknown): v is DriverError =>
  typeof v === 'object' && v !== null && typeof (v as DriverError).message === 'string';

const fmt = (v: number): string =>
  Math.abs(v) >= 1000 || Number.isInteger(v) ? String(Math.round(v * 100) / 100) : v.toPrecision(4);

export class Progress {
  private readonly lastShown = new Map<number, number>();
  readonly lastMetrics = new Map<number, { step: number; metrics: Record<string, number> }>();
  readonly ringFormedAt = new Map<number, number>();
  /** Each worker's TensorFlow backend, as it reported it (runtime/backend.ts). */
  readonly backends = new Map<number, string>();
  readonly errors: HeardError[] = [];
  /** Every metrics event, in arrival order, with the attempt it came from. */
  readonly records: Array<MetricRecord & { attempt: number }> = [];
  /** The run directory, once the driver said it. */
  runDir: string | undefined;
  private attempt = 0;

  /** A new attempt (the driver's `attempt` event): errors of the earlier ones no longer count. */
  private startAttempt(attempt: number): void {
    this.attempt = attempt;
    this.errors.length = 0;
  }

  /**
   * One record per worker and step: where a retried attempt reported a step again (it resumed
   * from a checkpoint taken before the failure), its record replaces the failed attempt's.
   */
  committedRecords(): MetricRecord[] {
    const latest = new Map<string, MetricRecord & { attempt: number }>();
    for (const r of this.records) {
      const key = `${r.rank}/${r.step}`;
      const seen = latest.get(key);
      if (!seen || r.attempt >= seen.attempt) latest.set(key, r);
    }
    const lastAttemptSteps = new Map<number, number>();
    for (const r of latest.values())
      if (r.attempt === this.attempt) lastAttemptSteps.set(r.rank, Math.min(lastAttemptSteps.get(r.rank) ?? Infinity, r.step));
    return [...latest.values()]
      .filter((r) => r.attempt === this.attempt || r.step < (lastAttemptSteps.get(r.rank) ?? Infinity))
      .sort((a, b) => a.rank - b.rank || a.step - b.step)
      .map(({ attempt: _attempt, ...r }) => r);
  }

  /** Every line goes out printable (util/terminal.ts): events carry text from workers and entries. */
  private readonly write: (line: string) => void;

  constructor(
    write: (line: string) => void,
    private readonly everyMs = 500,
  ) {
    this.write = (line) => write(printable(line));
  }

  on(e: RunEvent): void {
    switch (e.type) {
      case 'driver':
        if (e.stage === 'started') {
          this.runDir ??= typeof e.dir === 'string' ? e.dir : undefined;
          this.write(`sparkring: Spark application ${String(e.appId)} started`);
        } else if (e.stage === 'slots') this.write('sparkring: slots ready, starting the barrier stage');
        else if (e.stage === 'attempt' && typeof e.attempt === 'number') {
          this.startAttempt(e.attempt);
          if (e.attempt > 0 && e.resized === true)
            this.write(`sparkring: stage ${e.attempt + 1}, with ${String(e.workers)} workers, in the same Spark application`);
          else if (e.attempt > 0)
            this.write(`sparkring: attempt ${e.attempt + 1} of ${String(e.maxAttempts)}, in the same Spark application`);
        } else if (e.stage === 'retry' && typeof e.attempt === 'number' && isDriverError(e.error)) {
          const why = driverError(e.error, this.errors).message;
          this.write(`sparkring: attempt ${e.attempt + 1} failed: ${why}; retrying from the last checkpoint`);
        } else if (e.stage === 'resized' && typeof e.line === 'string') {
          if (e.grew !== true) {
            const why = isDriverError(e.error) ? `: ${driverError(e.error, this.errors).message}` : '';
            this.write(`sparkring: attempt ${Number(e.attempt) + 1} failed${why}`);
          }
          this.write(`sparkring: ${e.line}`);
        } else if (e.stage === 'released')
          this.write(
            typeof e.line === 'string'
              ? `sparkring: ${e.line}`
              : `sparkring: executors released${typeof e.releaseMs === 'number' ? ` in ${Math.round(e.releaseMs)} ms` : ''}`,
          );
        return;
      case 'ring':
        this.ringFormedAt.set(e.rank, e.formedAt);
        this.write(`[worker ${e.rank}] joined the ring`);
        return;
      case 'backend': {
        this.backends.set(e.rank, e.backend);
        const threads = e.threads ? `, ${e.threads} thread${e.threads === 1 ? '' : 's'}` : '';
        this.write(
          `[worker ${e.rank}] trains on ${e.backend}${threads}${e.fallback ? ` (no native TensorFlow: ${e.fallback})` : ''}`,
        );
        return;
      }
      case 'log':
        this.write(`[worker ${e.rank}] ${e.line}`);
        return;
      case 'metrics': {
        // JSON has no NaN: a NaN metric arrives as null, and is NaN again here.
        const metrics = Object.fromEntries(Object.entries(e.metrics).map(([k, v]) => [k, v ?? Number.NaN]));
        this.lastMetrics.set(e.rank, { step: e.step, metrics });
        this.records.push({ rank: e.rank, step: e.step, at: e.at ?? Date.now(), metrics, attempt: this.attempt });
        const now = Date.now();
        if (now - (this.lastShown.get(e.rank) ?? 0) < this.everyMs) return;
        this.lastShown.set(e.rank, now);
        const parts = Object.entries(metrics).map(([k, v]) => `${k} ${fmt(v)}`);
        if (typeof e.samplesPerSec === 'number') parts.push(`${Math.round(e.samplesPerSec)} samples/s`);
        this.write(`[worker ${e.rank}] step ${e.step}  ${parts.join('  ')}`);
        return;
      }
      case 'heartbeat':
      case 'done':
        return; // the driver watches heartbeats (spark-plugin/sparkring/driver/heartbeats.py)
      case 'error':
        this.errors.push({
          rank: e.rank,
          message: e.message,
          stack: e.stack ?? undefined,
          code: e.code ?? undefined,
          phase: e.phase ?? undefined,
        });
        return;
    }
  }
}
