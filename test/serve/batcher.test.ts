/** Dynamic batching: concurrent requests share one model call, up to its size, and get their own rows back. */
import { describe, expect, it } from 'vitest';
import { DynamicBatcher } from '../../src/serve/batcher.js';

/** A "model" of 2 inputs -> 1 output: their sum; it records each call's rows. */
function summing() {
  const calls: number[] = [];
  const call = (x: Float32Array, rows: number): Float32Array => {
    calls.push(rows);
    return Float32Array.from({ length: rows }, (_, r) => (x[2 * r] as number) + (x[2 * r + 1] as number));
  };
  return { calls, call };
}

describe('DynamicBatcher', () => {
  it('joins requests that arrive together into one call and splits the answer back', async () => {
    const m = summing();
    const b = new DynamicBatcher(m.call, { input: 2, output: 1 }, { maxBatchSize: 64, maxQueueDelayMs: 0 });
    const answers = await Promise.all([
      b.submit(new Float32Array([1, 2]), 1),
      b.submit(new Float32Array([3, 4, 5, 6]), 2),
      b.submit(new Float32Array([7, 8]), 1),
    ]);
    expect(m.calls).toEqual([4]);
    expect(answers.map((a) => Array.from(a.y))).toEqual([[3], [7, 11], [15]]);
    expect(answers.every((a) => a.batchRows === 4)).toBe(true);
  });

  it('never passes the batch size, and runs a larger request alone', async () => {
    const m = summing();
    const b = new DynamicBatcher(m.call, { input: 2, output: 1 }, { maxBatchSize: 3, maxQueueDelayMs: 0 });
    const one = () => b.submit(new Float32Array([1, 1]), 1);
    await Promise.all([one(), one(), one(), one(), b.submit(new Float32Array(10), 5), one()]);
    expect(m.calls.every((rows) => rows <= 3 || rows === 5)).toBe(true);
    expect(m.calls.reduce((n, r) => n + r, 0)).toBe(10);
  });

  it('waits up to the queue delay for more requests', async () => {
    const m = summing();
    const b = new DynamicBatcher(m.call, { input: 2, output: 1 }, { maxBatchSize: 64, maxQueueDelayMs: 30 });
    const first = b.submit(new Float32Array([1, 1]), 1);
    await new Promise((r) => setTimeout(r, 5));
    const second = b.submit(new Float32Array([2, 2]), 1);
    await Promise.all([first, second]);
    expect(m.calls).toEqual([2]);
    expect((await first).queueMs).toBeGreaterThanOrEqual(20);
  });

  it('with batching off (size 1), gives each request its own call; a failed call fails only its requests', async () => {
    const m = summing();
    const b = new DynamicBatcher(m.call, { input: 2, output: 1 }, { maxBatchSize: 1, maxQueueDelayMs: 0 });
    await Promise.all([b.submit(new Float32Array([1, 1]), 1), b.submit(new Float32Array([1, 1]), 1)]);
    expect(m.calls).toEqual([1, 1]);
    const failing = new DynamicBatcher(
      () => {
        throw new Error('model call failed');
      },
      { input: 2, output: 1 },
      { maxBatchSize: 8, maxQueueDelayMs: 0 },
    );
    await expect(failing.submit(new Float32Array(2), 1)).rejects.toThrow('model call failed');
  });
});
