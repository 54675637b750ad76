/**
 * The ring's order (ring-order.ts): with every rank's host known, the ranks of one host sit side by
 * side, and every collective gives the same results as in rank order, on a real ring.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Ring } from '../../src/collective/index.js';
import { neighboursIn, ringOrder } from '../../src/collective/ring-order.js';
import { ringInProcess } from '../helpers/ring.js';

let rings: Ring[] = [];
afterEach(async () => {
  await Promise.all(rings.map((r) => r.close()));
  rings = [];
});

describe('ringOrder', () => {
  it('puts the ranks of one host side by side, hosts in the order of their lowest rank', () => {
    expect(ringOrder(4, ['a', 'b', 'a', 'b'])).toEqual([0, 2, 1, 3]);
    expect(ringOrder(6, ['b', 'a', 'c', 'a', 'b', 'c'])).toEqual([0, 4, 1, 3, 2, 5]);
    expect(neighboursIn([0, 2, 1, 3], 2)).toEqual({ predecessor: 0, successor: 1 });
    expect(neighboursIn([0, 2, 1, 3], 0)).toEqual({ predecessor: 3, successor: 2 });
  });

  it('keeps rank order without hosts, or with a list of another length', () => {
    expect(ringOrder(3)).toEqual([0, 1, 2]);
    expect(ringOrder(3, ['a', 'b'])).toEqual([0, 1, 2]);
  });
});

describe('a ring whose ranks alternate between two hosts', () => {
  it('forms in host order and reduces, gathers and broadcasts as in rank order', async () => {
    rings = await ringInProcess(4, { hosts: ['h1', 'h2', 'h1', 'h2'] });
    expect(rings.map((r) => r.order)).toEqual(Array(4).fill([0, 2, 1, 3]));
    const sums = await Promise.all(
      rings.map((r) =>
        r.allreduce(
          new Float32Array(10_001).map((_, i) => i * (r.rank + 1)),
          'sum',
        ),
      ),
    );
    for (const s of sums) expect([...s.subarray(0, 3)]).toEqual([0, 10, 20]);
    const gathered = await Promise.all(rings.map((r) => r.allgather({ rank: r.rank })));
    for (const g of gathered) expect(g).toEqual([0, 1, 2, 3].map((rank) => ({ rank })));
    for (const root of [0, 1, 2, 3]) {
      const got = await Promise.all(rings.map((r) => r.broadcast(new Int32Array([r.rank, 7]), root)));
      for (const b of got) expect([...b]).toEqual([root, 7]);
      const values = await Promise.all(rings.map((r) => r.broadcastValue({ from: r.rank }, root)));
      for (const v of values) expect(v).toEqual({ from: root });
    }
  });
});
