/**
 * --wire-precision on a real ring (members over loopback in this process): gradients go on the
 * wire in fp16 or bf16, every rank ends with the same bits, each value exact in 16 bits and within
 * the format's rounding of the float32 result; error feedback keeps the sum over steps on track;
 * arrays not named as gradients stay float32 end to end.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { JS_HALF } from '../../src/collective/half-precision.js';
import type { Ring } from '../../src/collective/index.js';
import { ringInProcess } from '../helpers/ring.js';

let rings: Ring[] = [];
afterEach(async () => {
  await Promise.all(rings.map((r) => r.close()));
  rings = [];
});

const input = (rank: number, length: number): Float32Array =>
  new Float32Array(length).map((_, i) => Math.sin(i * 0.37 + rank) * 10 ** ((i % 5) - 3));

/** Whether every value of x is one the format holds exactly. */
function exactIn(format: 'fp16' | 'bf16', x: Float32Array): boolean {
  const wire = new Uint8Array(2 * x.length);
  JS_HALF.encodeHalf(wire, x, 0, format);
  const back = new Float32Array(x.length);
  JS_HALF.reduceHalf(back, 0, wire, 'set', 1, format, false);
  return Buffer.from(back.buffer).equals(Buffer.from(x.buffer));
}

describe.each([
  ['fp16', 2],
  ['fp16', 3],
  ['bf16', 4],
] as const)('gradients in %s on the wire, %i ranks', (format, n) => {
  const tolerance = format === 'fp16' ? 2 ** -10 : 2 ** -7;

  it.each(['sum', 'mean', 'max', 'min'] as const)(
    '%s: the same bits everywhere, within the rounding of the float32 result',
    async (op) => {
      rings = await ringInProcess(n, { wirePrecision: format, chunkBytes: 4096 });
      for (const length of [0, 1, 7, 30_011]) {
        const xs = rings.map((_, rank) => input(rank, length));
        const exact = new Float64Array(length).map((_, i) => {
          const v = xs.map((x) => x[i] as number);
          if (op === 'max') return Math.max(...v);
          if (op === 'min') return Math.min(...v);
          const sum = v.reduce((a, b) => a + b, 0);
          return op === 'mean' ? sum / n : sum;
        });
        const scale = Math.max(...xs.flatMap((x) => [...x].map(Math.abs)), 1e-30);
        const out = await Promise.all(rings.map((r, rank) => r.allreduceInPlace(xs[rank] as Float32Array, op, `g${length}`)));
        for (const o of out) expect(Buffer.from(o.buffer).equals(Buffer.from((out[0] as Float32Array).buffer))).toBe(true);
        const first = out[0] as Float32Array;
        expect(exactIn(format, first)).toBe(true);
        // Each rank's input rounded once, each partial sum once more, the result once more.
        first.forEach((v, i) => {
          expect(Math.abs(v - (exact[i] as number)), `${op} [${i}]`).toBeLessThanOrEqual((n + 2) * tolerance * scale);
        });
      }
    },
  );
});

describe('the wire precision', () => {
  it('leaves arrays not named as gradients in float32', async () => {
    rings = await ringInProcess(2, { wirePrecision: 'fp16' });
    const xs = [new Float32Array([1 / 3, 1e-9, 70_000]), new Float32Array([1 / 7, 2e-9, 1])];
    const [a, b] = xs as [Float32Array, Float32Array];
    const sum = a.map((v, i) => v + (b[i] as number));
    const out = await Promise.all(rings.map((r, rank) => r.allreduceInPlace(xs[rank] as Float32Array, 'sum')));
    expect([...(out[0] as Float32Array)]).toEqual([...sum]);
  });

  it('error feedback: over 100 steps of the same gradients the sum of the results tracks the float32 sum', async () => {
    rings = await ringInProcess(2, { wirePrecision: 'bf16' });
    const length = 1000;
    const grads = rings.map((_, rank) => new Float32Array(length).map((_, i) => 1 / 3 + 1e-3 * (i + rank)));
    const total = new Float64Array(length);
    for (let step = 0; step < 100; step++) {
      const out = await Promise.all(
        rings.map((r, rank) => r.allreduceInPlace((grads[rank] as Float32Array).slice(), 'sum', 'w')),
      );
      (out[0] as Float32Array).forEach((v, i) => {
        total[i] = (total[i] as number) + v;
      });
    }
    const [a, b] = grads as [Float32Array, Float32Array];
    const worst = Math.max(...[...total].map((v, i) => Math.abs(v - 100 * ((a[i] as number) + (b[i] as number))) / v));
    // bf16 keeps 8 bits: one step is off by up to 2^-9 of the value, and without feedback 100 steps
    // are too, each in the same direction; with it, what one step took off the next one adds.
    expect(worst).toBeLessThan(2 ** -14);
  });
});
