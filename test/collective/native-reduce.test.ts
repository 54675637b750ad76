/** native/ring_reduce.cc gives the same bits as reduce.ts's JavaScript loops, for every type and op. */
import { describe, expect, it, vi } from 'vitest';
import type { NumericArray, ReduceOp } from '../../src/collective/reduce.js';
import { reduceAddon } from '../../src/util/addons.js';

type Reduce = typeof import('../../src/collective/reduce.js');

async function withoutAddon(): Promise<Reduce> {
  vi.stubEnv('SPARKRING_NATIVE_REDUCE', '0');
  vi.resetModules();
  try {
    return await import('../../src/collective/reduce.js');
  } finally {
    vi.unstubAllEnvs();
    vi.resetModules();
  }
}

const random = (ctor: Float32ArrayConstructor | Float64ArrayConstructor | Int32ArrayConstructor, n: number, seed: number) => {
  const x = new ctor(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    x[i] = ctor === Int32Array ? s - 2 ** 30 : (s / 2 ** 31 - 0.5) * 10 ** ((s % 7) - 3);
  }
  if (ctor !== Int32Array) {
    x[3] = Number.NaN;
    x[n - 2] = Number.NaN;
  }
  return x;
};

describe('the ring reduction addon', () => {
  it('is built by make setup', () => {
    expect(reduceAddon()).toBeDefined();
  });

  it.each([
    ['Float32Array', Float32Array],
    ['Float64Array', Float64Array],
    ['Int32Array', Int32Array],
  ] as const)('equals the JavaScript loops bit for bit on %s, every op, at an offset', async (_name, ctor) => {
    const js = await withoutAddon();
    const native = await import('../../src/collective/reduce.js');
    const ops: ReduceOp[] = ctor === Int32Array ? ['sum', 'max', 'min'] : ['sum', 'mean', 'max', 'min'];
    for (const op of ops) {
      for (const last of [false, true]) {
        const run = (m: Reduce): NumericArray => {
          const dst = random(ctor, 10_007, 1);
          const src = random(ctor, 5_001, 2);
          if (last) m.reduceLastInto(dst, 17, src, op, 3);
          else m.reduceInto(dst, 17, src, op);
          return dst;
        };
        const a = run(js);
        const b = run(native);
        expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer)), `${op}${last ? ' (last)' : ''}`).toBe(true);
      }
    }
  });

  it('wraps int32 sums like C, and refuses mismatched or out-of-range arrays', () => {
    const addon = reduceAddon();
    if (!addon) throw new Error('ring_reduce.node is not built');
    const a = new Int32Array([2 ** 31 - 1]);
    addon.reduce(a, 0, new Int32Array([1]), 0, 1);
    expect(a[0]).toBe(-(2 ** 31));
    expect(() => addon.reduce(new Float32Array(4), 0, new Float64Array(2), 0, 1)).toThrow(/one type/);
    expect(() => addon.reduce(new Float32Array(4), 3, new Float32Array(2), 0, 1)).toThrow(/within dst/);
  });
});
