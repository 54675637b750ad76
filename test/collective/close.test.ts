import { describe, expect, it } from 'vitest';
import { ringInProcess } from '../helpers/ring.js';

// Its own file (its own worker process), so no other test's sockets are counted.
describe('closing', () => {
  it.each(['tcp', 'grpc'] as const)('frees every socket, server and timer (%s)', async (transport) => {
    const tally = (): Record<string, number> => {
      const t: Record<string, number> = {};
      for (const r of process.getActiveResourcesInfo()) t[r] = (t[r] ?? 0) + 1;
      return t;
    };
    const before = tally();
    const ring = await ringInProcess(3, { transport, peerTimeoutMs: 200 });
    await Promise.all(ring.map((r) => r.allreduce(new Float32Array(1000).fill(1), 'sum')));
    expect(tally().TCPSocketWrap ?? 0).toBeGreaterThan(before.TCPSocketWrap ?? 0);
    await Promise.all(ring.map((r) => r.close()));
    const settled = (): boolean => {
      const now = tally();
      return ['TCPSocketWrap', 'TCPServerWrap', 'Timeout'].every((k) => (now[k] ?? 0) <= (before[k] ?? 0));
    };
    const deadline = Date.now() + 3000;
    while (!settled() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const after = tally();
    expect({ sockets: after.TCPSocketWrap ?? 0, servers: after.TCPServerWrap ?? 0 }).toEqual({
      sockets: before.TCPSocketWrap ?? 0,
      servers: before.TCPServerWrap ?? 0,
    });
    expect(after.Timeout ?? 0).toBeLessThanOrEqual(before.Timeout ?? 0);
  });

  it('a closed ring refuses further collectives', async () => {
    const ring = await ringInProcess(2);
    await Promise.all(ring.map((r) => r.close()));
    await expect(ring[0]?.allreduce(new Float32Array(1))).rejects.toThrow(/closed/);
  });
});
