/**
 * No hang in the ring: ranks that take different numbers of steps are named at the first mismatch,
 * and a rank that is alive (its heartbeats come) but never enters the collective the others wait in
 * ends the collective on every rank after the collective timeout, named with what it last did.
 */
import { describe, expect, it } from 'vitest';
import { CollectiveTimeoutError, type Ring, UnevenStepsError } from '../../src/collective/index.js';
import { ringInProcess } from '../helpers/ring.js';

const closeAll = (rings: Ring[]) => Promise.all(rings.map((r) => r.close()));

describe('uneven steps', () => {
  it('a rank that returns while the other waits in an allreduce: both get UnevenStepsError at once', async () => {
    const rings = (await ringInProcess(2)) as [Ring, Ring];
    const [a, b] = rings;
    await Promise.all([a.allreduce(new Float32Array(4)), b.allreduce(new Float32Array(4))]);
    const results = await Promise.allSettled([a.allreduce(new Float32Array(4)), b.finish()]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const err = (r as PromiseRejectedResult).reason as UnevenStepsError;
      expect(err).toBeInstanceOf(UnevenStepsError);
      expect(err.returnedRank).toBe(1);
      expect(err.message).toMatch(
        /^the ranks took different numbers of steps: rank 1 returned from train\(\) after 1 collectives while rank 0 is in Allreduce #2; every rank must run the same number of collectives/,
      );
    }
    await closeAll(rings);
  });

  it('three ranks, one of them one step short: every rank is told, none averages a different step', async () => {
    const rings = await ringInProcess(3);
    const steps = [3, 3, 2];
    const runs = rings.map(async (ring, rank) => {
      for (let s = 0; s < (steps[rank] as number); s++) await ring.allreduce(new Float32Array([rank]), 'sum');
      await ring.finish();
    });
    const results = await Promise.allSettled(runs);
    for (const r of results) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(UnevenStepsError);
    expect(results.map((r) => ((r as PromiseRejectedResult).reason as UnevenStepsError).returnedRank)).toEqual([2, 2, 2]);
    await closeAll(rings);
  });

  it('equal steps finish normally', async () => {
    const rings = await ringInProcess(3);
    await Promise.all(
      rings.map(async (ring) => {
        await ring.allreduce(new Float32Array([1]), 'sum');
        await ring.finish();
      }),
    );
    await closeAll(rings);
  });
});

describe('the collective timeout', () => {
  it('names the alive rank that never entered, with its last collective and step, on every rank', async () => {
    const rings = await ringInProcess(3, { collectiveTimeoutMs: 1500, peerTimeoutMs: 400 });
    await Promise.all(rings.map((r) => r.allreduce(new Float32Array(8))));
    (rings[2] as Ring).noteStep(7);
    const stuckFailed = new Promise<Error>((resolve) => (rings[2] as Ring).onFailure(resolve));
    const started = Date.now();
    // Ranks 0 and 1 step on; rank 2 is alive (same process: its heartbeats go on) but awaits something else.
    const results = await Promise.allSettled([0, 1].map((r) => (rings[r] as Ring).allreduce(new Float32Array(8))));
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    for (const r of results) {
      const err = (r as PromiseRejectedResult).reason as CollectiveTimeoutError;
      expect(err).toBeInstanceOf(CollectiveTimeoutError);
      expect(err.missingRanks).toEqual([2]);
      expect(err.message).toMatch(
        /waited \d+ s in Allreduce #2 with no progress \(collective timeout 1\.5 s\); ranks that did not arrive: rank 2 \(between collectives, last Allreduce #1 at step 7\)/,
      );
    }
    // The stuck rank learns it too, so its worker can end instead of hanging.
    expect(await stuckFailed).toBeInstanceOf(CollectiveTimeoutError);
    await closeAll(rings);
  });
});
