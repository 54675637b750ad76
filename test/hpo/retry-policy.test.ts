/** The trial retry rules' decisions (src/hpo/retry-policy.ts), without Redis. */
import { describe, expect, it } from 'vitest';
import { clientAliveMs, excluded, reapEveryMs, renewEveryMs, retryHere } from '../../src/hpo/retry-policy.js';

const policy = { leaseMs: 10_000, maxAttempts: 3, excludeAfter: 2 };

describe('trial retry policy', () => {
  it('renews a lease several times within it, reaps twice a lease, and the client mark outlives three', () => {
    expect(renewEveryMs(policy)).toBe(2500);
    expect(reapEveryMs(policy)).toBe(5000);
    expect(clientAliveMs(policy)).toBe(30_000);
    expect(renewEveryMs({ ...policy, leaseMs: 100 })).toBe(50);
    expect(reapEveryMs({ ...policy, leaseMs: 100 })).toBe(100);
  });

  it('a trial that failed here is tried here again only after a lease with nothing else to run', () => {
    expect(retryHere(policy, undefined, 50_000)).toBe(false);
    expect(retryHere(policy, 40_000, 50_000)).toBe(false);
    expect(retryHere(policy, 40_000, 50_001)).toBe(true);
  });

  it('an executor leaves after excludeAfter failures in a row, only while others complete trials', () => {
    expect(excluded(policy, 2, true)).toBe(true);
    expect(excluded(policy, 1, true)).toBe(false);
    expect(excluded(policy, 5, false)).toBe(false);
  });
});
