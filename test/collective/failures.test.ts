import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CollectiveMismatchError,
  listen,
  PeerFailedError,
  type Ring,
  RingFormationTimeoutError,
  RingHandshakeError,
} from '../../src/collective/index.js';
import { freePort } from '../../src/util/net.js';
import { expectWorkingPair, killRings, outcomes, ringInProcess, ringOf } from '../helpers/ring.js';

afterEach(killRings);

describe('a peer that dies or stalls', () => {
  it('kill -9 of one rank in the middle of an allreduce gives every other rank a typed error naming it', async () => {
    const peerTimeoutMs = 3000;
    const ring = await ringOf(3, () => ({ scenario: 'loop', n: 2_000_000, peerTimeoutMs }));
    for (const r of [0, 1, 2]) await ring.waitFor(r, 'looping');
    const killedAt = Date.now();
    ring.ranks[1]?.child.kill('SIGKILL');
    const exits = await Promise.all(
      [0, 2].map(async (r) => {
        await ring.ranks[r]?.exited;
        return Date.now() - killedAt;
      }),
    );
    const results = await outcomes(ring);
    for (const r of [0, 2]) {
      expect(results[r]?.error).toMatchObject({
        name: 'PeerFailedError',
        peerRank: 1,
        peerAddress: ring.addresses[1],
        failure: 'lost',
      });
    }
    for (const ms of exits) expect(ms).toBeLessThan(peerTimeoutMs + 5000);
  });

  it('a stalled rank (SIGSTOP) is named by every other rank once the peer timeout passes', async () => {
    const peerTimeoutMs = 1500;
    const ring = await ringOf(4, () => ({ scenario: 'loop', n: 500_000, peerTimeoutMs }));
    for (const r of [0, 1, 2, 3]) await ring.waitFor(r, 'looping');
    ring.ranks[2]?.child.kill('SIGSTOP');
    const stoppedAt = Date.now();
    const waits = await Promise.all(
      [0, 1, 3].map(async (r) => {
        await ring.ranks[r]?.exited;
        return Date.now() - stoppedAt;
      }),
    );
    ring.ranks[2]?.child.kill('SIGKILL');
    const results = await outcomes(ring);
    for (const r of [0, 1, 3]) {
      expect(results[r]?.error).toMatchObject({
        name: 'PeerFailedError',
        peerRank: 2,
        peerAddress: ring.addresses[2],
        failure: 'stalled',
      });
    }
    // Not before the timeout, by the detecting rank's own clock (from the test's, the stop and the last
    // frame rank 2 sent are apart by however long this process or rank 2 waited for a core).
    const silences = [0, 1, 3]
      .map(
        (r) => /nothing heard for (\d+) ms/.exec(String((results[r]?.error as { message?: string } | undefined)?.message))?.[1],
      )
      .filter((ms) => ms !== undefined)
      .map(Number);
    expect(silences.length).toBeGreaterThan(0);
    for (const ms of silences) expect(ms).toBeGreaterThan(peerTimeoutMs);
    for (const ms of waits) expect(ms).toBeLessThan(peerTimeoutMs + 5000);
  });

  it('a peer that closes while another still waits is reported, not waited for', async () => {
    const [a, b] = (await ringInProcess(2)) as [Ring, Ring];
    // Settled into a value at once: b.close() lingers for its socket, and a rejects meanwhile.
    const outcome = a.allreduce(new Float32Array(10), 'sum').catch((e: unknown) => e);
    await b.close();
    expect(await outcome).toMatchObject({ name: 'PeerFailedError', peerRank: 1, failure: 'closed' });
    await a.close();
  });
});

describe('the handshake', () => {
  it('refuses a peer with a wrong secret, on both sides, naming the secret', async () => {
    const ring = await ringOf(2, (rank) => ({
      scenario: 'sums',
      cases: [],
      secret: rank === 1 ? 'not-the-secret' : 'test-secret',
    }));
    for (const r of await outcomes(ring)) {
      expect(r?.error).toMatchObject({ name: 'RingHandshakeError', field: 'secret' });
    }
  });

  it.each([
    ['attempt', { attempt: 1 }],
    ['job_id', { jobId: 'another-job' }],
    ['transport', { transport: 'grpc' }],
  ])('refuses a peer with another %s, naming the field', async (field, odd) => {
    const ring = await ringOf(2, (rank) => ({ scenario: 'sums', cases: [], ...(rank === 1 ? odd : {}) }));
    for (const r of await outcomes(ring)) expect(r?.error).toMatchObject({ name: 'RingHandshakeError', field });
  });

  it('keeps waiting for the real peer after refusing an impostor', async () => {
    const opts = { jobId: 'j', worldSize: 2, secret: 'right' };
    const a = await listen({ ...opts, rank: 0 });
    const b = await listen({ ...opts, rank: 1 });
    const impostor = await listen({ ...opts, rank: 1, secret: 'wrong' });
    const refused = impostor.join([a.address, impostor.address]);
    await expect(refused).rejects.toBeInstanceOf(RingHandshakeError);
    await expect(refused).rejects.toMatchObject({ field: 'secret', peerAddress: a.address });
    const [ra, rb] = await Promise.all([a.join([a.address, b.address]), b.join([a.address, b.address])]);
    await expectWorkingPair(ra, rb);
  });

  it('times out forming the ring with the missing ranks and their addresses', async () => {
    const m = await listen({ jobId: 'j', rank: 0, worldSize: 3, secret: 's', formationTimeoutMs: 1500 });
    const p1 = `127.0.0.1:${await freePort()}`;
    const p2 = `127.0.0.1:${await freePort()}`;
    const err = await m.join([m.address, p1, p2]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RingFormationTimeoutError);
    const missing = (err as RingFormationTimeoutError).missing;
    expect(missing.map((x) => [x.rank, x.address])).toEqual([
      [2, p2],
      [1, p1],
    ]);
    expect((err as Error).message).toMatch(/rank 2 at 127\.0\.0\.1:\d+ \(predecessor not reached: .*ECONNREFUSED/);
    expect((err as Error).message).toMatch(/rank 1 at 127\.0\.0\.1:\d+ \(successor never dialed in\)/);
  });
  it("a predecessor that takes the connection and never answers: the formation error, never gRPC's deadline", async () => {
    // The dial's Hello then fails with DEADLINE_EXCEEDED at the formation deadline itself, a race
    // with the formation timer: whichever settles first, the error is the formation's.
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const mute = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    try {
      for (let i = 0; i < 4; i++) {
        const m = await listen({ jobId: `mute-${i}`, rank: 1, worldSize: 2, secret: 's', formationTimeoutMs: 400 });
        const err = await m.join([mute, m.address]).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(RingFormationTimeoutError);
        expect((err as RingFormationTimeoutError).missing.map((x) => x.address)).toContain(mute);
      }
    } finally {
      silent.close();
    }
  });
});

describe('misuse', () => {
  it('ranks that pass arrays of different lengths both get a mismatch error, not a hang', async () => {
    const [a, b] = (await ringInProcess(2)) as [Ring, Ring];
    const results = await Promise.allSettled([a.allreduce(new Float32Array(10)), b.allreduce(new Float32Array(12))]);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(CollectiveMismatchError);
    }
    await Promise.all([a.close(), b.close()]);
  });

  it('ranks that call different collectives get a mismatch error naming both', async () => {
    const [a, b] = (await ringInProcess(2)) as [Ring, Ring];
    const results = await Promise.allSettled([a.allreduce(new Float32Array(4)), b.allgather('x')]);
    const reasons = results.map((r) => (r as PromiseRejectedResult).reason as Error);
    expect(reasons.every((e) => e instanceof CollectiveMismatchError)).toBe(true);
    expect(reasons.map((e) => e.message).join(' ')).toMatch(/Allreduce #1 .* Allgather #1|Allgather #1 .* Allreduce #1/);
    await Promise.all([a.close(), b.close()]);
  });

  it('refuses a bad op or root before anything is sent', async () => {
    const [a] = (await ringInProcess(1)) as [Ring];
    await expect(a.allreduce(new Float32Array(1), 'avg' as 'sum')).rejects.toThrow(/"avg" is not one of/);
    await expect(a.broadcast(new Float32Array(1), 3)).rejects.toThrow(/root 3 is not a rank/);
    await a.close();
  });
});

it('a ring error is a PeerFailedError instance on the in-process API too', async () => {
  const [a, b] = (await ringInProcess(2, { peerTimeoutMs: 300 })) as [Ring, Ring];
  const outcome = a.allreduce(new Float32Array(4)).catch((e: unknown) => e);
  await b.close();
  expect(await outcome).toBeInstanceOf(PeerFailedError);
  await a.close();
});
