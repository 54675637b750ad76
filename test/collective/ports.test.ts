/**
 * The ring's ports: frames longer than their kind may carry are refused before a buffer is
 * allocated, unproven connections are capped in number and lifetime, the handshake has a message
 * size limit, and nothing new is accepted once the ring is formed.
 */
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { CHANNEL_OPTIONS, ringService } from '../../src/collective/control.js';
import { FrameRefusedError } from '../../src/collective/errors.js';
import { CollectiveKind, encodeHeader, FrameKind } from '../../src/collective/frames.js';
import { listen, type Ring } from '../../src/collective/index.js';
import { ringInProcess } from '../helpers/ring.js';

/** The raw socket under a ring's link (a test reaches past the API to play a misbehaving peer). */
const socketOf = (ring: Ring, side: 'prev' | 'next'): net.Socket =>
  (ring as unknown as Record<string, { socket: net.Socket }>)[side]?.socket as net.Socket;

function connectOutcome(port: number): Promise<'connected' | string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

describe('frames', () => {
  it('a data frame that names 2 GB is refused before it is read, naming the peer', async () => {
    const rings = (await ringInProcess(2)) as [Ring, Ring];
    const [a, b] = rings;
    const pending = a.allreduce(new Float32Array(4)).catch((e: unknown) => e);
    const before = process.memoryUsage().arrayBuffers;
    // Rank 1 plays a broken peer: a header promising 2 GB of allreduce data.
    socketOf(b, 'next').write(
      encodeHeader({ kind: FrameKind.Data, collective: CollectiveKind.Allreduce, seq: 1, index: 0 }, 2 ** 31),
    );
    const err = (await pending) as FrameRefusedError;
    expect(err).toBeInstanceOf(FrameRefusedError);
    expect(err.peerRank).toBe(1);
    expect(err.message).toMatch(
      /^rank 1 at 127\.0\.0\.1:\d+ sent a Allreduce #1 piece 0 frame of 2147483648 bytes, where at most \d+ are expected; the frame was refused before it was read$/,
    );
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 2 ** 20);
    await Promise.all(rings.map((r) => r.close()));
  });

  it('an oversized heartbeat sent backwards is refused too', async () => {
    const rings = (await ringInProcess(2)) as [Ring, Ring];
    const [a, b] = rings;
    const failed = new Promise<Error>((resolve) => b.onFailure(resolve));
    socketOf(a, 'prev').write(
      encodeHeader({ kind: FrameKind.Heartbeat, collective: CollectiveKind.None, seq: 0, index: 0 }, 500_000_000),
    );
    const err = await failed;
    expect(err).toBeInstanceOf(FrameRefusedError);
    expect(err.message).toMatch(/sent a Heartbeat frame of 500000000 bytes/);
    await Promise.all(rings.map((r) => r.close()));
  });
});

describe('connections', () => {
  it('caps unproven data connections in number and lifetime, and takes none once the ring is formed', async () => {
    const opts = { jobId: 'ports', worldSize: 2, secret: 's', formationTimeoutMs: 1500 };
    const [m0, m1] = await Promise.all([listen({ ...opts, rank: 0 }), listen({ ...opts, rank: 1 })]);
    const dataPort = ((m0 as unknown as { dataServer: net.Server }).dataServer.address() as net.AddressInfo).port;
    const strangers = await Promise.all(
      Array.from(
        { length: 12 },
        () =>
          new Promise<net.Socket>((resolve) => {
            const s = net.connect(dataPort, '127.0.0.1', () => resolve(s));
            s.on('error', () => undefined);
          }),
      ),
    );
    const closedAt: number[] = [];
    const opened = Date.now();
    await Promise.all(
      strangers.map(
        (s) =>
          new Promise<void>((resolve) =>
            s.once('close', () => {
              closedAt.push(Date.now() - opened);
              resolve();
            }),
          ),
      ),
    );
    // 4 of 12 were over the cap and closed at once; the 8 others when their time to prove ran out.
    expect(closedAt.filter((ms) => ms < 500)).toHaveLength(4);
    expect(closedAt.filter((ms) => ms >= 1400 && ms < 5000)).toHaveLength(8);
    const rings = await Promise.all([m0.join([m0.address, m1.address]), m1.join([m0.address, m1.address])]);
    expect(await connectOutcome(dataPort)).toBe('ECONNREFUSED');
    expect(await connectOutcome(Number(m0.address.split(':')[1]))).toBe('ECONNREFUSED');
    // The formed ring still works.
    const sums = await Promise.all(rings.map((r) => r.allreduce(new Float32Array([1]), 'sum')));
    expect(sums.map((s) => s[0])).toEqual([2, 2]);
    await Promise.all(rings.map((r) => r.close()));
  });

  it('refuses a handshake message over its size limit', async () => {
    const m = await listen({ jobId: 'ports', worldSize: 2, rank: 0, secret: 's' });
    const { Client } = ringService();
    const client = new Client(m.address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
    const err = await new Promise<grpc.ServiceError | null>((resolve) =>
      client.Hello(
        { jobId: 'x'.repeat(1024 * 1024), rank: 1, worldSize: 2, attempt: 0, clientNonce: Buffer.alloc(16), transport: 'tcp' },
        { deadline: Date.now() + 5000 },
        (e) => resolve(e),
      ),
    );
    expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    client.close();
    await m.release();
  });
});
