/**
 * Gradients on the wire in 16 bits (--wire-precision): IEEE fp16 or bfloat16, rounded to nearest
 * with ties to even. A wire element is 2 bytes, read and written little-endian at any offset (a
 * frame's payload may be unaligned). The loops run in native/ring_reduce.cc when it was built
 * (fp16 through F16C where the CPU has it), else in the JavaScript below; both give the same bits.
 * Node 20 has neither Float16Array nor Math.f16round, so the conversions are written by hand.
 */
import { reduceAddon } from '../util/addons.js';
import type { ReduceOp } from './reduce.js';

export const WIRE_PRECISIONS = ['fp32', 'fp16', 'bf16'] as const;
export type WirePrecision = (typeof WIRE_PRECISIONS)[number];
/** The 16-bit formats, as the addon numbers them. */
export type HalfFormat = Exclude<WirePrecision, 'fp32'>;
const FORMAT = { fp16: 0, bf16: 1 } as const;
/** reduceHalf's ops, as the addon numbers them: 'set' takes the wire's value as it is. */
const OP = { sum: 0, max: 1, min: 2, meanLast: 3, set: 4 } as const;
export type HalfOp = ReduceOp | 'set';

const useNative = process.env.SPARKRING_NATIVE_REDUCE !== '0';
const native = (): ReturnType<typeof reduceAddon> => (useNative ? reduceAddon() : undefined);

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function fp16Of(f: number): number {
  f32[0] = f;
  const u = u32[0] as number;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rest > half || (rest === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
  return sign | h;
}

function bf16Of(f: number): number {
  f32[0] = f;
  const u = u32[0] as number;
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x40;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Every fp16 value as a float, by its bits: one lookup decodes (made on first use, 256 KiB). */
let fp16Table: Float32Array | undefined;
function fp16Values(): Float32Array {
  if (!fp16Table) {
    fp16Table = new Float32Array(65536);
    const bits = new Uint32Array(fp16Table.buffer);
    for (let h = 0; h < 65536; h++) {
      const sign = (h & 0x8000) << 16;
      const exp = (h >>> 10) & 0x1f;
      const mant = h & 0x3ff;
      if (exp === 0x1f) bits[h] = (sign | 0x7f800000 | (mant << 13)) >>> 0;
      else if (exp !== 0) bits[h] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
      else fp16Table[h] = (sign ? -mant : mant) / 16777216;
    }
  }
  return fp16Table;
}

function bf16Value(h: number): number {
  u32[0] = h << 16;
  return f32[0] as number;
}

const encoderOf = (format: HalfFormat): ((f: number) => number) => (format === 'fp16' ? fp16Of : bf16Of);
function decoderOf(format: HalfFormat): (h: number) => number {
  if (format === 'bf16') return bf16Value;
  const table = fp16Values();
  return (h) => table[h] as number;
}

/**
 * dst's 2-byte elements from src[at], src[at + 1], ...; `residual` (error feedback, indexed as src)
 * gains what rounding took off each.
 */
export function encodeHalf(dst: Uint8Array, src: Float32Array, at: number, format: HalfFormat, residual?: Float32Array): void {
  const addon = native();
  if (addon) addon.encodeHalf(dst, src, at, FORMAT[format], residual);
  else JS_HALF.encodeHalf(dst, src, at, format, residual);
}

/**
 * dst[at + i] = op(dst[at + i], src[i]) for every 2-byte element of src, in float32 (the mean's
 * 'meanLast' divides the sum by n). With `round`, the result is stored rounded to the format, and
 * `residual` (indexed as dst) gains what rounding took off: n times that for 'meanLast', as the
 * sum's share.
 */
type ReduceHalf = (
  dst: Float32Array,
  at: number,
  src: Uint8Array,
  op: HalfOp | 'meanLast',
  n: number,
  format: HalfFormat,
  round: boolean,
  residual?: Float32Array,
) => void;

export const reduceHalf: ReduceHalf = (dst, at, src, op, n, format, round, residual) => {
  const addon = native();
  if (addon) addon.reduceHalf(dst, at, src, OP[op === 'mean' ? 'sum' : op], n, FORMAT[format], round, residual);
  else JS_HALF.reduceHalf(dst, at, src, op, n, format, round, residual);
};

function encodeHalfJs(dst: Uint8Array, src: Float32Array, at: number, format: HalfFormat, residual?: Float32Array): void {
  const encode = encoderOf(format);
  const decode = decoderOf(format);
  const len = dst.byteLength >>> 1;
  for (let i = 0; i < len; i++) {
    const v = src[at + i] as number;
    const h = encode(v);
    dst[2 * i] = h & 0xff;
    dst[2 * i + 1] = h >>> 8;
    if (residual) residual[at + i] = (residual[at + i] as number) + Math.fround(v - decode(h));
  }
}

const reduceHalfJs: ReduceHalf = (dst, at, src, op, n, format, round, residual) => {
  const code = OP[op === 'mean' ? 'sum' : op];
  const scale = code === OP.meanLast ? n : 1;
  const decode = decoderOf(format);
  const encode = encoderOf(format);
  const len = src.byteLength >>> 1;
  for (let i = 0; i < len; i++) {
    const a = dst[at + i] as number;
    const b = decode((src[2 * i] as number) | ((src[2 * i + 1] as number) << 8));
    let v: number;
    if (code === OP.sum) v = Math.fround(a + b);
    else if (code === OP.max) v = b > a || Number.isNaN(b) ? b : a;
    else if (code === OP.min) v = b < a || Number.isNaN(b) ? b : a;
    else if (code === OP.meanLast) v = Math.fround(Math.fround(a + b) / n);
    else v = b;
    if (!round) {
      dst[at + i] = v;
      continue;
    }
    const q = decode(encode(v));
    if (residual) residual[at + i] = (residual[at + i] as number) + Math.fround(scale * Math.fround(v - q));
    dst[at + i] = q;
  }
};

/** The JavaScript kernels, also where the addon is loaded (tests hold the addon's bits to them). */
export const JS_HALF = { encodeHalf: encodeHalfJs, reduceHalf: reduceHalfJs };
