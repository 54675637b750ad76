import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import { earlyStopFlag } from '../../src/cli/args.js';
import { bestTrial, type TrialResult } from '../../src/client/jobs/search.js';
import { resolveLaunchOptions, searchTrials, stoppingRule } from '../../src/client/jobs/search-options.js';
import { SearchSpaceError } from '../../src/hpo/space.js';
import { Asha, MedianStopping } from '../../src/hpo/stopping.js';
import { trialMetric } from '../../src/hpo/trial-metric.js';

const options = (o: Partial<Parameters<typeof resolveLaunchOptions>[0]>) => resolveLaunchOptions({ entry: 'train.ts', ...o });

describe('a search, before it runs', () => {
  it('numbers grid trials in order, with the fixed hyperparameters in each', () => {
    const trials = searchTrials(options({ grid: { lr: [0.1, 0.01], units: [8, 16] }, hparams: { epochs: 3 } }));
    expect(trials).toEqual([
      { id: '0', hparams: { epochs: 3, lr: 0.1, units: 8 } },
      { id: '1', hparams: { epochs: 3, lr: 0.1, units: 16 } },
      { id: '2', hparams: { epochs: 3, lr: 0.01, units: 8 } },
      { id: '3', hparams: { epochs: 3, lr: 0.01, units: 16 } },
    ]);
  });

  it('draws random trials by seed', () => {
    const o = options({ random: { lr: { kind: 'loguniform', low: 1e-4, high: 1e-1 } }, trials: 5, seed: 3 });
    expect(searchTrials(o)).toHaveLength(5);
    expect(searchTrials(o)).toEqual(searchTrials(o));
  });

  it.each([
    [{}, 'grid', /nothing to search/],
    [{ grid: { a: [1] }, random: { b: { kind: 'uniform', low: 0, high: 1 } } }, 'grid', /not both/],
    [{ grid: {} }, 'grid', /no keys/],
    [{ grid: { a: [] } }, 'a', /empty list/],
    [{ grid: { a: [1] }, trials: 3 }, 'trials', /--trials is for --random/],
    [{ random: { b: { kind: 'uniform', low: 2, high: 1 } }, trials: 2 }, 'b', /low < high/],
    [{ random: { b: { kind: 'normal', low: 0, high: 1 } }, trials: 2 }, 'b', /unknown distribution "normal"/],
  ])('refuses %j naming the key %s', (o, key, reason) => {
    try {
      searchTrials(options(o as Parameters<typeof options>[0]));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(SearchSpaceError);
      expect((err as SearchSpaceError).key).toBe(key);
      expect((err as Error).message).toMatch(reason);
    }
  });

  it('builds the early-stopping rule from the flags, with defaults', () => {
    expect(earlyStopFlag(true, undefined)).toEqual({ kind: 'asha', minSteps: undefined, eta: undefined, maxSteps: undefined });
    expect(earlyStopFlag('min=2,eta=2,max=16', undefined)).toEqual({ kind: 'asha', minSteps: 2, eta: 2, maxSteps: 16 });
    expect(earlyStopFlag(undefined, 'grace=3')).toEqual({ kind: 'median', graceSteps: 3, minTrials: undefined });
    expect(() => earlyStopFlag('speed=2', undefined)).toThrow(InvalidArgumentError);
    expect(() => earlyStopFlag(true, true)).toThrow(/not both/);
    const asha = stoppingRule(options({ grid: { a: [1] }, earlyStop: { kind: 'asha' } }));
    expect(asha).toBeInstanceOf(Asha);
    expect((asha as Asha).milestones()).toEqual([1, 3, 9, 27]);
    expect(stoppingRule(options({ grid: { a: [1] }, earlyStop: { kind: 'median' } }))).toBeInstanceOf(MedianStopping);
    expect(stoppingRule(options({ grid: { a: [1] } }))).toBeUndefined();
  });
});

describe('a search, after it ran', () => {
  it("takes a trial's metric from its return value, else from its last report", () => {
    expect(trialMetric(0.5, 'loss', 2)).toBe(0.5);
    expect(trialMetric({ loss: 0.25 }, 'loss', 2)).toBe(0.25);
    expect(trialMetric({ acc: 0.9 }, 'loss', 2)).toBe(2);
    expect(trialMetric(null, 'loss', undefined)).toBeNull();
  });

  it('picks the best done trial in the direction asked', () => {
    const t = (id: string, metric: number | null, status: TrialResult['status'] = 'done') =>
      ({ id, metric, status }) as TrialResult;
    const trials = [t('0', 0.5), t('1', 0.2), t('2', 0.1, 'failed'), t('3', null), t('4', 0.9)];
    expect(bestTrial(trials, 'min')?.id).toBe('1');
    expect(bestTrial(trials, 'max')?.id).toBe('4');
    expect(bestTrial([t('0', null)], 'min')).toBeNull();
  });
});
