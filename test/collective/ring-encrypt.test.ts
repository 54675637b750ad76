/**
 * --ring-encrypt: sealed frames give the same sums, and a relay on the path between two ranks that
 * flips one byte of one frame ends the attempt with a typed integrity error naming the link (where
 * without it the sums would be silently wrong).
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { listen, type Ring, RingIntegrityError, type RingMember } from '../../src/collective/index.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function ringOfMembers(n: number, o: { encrypt: boolean; sharedMemory: boolean; jobId: string }): Promise<RingMember[]> {
  return Promise.all(
    Array.from({ length: n }, (_, rank) => listen({ ...o, rank, worldSize: n, secret: 'k', peerTimeoutMs: 5000 })),
  );
}

const dataPort = (m: RingMember): number =>
  ((m as unknown as { dataServer: net.Server }).dataServer.address() as net.AddressInfo).port;

/**
 * An on-path relay for one rank's ports: listens on 127.0.0.2 at the same port numbers and passes
 * bytes to 127.0.0.1, flipping the byte at `flipAt` of what the data port sends back (if given).
 */
async function relay(ports: number[], flipAt?: number): Promise<void> {
  for (const [i, port] of ports.entries()) {
    const server = net.createServer((inbound) => {
      const outbound = net.connect(port, '127.0.0.1');
      let seen = 0;
      outbound.on('data', (chunk: Buffer) => {
        if (i === 1 && flipAt !== undefined && seen <= flipAt && flipAt < seen + chunk.length) {
          chunk[flipAt - seen] = (chunk[flipAt - seen] as number) ^ 0x01; // 1.0 becomes 0.5 where it lands on an exponent
        }
        seen += chunk.length;
        inbound.write(chunk);
      });
      inbound.on('data', (chunk: Buffer) => outbound.write(chunk));
      for (const [a, b] of [
        [inbound, outbound],
        [outbound, inbound],
      ] as const) {
        a.on('error', () => b.destroy());
        a.on('close', () => b.destroy());
      }
    });
    await new Promise<void>((r) => server.listen(port, '127.0.0.2', () => r()));
    cleanups.push(() => server.close());
  }
}

describe('--ring-encrypt', () => {
  it.each([
    ['over TCP', false],
    ['with shared memory', true],
  ])('gives the same allreduce, broadcast and allgather %s', async (_how, sharedMemory) => {
    const members = await ringOfMembers(3, { encrypt: true, sharedMemory, jobId: `sealed-${sharedMemory}` });
    const addresses = members.map((m) => m.address);
    const rings = await Promise.all(members.map((m) => m.join(addresses)));
    const n = 700_000; // several pieces of 1 MiB
    const sums = await Promise.all(rings.map((r, rank) => r.allreduce(new Float32Array(n).fill(rank + 1), 'sum')));
    for (const s of sums) {
      expect(s[0]).toBe(6);
      expect(s[n - 1]).toBe(6);
    }
    const told = await Promise.all(rings.map((r, rank) => r.broadcast(new Float32Array([rank, 9]), 2)));
    for (const t of told) expect(Array.from(t)).toEqual([2, 9]);
    const all = await Promise.all(rings.map((r, rank) => r.allgather({ rank })));
    for (const a of all) expect(a).toEqual([{ rank: 0 }, { rank: 1 }, { rank: 2 }]);
    await Promise.all(rings.map((r) => r.close()));
  });

  it.each([
    [true, 'a typed integrity error naming the link'],
    [false, 'silently wrong sums'],
  ])('a relay that flips one byte of one frame: with encrypt=%s, %s', async (encrypt) => {
    const [a, b] = (await ringOfMembers(2, { encrypt, sharedMemory: false, jobId: `relayed-${encrypt}` })) as [
      RingMember,
      RingMember,
    ];
    // Rank 1 reaches rank 0 through the relay. The flip lands past the 33-byte ack, in the first
    // data frame: the top byte of float 1000 of its payload in clear (header 16 bytes).
    await relay([Number(a.address.split(':')[1]), dataPort(a)], 33 + 16 + 4003);
    const relayed = `127.0.0.2:${a.address.split(':')[1]}`;
    const [ra, rb] = (await Promise.all([a.join([a.address, b.address]), b.join([relayed, b.address])])) as [Ring, Ring];
    const n = 300_000;
    const outcomes = await Promise.allSettled([
      ra.allreduce(new Float32Array(n).fill(1), 'sum'),
      rb.allreduce(new Float32Array(n).fill(2), 'sum'),
    ]);
    if (encrypt) {
      const err = (outcomes[1] as PromiseRejectedResult).reason as RingIntegrityError;
      expect(err).toBeInstanceOf(RingIntegrityError);
      expect(err.code).toBe('SR_RING_INTEGRITY');
      expect(err.message).toMatch(
        /^the link from rank 0 at 127\.0\.0\.2:\d+ carried a Data frame .* does not open with the ring's key/,
      );
      expect(outcomes[0].status).toBe('rejected'); // the abort reaches rank 0 too
    } else {
      const sums = outcomes.map((o) => (o as PromiseFulfilledResult<Float32Array>).value);
      expect(sums.some((s) => s.some((v) => v !== 3))).toBe(true);
    }
    await Promise.all([ra.close(), rb.close()]);
  });
});
