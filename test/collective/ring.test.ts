import { afterEach, describe, expect, it } from 'vitest';
import { Ring } from '../../src/collective/ring.js';
import { killRings, outcomes, ringOf } from '../helpers/ring.js';

afterEach(killRings);

interface Check {
  dtype: string;
  n: number;
  op: string;
  maxErr: number;
  wrongLength: boolean;
  untouched: boolean;
  type: string;
}

const TYPE_NAMES: Record<string, string> = { f32: 'Float32Array', f64: 'Float64Array', i32: 'Int32Array' };

function casesFor(n: number): Array<{ dtype: string; n: number; op: string }> {
  const sizes = [0, 1, n - 1, 7, 1001, 300_007];
  const cases: Array<{ dtype: string; n: number; op: string }> = [];
  for (const size of sizes) {
    cases.push({ dtype: 'f32', n: size, op: 'sum' }, { dtype: 'i32', n: size, op: 'sum' });
  }
  for (const op of ['mean', 'max', 'min']) cases.push({ dtype: 'f32', n: 1001, op }, { dtype: 'f64', n: 1001, op });
  cases.push({ dtype: 'i32', n: 999, op: 'max' }, { dtype: 'i32', n: 999, op: 'min' });
  cases.push({ dtype: 'f32', n: 10_000_000, op: 'sum' });
  return cases;
}

describe.each([1, 2, 3, 4])('allreduce with %i ranks as separate processes', (n) => {
  it('equals the directly computed reduction for every size, type and op', async () => {
    const cases = casesFor(n);
    const ring = await ringOf(n, () => ({ scenario: 'sums', cases, chunkBytes: 256 * 1024 }));
    const results = await outcomes(ring);
    for (const r of results) {
      expect(r?.error).toBeUndefined();
      // Ranks of one host send through shared memory; 40 MB arrays overflow its 16 MB, so pieces go
      // both ways: through the region and, while it is full, inline on the socket.
      expect(r?.dataPath).toBe(n === 1 ? 'none' : 'shared memory');
      const checks = r?.result as Check[];
      expect(checks).toHaveLength(cases.length);
      for (const c of checks) {
        const where = `${c.dtype} n=${c.n} ${c.op}`;
        expect(c.wrongLength, where).toBe(false);
        expect(c.untouched, where).toBe(true);
        expect(c.type, where).toBe(TYPE_NAMES[c.dtype]);
        if (c.dtype === 'i32') expect(c.maxErr, where).toBe(0);
        else expect(c.maxErr, where).toBeLessThan(c.dtype === 'f64' ? 1e-12 : 1e-5);
      }
    }
  });
});

describe('fusion', () => {
  const sizes = Array.from({ length: 60 }, (_, k) => [0, 1, 3, 17, 4096, 16_385, 100_003][k % 7] as number);

  it.each([2, 3])('allreduce of many tensors through fusion buffers equals reducing each alone (%i ranks)', async (n) => {
    const ring = await ringOf(n, () => ({ scenario: 'fusion', sizes, op: 'sum', threshold: 256 * 1024 }));
    for (const r of await outcomes(ring)) {
      const res = r?.result as {
        inPlaceSame: boolean;
        identical: boolean;
        identicalInts: boolean;
        sameShapes: boolean;
        maxErr: number;
        count: number;
      };
      expect(res.count).toBe(sizes.length);
      expect(res.sameShapes).toBe(true);
      expect(res.inPlaceSame).toBe(true);
      expect(res.identicalInts).toBe(true);
      // Bit-identical floats with 2 ranks (a + b is the same whichever segment holds it). With 3
      // or more, each segment's float sum starts at a different rank, so where an element lands
      // in the fusion buffer can change the last bits (as with Horovod's and NCCL's fusion).
      if (n === 2) expect(res.identical).toBe(true);
      expect(res.maxErr).toBeLessThan(1e-5);
    }
  });

  it('averages a tfjs NamedTensorMap across ranks, keeping names and shapes', async () => {
    const ring = await ringOf(3, () => ({ scenario: 'tensors' }));
    for (const r of await outcomes(ring)) {
      expect(r?.error).toBeUndefined();
      expect(r?.result).toEqual({ a: { shape: [2, 2], values: [2, 1, 2, 3] }, b: [1, 2] });
    }
  });
});

describe('tensors on native TensorFlow', () => {
  it('go from TensorFlow into the fusion buffer and back, results outliving the next allreduce', async () => {
    const ring = await ringOf(2, () => ({ scenario: 'nativeTensors' }));
    for (const r of await outcomes(ring)) {
      expect(r?.error).toBeUndefined();
      expect(r?.result).toEqual({
        direct: true,
        shapes: [[30, 100], [2]],
        firstRight: true,
        secondRight: true,
        // sum of [rank + 1, 10 rank], then the mean of [rank + 2, 10 rank], over ranks 0 and 1
        b: [
          [3, 10],
          [2.5, 5],
        ],
      });
    }
  });
});

describe('compiled steps on a ring of native TensorFlow workers', () => {
  it("overlap the conv layer's backward pass with the dense gradients' allreduce, to the weights of steps that do not", async () => {
    const ring = await ringOf(2, () => ({ scenario: 'overlappedSteps' }));
    const results = (await outcomes(ring)).map((r) => {
      expect(r?.error).toBeUndefined();
      return r?.result as { summaries: Array<{ mode: string; overlapped: boolean }>; weights: number[]; maxDiff: number };
    });
    for (const r of results) {
      expect(r.summaries).toEqual([
        { mode: 'compiled', eagerBecause: [], overlapped: true },
        { mode: 'compiled', eagerBecause: [], overlapped: false },
      ]);
      expect(r.maxDiff).toBeLessThan(1e-6);
    }
    // Every rank applied the same reduced gradients.
    expect(results[1]?.weights).toEqual(results[0]?.weights);
  });
});

describe('a ring of one (a search trial, a single worker)', () => {
  it('returns tensors equal to its input that outlive it, without copying them, and refuses what a ring would', async () => {
    const tf = await import('@tensorflow/tfjs');
    await tf.setBackend('cpu');
    const ring = Ring.solo('solo-test');
    const grads = { w: tf.tensor([1, 2, 3, 4], [2, 2]), b: tf.tensor([5], [1], 'int32') };
    const out = await ring.allreduce(grads, 'sum');
    tf.dispose([grads.w, grads.b]);
    expect(out.w.shape).toEqual([2, 2]);
    expect(Array.from(await out.w.data())).toEqual([1, 2, 3, 4]);
    expect(Array.from(await out.b.data())).toEqual([5]);
    expect(out.b.dtype).toBe('int32');
    tf.dispose([out.w, out.b]);
    const ints = { n: tf.tensor([1], [1], 'int32') };
    await expect(ring.allreduce(ints, 'mean')).rejects.toThrow(/"mean" on an Int32Array would truncate/);
    ints.n.dispose();
  });
});

describe('broadcast, allgather and barrier', () => {
  it.each(['tcp', 'grpc'])('deliver the root value and every rank value in rank order (%s)', async (transport) => {
    const ring = await ringOf(3, () => ({ scenario: 'collectives', transport, chunkBytes: 64 * 1024 }));
    for (const r of await outcomes(ring)) {
      expect(r?.result).toEqual({
        bcastOk: true,
        value: { hello: 'from 0', n: [1, 2] },
        gathered: [0, 1, 2].map((k) => ({ rank: k, host: `h${k}` })),
      });
    }
  });
});

describe('the gRPC data plane', () => {
  it('gives the same results as the TCP one', async () => {
    const cases = [
      { dtype: 'f32', n: 1_000_003, op: 'sum' },
      { dtype: 'i32', n: 2, op: 'sum' },
      { dtype: 'f64', n: 0, op: 'max' },
    ];
    const ring = await ringOf(3, () => ({ scenario: 'sums', cases, transport: 'grpc', chunkBytes: 128 * 1024 }));
    for (const r of await outcomes(ring)) {
      for (const c of (r?.result ?? []) as Check[]) {
        expect(c.wrongLength).toBe(false);
        expect(c.maxErr).toBeLessThan(1e-5);
      }
    }
  });
});

describe('the raw TCP data plane without shared memory (SPARKRING_SHARED_MEMORY=0)', () => {
  it('gives the same results, every payload on the socket', async () => {
    const cases = [
      { dtype: 'f32', n: 1_000_003, op: 'sum' },
      { dtype: 'i32', n: 2, op: 'sum' },
      { dtype: 'f64', n: 30_001, op: 'mean' },
    ];
    const ring = await ringOf(2, () => ({ scenario: 'sums', cases, sharedMemory: false, chunkBytes: 128 * 1024 }));
    for (const r of await outcomes(ring)) {
      expect(r?.dataPath).toBe('tcp');
      const checks = r?.result as Check[];
      expect(checks).toHaveLength(cases.length);
      for (const c of checks) {
        expect(c.wrongLength).toBe(false);
        expect(c.maxErr).toBeLessThan(1e-5);
      }
    }
  });
});
