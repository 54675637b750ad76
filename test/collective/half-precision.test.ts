/**
 * The 16-bit wire's conversions (--wire-precision): fp16 and bfloat16 round to nearest with ties
 * to even, as IEEE and TensorFlow's bfloat16 do; the addon (F16C where the CPU has it) gives the
 * same bits as the JavaScript kernels; error feedback carries what rounding took off.
 */
import { describe, expect, it } from 'vitest';
import { encodeHalf, JS_HALF, reduceHalf } from '../../src/collective/half-precision.js';
import { reduceAddon } from '../../src/util/addons.js';

const halves = (bytes: Uint8Array): number[] => [...new Uint16Array(bytes.slice().buffer)];

/** Floats across every exponent, subnormals, ties, signed zeros, infinities and NaN. */
function awkwardFloats(n: number): Float32Array {
  const bits = new Uint32Array(n);
  let s = 7;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    bits[i] = (s * 2 + (i & 1)) >>> 0;
  }
  const x = new Float32Array(bits.buffer);
  const special = [0, -0, 1, -1, 65504, 65520, 1e6, -1e-8, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 1 + 2 ** -11, 1 + 3 * 2 ** -11];
  special.forEach((v, i) => {
    x[i] = v;
  });
  x[special.length] = Number.POSITIVE_INFINITY;
  x[special.length + 1] = Number.NaN;
  return x;
}

describe('fp16 and bf16 on the wire', () => {
  it('round to nearest, ties to even, with fp16 overflow to infinity and its subnormals kept', () => {
    const x = new Float32Array([1, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 65520, 2 ** -24, 2 ** -25, 3 * 2 ** -25, -2]);
    const out = new Uint8Array(2 * x.length);
    JS_HALF.encodeHalf(out, x, 0, 'fp16');
    expect(halves(out)).toEqual([0x3c00, 0x3c00, 0x3c02, 0x7bff, 0x7c00, 0x0001, 0x0000, 0x0002, 0xc000]);
    const b = new Float32Array([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.4e38]);
    const bout = new Uint8Array(2 * b.length);
    JS_HALF.encodeHalf(bout, b, 0, 'bf16');
    expect(halves(bout)).toEqual([0x3f80, 0x3f80, 0x3f82, 0x7f80]);
  });

  it('the addon gives the JavaScript kernels’ bits: encode, every reduction, rounding, error feedback', () => {
    expect(reduceAddon()).toBeDefined();
    for (const format of ['fp16', 'bf16'] as const) {
      const x = awkwardFloats(20_011);
      const a = new Uint8Array(2 * 10_001 + 1).subarray(1); // an unaligned payload, as frames may be
      const b = new Uint8Array(2 * 10_001 + 1).subarray(1);
      const ra = new Float32Array(20_011).fill(1e-3);
      const rb = ra.slice();
      encodeHalf(a, x, 17, format, ra);
      JS_HALF.encodeHalf(b, x, 17, format, rb);
      expect(Buffer.from(a).equals(Buffer.from(b)), `encode ${format}`).toBe(true);
      expect(Buffer.from(ra.buffer).equals(Buffer.from(rb.buffer)), `encode's residual ${format}`).toBe(true);
      for (const op of ['sum', 'mean', 'max', 'min', 'meanLast', 'set'] as const) {
        for (const round of [false, true]) {
          const d1 = awkwardFloats(20_011).map((v) => v / 3);
          const d2 = d1.slice();
          const r1 = new Float32Array(20_011).fill(-2e-3);
          const r2 = r1.slice();
          reduceHalf(d1, 5, a, op, 3, format, round, r1);
          JS_HALF.reduceHalf(d2, 5, a, op, 3, format, round, r2);
          expect(Buffer.from(d1.buffer).equals(Buffer.from(d2.buffer)), `${format} ${op} round=${round}`).toBe(true);
          expect(Buffer.from(r1.buffer).equals(Buffer.from(r2.buffer)), `${format} ${op} round=${round} residual`).toBe(true);
        }
      }
    }
  });

  it('error feedback: the residual is exactly what rounding took off', () => {
    for (const format of ['fp16', 'bf16'] as const) {
      const x = new Float32Array(1000).map((_, i) => 1 / 3 + i * 1e-4);
      const wire = new Uint8Array(2 * x.length);
      const residual = new Float32Array(x.length);
      encodeHalf(wire, x, 0, format, residual);
      const back = new Float32Array(x.length);
      reduceHalf(back, 0, wire, 'set', 1, format, false);
      back.forEach((v, i) => {
        expect(v + (residual[i] as number), `${format} [${i}]`).toBe(x[i]);
      });
      // The mean's rounding counts n times: it is the sum's share of the error.
      const d = new Float32Array([0.1]);
      const r = new Float32Array(1);
      reduceHalf(d, 0, wire.subarray(0, 2), 'meanLast', 4, format, true, r);
      const mean = Math.fround(Math.fround(0.1 + (back[0] as number)) / 4);
      expect(r[0]).toBeCloseTo(4 * (mean - (d[0] as number)), 7);
    }
  });
});
