/** Routing by policy: canary weights, sticky callers, versions still loading, the shadow. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_POLICY, type ModelPolicy, versionsToLoad } from '../../src/serve/repository.js';
import { route } from '../../src/serve/routing.js';

const policy = (p: Partial<ModelPolicy>): ModelPolicy => ({ ...DEFAULT_POLICY, ...p });

function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('route', () => {
  it('sends the newest version by default, never the shadow candidate', () => {
    expect(route(DEFAULT_POLICY, [1, 2, 3], undefined)).toEqual({ version: 3, via: 'latest', shadow: null });
    expect(route(policy({ shadow: 3 }), [1, 2, 3], undefined)).toEqual({ version: 2, via: 'latest', shadow: 3 });
    expect(route(DEFAULT_POLICY, [], undefined)).toBeNull();
  });

  it('splits a canary by its weights', () => {
    const p = policy({ routing: { kind: 'canary', weights: { '1': 90, '2': 10 } } });
    const random = seeded(3);
    let two = 0;
    for (let i = 0; i < 10_000; i++) if (route(p, [1, 2], undefined, random)?.version === 2) two += 1;
    expect(two).toBeGreaterThan(900);
    expect(two).toBeLessThan(1100);
  });

  it('keeps one sticky key on one version, and spreads keys by the weights', () => {
    const p = policy({ routing: { kind: 'canary', weights: { '1': 50, '2': 50 } } });
    const first = route(p, [1, 2], 'caller-7')?.version;
    for (let i = 0; i < 100; i++)
      expect(route(p, [1, 2], 'caller-7', Math.random)).toMatchObject({ version: first, via: 'sticky' });
    const versions = new Set(Array.from({ length: 100 }, (_, i) => route(p, [1, 2], `caller-${i}`)?.version));
    expect(versions).toEqual(new Set([1, 2]));
  });

  it('gives a version still loading no share, and answers null when nothing routed is loaded', () => {
    const p = policy({ routing: { kind: 'canary', weights: { '1': 90, '3': 10 } } });
    for (let i = 0; i < 50; i++) expect(route(p, [1, 2], undefined)?.version).toBe(1);
    expect(route(policy({ routing: { kind: 'only', version: 4 } }), [1, 2], undefined)).toBeNull();
  });

  it('keeps loaded the newest N, the pinned, and whatever the routing and shadow name', () => {
    expect(versionsToLoad([1, 2, 3, 4, 5], DEFAULT_POLICY)).toEqual([4, 5]);
    expect(
      versionsToLoad([1, 2, 3, 4, 5], policy({ routing: { kind: 'only', version: 1 }, pinned: [2], keep_latest: 1 })),
    ).toEqual([1, 2, 5]);
    expect(
      versionsToLoad(
        [1, 2, 3],
        policy({ routing: { kind: 'canary', weights: { '1': 50, '9': 50 } }, shadow: 2, keep_latest: 1 }),
      ),
    ).toEqual([1, 2, 3]);
  });
});
