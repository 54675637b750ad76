import { describe, expect, it } from 'vitest';
import { expandGrid, parseGridFlag, parseRandomFlag, SearchSpaceError, sampleRandom } from '../../src/hpo/space.js';
import { Asha, MedianStopping } from '../../src/hpo/stopping.js';

describe('search spaces', () => {
  it('expands a grid into the Cartesian product, first key slowest, values parsed as JSON', () => {
    const [k1, v1] = parseGridFlag('lr=0.1,0.01');
    const [k2, v2] = parseGridFlag('opt=sgd,adam,"rmsprop"');
    expect(expandGrid({ [k1]: v1, [k2]: v2 })).toEqual([
      { lr: 0.1, opt: 'sgd' },
      { lr: 0.1, opt: 'adam' },
      { lr: 0.1, opt: 'rmsprop' },
      { lr: 0.01, opt: 'sgd' },
      { lr: 0.01, opt: 'adam' },
      { lr: 0.01, opt: 'rmsprop' },
    ]);
  });

  it('samples every distribution within its bounds, the same way for the same seed', () => {
    const space = Object.fromEntries(
      ['lr=loguniform(1e-4,1e-1)', 'dropout=uniform(0,0.5)', 'layers=int(1,4)', 'act=choice(relu,tanh)'].map(parseRandomFlag),
    );
    const a = sampleRandom(space, 200, 7);
    expect(sampleRandom(space, 200, 7)).toEqual(a);
    for (const h of a) {
      expect(h.lr as number).toBeGreaterThanOrEqual(1e-4);
      expect(h.lr as number).toBeLessThanOrEqual(1e-1);
      expect(h.dropout as number).toBeLessThan(0.5);
      expect([1, 2, 3, 4]).toContain(h.layers);
      expect(['relu', 'tanh']).toContain(h.act);
    }
    expect(new Set(a.map((h) => h.layers)).size).toBe(4);
  });

  it.each([
    ['lr=', /"lr": an empty list of values/, parseGridFlag],
    ['lr=normal(0,1)', /"lr": unknown distribution "normal"; use one of uniform, loguniform, int, choice/, parseRandomFlag],
    ['lr=uniform(1,0)', /"lr": uniform needs low < high, got low 1 and high 0/, parseRandomFlag],
    ['lr=loguniform(0,1)', /"lr": loguniform needs low > 0, got 0/, parseRandomFlag],
    ['n=int(1.5,4)', /"n": int bounds must be integers/, parseRandomFlag],
    ['n=uniform(1)', /"n": uniform takes two bounds/, parseRandomFlag],
    ['x=choice()', /"x": choice\(\) of nothing/, parseRandomFlag],
    ['lr 0.1', /--(grid|random) takes key=/, parseRandomFlag],
  ] as const)('refuses %s naming the key and the reason', (text, message, parse) => {
    expect(() => parse(text)).toThrow(SearchSpaceError);
    expect(() => parse(text)).toThrow(message);
  });
});

describe('early stopping', () => {
  it('ASHA keeps the top 1/eta at each rung and stops the rest', () => {
    const asha = new Asha({ minSteps: 1, eta: 3, maxSteps: 27, direction: 'max' });
    expect(asha.milestones()).toEqual([1, 3, 9]);
    expect(asha.report('a', 1, 0.5)).toBe(false);
    expect(asha.report('b', 1, 0.9)).toBe(false);
    expect(asha.report('c', 1, 0.1)).toBe(true); // third at the rung, not in the top third
    expect(asha.report('d', 1, 0.95)).toBe(false); // the best so far continues
    expect(asha.report('a', 2, 0.1)).toBe(false); // not a rung
  });

  it('the median rule stops a trial worse than the median of the others at the same step', () => {
    const m = new MedianStopping({ minTrials: 2, graceSteps: 2, direction: 'min' });
    for (const [t, v] of [
      ['a', 1.0],
      ['b', 0.8],
      ['c', 0.6],
    ] as const) {
      m.report(t, 1, v);
      expect(m.report(t, 2, v)).toBe(false);
    }
    expect(m.report('d', 1, 5)).toBe(false); // within the grace steps
    expect(m.report('d', 2, 2.0)).toBe(true); // median of the others is 0.8
    expect(m.report('e', 2, 0.7)).toBe(false);
  });
});
