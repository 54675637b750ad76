/** What a search shows on stderr while it runs, and the early-stopping decisions it takes. */
import type { RunEvent } from '../../events/protocol.js';
import type { StoppingRule } from '../../hpo/stopping.js';

const METRICS_EVERY_MS = 2000;

const fmt = (v: unknown): string => (typeof v === 'number' && !Number.isInteger(v) ? v.toPrecision(4) : JSON.stringify(v));
const hparamsText = (h: Record<string, unknown> | undefined): string =>
  Object.entries(h ?? {})
    .map(([k, v]) => `${k}=${fmt(v)}`)
    .join(' ');

export class SearchProgress {
  private readonly shownAt = new Map<string, number>();
  private readonly stopped = new Set<string>();

  constructor(
    private readonly say: (line: string) => void,
    private readonly metric: string,
    private readonly maxAttempts: number,
  ) {}

  /** Shows `e`; returns the id of a trial the rule says to stop now, if any. */
  on(e: RunEvent, rule: StoppingRule | undefined): string | undefined {
    switch (e.type) {
      case 'trial':
        this.trial(e);
        return undefined;
      case 'metrics': {
        if (e.trial === undefined) return undefined;
        const now = Date.now();
        if (now - (this.shownAt.get(e.trial) ?? 0) >= METRICS_EVERY_MS) {
          this.shownAt.set(e.trial, now);
          const m = Object.entries(e.metrics)
            .map(([k, v]) => `${k}=${fmt(v)}`)
            .join(' ');
          this.say(`sparkring: trial ${e.trial} step ${e.step} ${m}`);
        }
        const value = e.metrics[this.metric];
        if (!rule || typeof value !== 'number' || this.stopped.has(e.trial)) return undefined;
        if (!rule.report(e.trial, e.step, value)) return undefined;
        this.stopped.add(e.trial);
        this.say(`sparkring: trial ${e.trial} stopped early at step ${e.step} (${this.metric}=${fmt(value)})`);
        return e.trial;
      }
      case 'log':
        if (e.trial !== undefined) this.say(`[trial ${e.trial}] ${e.line}`);
        return undefined;
      case 'driver':
        if (e.stage === 'round-failed') this.say(`sparkring: a round of search tasks failed: ${String(e.reason)}`);
        return undefined;
      default:
        return undefined;
    }
  }

  private trial(e: Extract<RunEvent, { type: 'trial' }>): void {
    const which = `trial ${e.id}`;
    switch (e.stage) {
      case 'started':
        this.say(
          `sparkring: ${which} started on ${e.executor}${(e.attempt ?? 0) > 0 ? ` (attempt ${(e.attempt ?? 0) + 1} of ${this.maxAttempts})` : ''}: ${hparamsText(e.hparams)}`,
        );
        break;
      case 'done':
        this.say(
          `sparkring: ${which} ${e.stoppedEarly ? 'ended early' : 'done'}: ${this.metric}=${e.metric === null || e.metric === undefined ? '-' : fmt(e.metric)} after ${e.steps} steps`,
        );
        break;
      case 'requeued':
        this.say(
          `sparkring: ${which} failed on ${e.executor} (attempt ${(e.attempt ?? 0) + 1} of ${this.maxAttempts}), back in the queue: ${e.error}`,
        );
        break;
      case 'failed':
        this.say(`sparkring: ${which} failed after ${(e.attempt ?? 0) + 1} attempts: ${e.error}`);
        break;
      case 'lost':
        this.say(`sparkring: ${which} lost its lease on ${e.executor}; it runs again elsewhere`);
        break;
      case 'excluded':
        this.say(`sparkring: ${e.executor} failed ${e.after} trials in a row and is excluded from this search`);
        break;
    }
  }
}
