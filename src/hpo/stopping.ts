/**
 * Early stopping decisions for asynchronous search: asynchronous successive halving (ASHA) and the
 * median stopping rule. Pure bookkeeping: the search feeds reports in and asks whether to stop.
 */
export type Direction = 'min' | 'max';

export interface StoppingRule {
  /** Records `value` for `trial` at `step`; true when the trial should stop now. */
  report(trial: string, step: number, value: number): boolean;
}

const better =
  (direction: Direction) =>
  (a: number, b: number): boolean =>
    direction === 'min' ? a < b : a > b;

/**
 * ASHA (Li et al., 2018): rungs at minSteps * eta^k. A trial reaching a rung continues only while
 * it is in the top 1/eta of the values recorded at that rung so far; the first trials at a rung
 * continue until there are enough to compare (at least eta).
 */
export class Asha implements StoppingRule {
  private readonly rungs = new Map<number, Map<string, number>>();
  private readonly isBetter: (a: number, b: number) => boolean;

  constructor(private readonly o: { minSteps: number; eta: number; maxSteps: number; direction: Direction }) {
    if (!(o.eta >= 2)) throw new RangeError(`ASHA eta must be >= 2, got ${o.eta}`);
    if (!(o.minSteps >= 1) || !(o.maxSteps >= o.minSteps))
      throw new RangeError(`ASHA needs 1 <= minSteps <= maxSteps, got ${o.minSteps} and ${o.maxSteps}`);
    this.isBetter = better(o.direction);
  }

  /** Steps at which trials are compared. */
  milestones(): number[] {
    const out: number[] = [];
    for (let s = this.o.minSteps; s < this.o.maxSteps; s *= this.o.eta) out.push(s);
    return out;
  }

  report(trial: string, step: number, value: number): boolean {
    if (!this.milestones().includes(step)) return false;
    const rung = this.rungs.get(step) ?? new Map<string, number>();
    this.rungs.set(step, rung);
    rung.set(trial, value);
    if (rung.size < this.o.eta) return false;
    const keep = Math.max(1, Math.floor(rung.size / this.o.eta));
    const ahead = [...rung.values()].filter((v) => this.isBetter(v, value)).length;
    return ahead >= keep;
  }
}

/**
 * The median stopping rule (Golovin et al., 2017): stop a trial whose best value so far is worse
 * than the median of the other trials' best values at the same step, once `minTrials` trials have
 * reported that step and the trial has run `graceSteps`.
 */
export class MedianStopping implements StoppingRule {
  private readonly best = new Map<string, Map<number, number>>();
  private readonly isBetter: (a: number, b: number) => boolean;

  constructor(private readonly o: { minTrials: number; graceSteps: number; direction: Direction }) {
    this.isBetter = better(o.direction);
  }

  report(trial: string, step: number, value: number): boolean {
    const mine = this.best.get(trial) ?? new Map<number, number>();
    this.best.set(trial, mine);
    const prior = [...mine.entries()].filter(([s]) => s < step).map(([, v]) => v);
    const bestSoFar = [value, ...prior].reduce((a, b) => (this.isBetter(a, b) ? a : b));
    mine.set(step, bestSoFar);
    if (step < this.o.graceSteps) return false;
    const others = [...this.best.entries()]
      .filter(([t]) => t !== trial)
      .map(([, m]) => m.get(step))
      .filter((v): v is number => v !== undefined);
    if (others.length < this.o.minTrials) return false;
    const sorted = [...others].sort((a, b) => a - b);
    const mid = sorted.length / 2;
    const median =
      sorted.length % 2 ? (sorted[Math.floor(mid)] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
    return this.isBetter(median, bestSoFar);
  }
}
