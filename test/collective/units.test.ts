import { describe, expect, it } from 'vitest';
import { DirectReader } from '../../src/collective/direct-reader.js';
import { CollectiveKind, encodeHeader, type Frame, FrameDecoder, FrameKind } from '../../src/collective/frames.js';
import { fusionBuckets } from '../../src/collective/fusion.js';
import { decodeFrameMessage, encodeFrameMessage } from '../../src/collective/link.js';
import { parseRingOptions } from '../../src/collective/options.js';
import { checkReduceOp, reduceInto, reduceLastInto, viewAs } from '../../src/collective/reduce.js';

const frame = (index: number, payload: Uint8Array): Buffer =>
  Buffer.concat([
    encodeHeader({ kind: FrameKind.Data, collective: CollectiveKind.Allreduce, seq: 7, index }, payload.length),
    payload,
  ]);

describe('reduce', () => {
  it('sums, maxes and mins in place, and means by dividing once, with the last contribution', () => {
    const a = new Float32Array([1, 5, -2, 0]);
    reduceInto(a, 1, new Float32Array([2, 3]), 'sum');
    expect(Array.from(a)).toEqual([1, 7, 1, 0]);
    reduceInto(a, 0, new Float32Array([0, 9, -5, 1]), 'max');
    expect(Array.from(a)).toEqual([1, 9, 1, 1]);
    reduceInto(a, 0, new Float32Array([0, 9, -5, 1]), 'min');
    expect(Array.from(a)).toEqual([0, 9, -5, 1]);
    reduceInto(a, 0, new Float32Array([1, 1, 1, 1]), 'mean'); // a middle contribution: summed
    expect(Array.from(a)).toEqual([1, 10, -4, 2]);
    reduceLastInto(a, 0, new Float32Array([2, 2, 2, 2]), 'mean', 3);
    expect(Array.from(a)).toEqual([1, 4, -2 / 3, 4 / 3].map(Math.fround));
    reduceLastInto(a, 0, new Float32Array([1, 1, 1, 1]), 'max', 3); // other ops: as reduceInto
    expect(Array.from(a)).toEqual([1, 4, 1, 4 / 3].map(Math.fround));
  });

  it('rounds a float32 mean as summing, storing and then dividing does', () => {
    const a = new Float32Array([0.1, 1e8, 3.3]);
    const b = new Float32Array([0.2, 1, 7.7]);
    const twoPass = Float32Array.from(a, (v, i) => Math.fround(v + (b[i] as number)) / 3);
    reduceLastInto(a, 0, b, 'mean', 3);
    expect(Array.from(a)).toEqual(Array.from(twoPass));
  });

  it('wraps int32 sums like C', () => {
    const a = new Int32Array([2 ** 31 - 1]);
    reduceInto(a, 0, new Int32Array([1]), 'sum');
    expect(a[0]).toBe(-(2 ** 31));
  });

  it('refuses unknown ops and integer means, naming them', () => {
    expect(() => checkReduceOp('avg', new Float32Array())).toThrow(/"avg" is not one of sum, mean, max, min/);
    expect(() => checkReduceOp('mean', new Int32Array())).toThrow(/Int32Array would truncate/);
  });

  it('views aligned bytes without copying and copies unaligned ones', () => {
    const buf = new Uint8Array(12);
    new Float32Array(buf.buffer).set([1, 2, 3]);
    const aligned = viewAs(Float32Array, buf.subarray(4));
    expect(aligned.buffer).toBe(buf.buffer);
    const odd = new Uint8Array(9);
    odd.set(buf.subarray(0, 8), 1);
    expect(Array.from(viewAs(Float32Array, odd.subarray(1)))).toEqual([1, 2]);
  });
});

describe('fusion buckets', () => {
  it('keeps order, splits on element type and threshold, isolates oversize tensors', () => {
    const xs = [new Float32Array(10), new Float32Array(10), new Int32Array(1), new Float32Array(100), new Float32Array(5)];
    expect(fusionBuckets(xs, 80)).toEqual([[0, 1], [2], [3], [4]]);
    expect(fusionBuckets(xs, 1 << 20)).toEqual([[0, 1], [2], [3, 4]]);
    expect(fusionBuckets([], 10)).toEqual([]);
  });
});

describe('frame decoding', () => {
  const payloads = [new Uint8Array(0), new Uint8Array(3).fill(7), new Uint8Array(70_000).map((_, i) => i % 251)];
  const stream = Buffer.concat(payloads.map((p, i) => frame(i, p)));

  const check = (got: Frame[]): void => {
    expect(got.map((f) => f.index)).toEqual([0, 1, 2]);
    for (const [i, f] of got.entries()) expect(Buffer.from(f.payload).equals(Buffer.from(payloads[i] as Uint8Array))).toBe(true);
    expect(got.every((f) => f.seq === 7 && f.kind === FrameKind.Data)).toBe(true);
  };

  it('FrameDecoder reassembles frames cut at any byte', () => {
    for (const cut of [1, 5, 16, 17, 4096, stream.length]) {
      const got: Frame[] = [];
      const d = new FrameDecoder((f) => got.push(f));
      for (let at = 0; at < stream.length; at += cut) d.push(stream.subarray(at, at + cut));
      check(got);
    }
  });

  it('DirectReader reads payloads into their own buffers, after a preamble', () => {
    for (const cut of [1, 7, 16, 1000, 65_536]) {
      const got: Frame[] = [];
      const r = new DirectReader(1);
      let preamble: Buffer | undefined;
      r.onPreamble = (b) => {
        preamble = b;
      };
      r.setSink((f) => got.push(f));
      const input = Buffer.concat([Buffer.of(1), stream]);
      let at = 0;
      while (at < input.length) {
        const into = r.nextBuffer();
        const n = Math.min(cut, into.length, input.length - at);
        input.copy(into, 0, at, at + n);
        at += n;
        r.onRead(n, into);
      }
      expect(preamble?.[0]).toBe(1);
      check(got);
    }
  });

  it('gRPC Link messages are valid protobuf Frame messages', () => {
    const payload = new Uint8Array(300).fill(9);
    const header = encodeHeader({ kind: FrameKind.Data, collective: CollectiveKind.Broadcast, seq: 1, index: 2 }, payload.length);
    const msg = encodeFrameMessage(header, payload);
    expect(msg[0]).toBe(0x0a);
    const f = decodeFrameMessage(msg);
    expect(f.index).toBe(2);
    expect(f.collective).toBe(CollectiveKind.Broadcast);
    expect(Buffer.from(f.payload).equals(Buffer.from(payload))).toBe(true);
  });
});

describe('ring options', () => {
  it('names the bad field', () => {
    expect(() => parseRingOptions({ jobId: 'j', rank: 3, worldSize: 2, secret: 's' })).toThrow(
      /rank: rank must be below worldSize/,
    );
    expect(() => parseRingOptions({ jobId: 'j', rank: 0, worldSize: 2, secret: 's', transport: 'udp' as 'tcp' })).toThrow(
      /transport/,
    );
  });
});
