/**
 * A neighbour who reaches the ranks' ports before they authenticate: idle sockets on the data port
 * and floods of Hellos during formation do not lock the real peer out, and no refusal tells an
 * unauthenticated caller the job, its world size, attempt or ranks.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { expect, it } from 'vitest';
import { acceptProof } from '../../src/collective/auth.js';
import { CHANNEL_OPTIONS, type HelloReply, type HelloRequest, ringService } from '../../src/collective/control.js';
import { listen, type RingMember } from '../../src/collective/index.js';
import { expectWorkingPair } from '../helpers/ring.js';

const JOB = 'job-the-neighbour-should-not-learn';

/** The data port a neighbour would find by scanning the rank's listening ports. */
const dataPort = (m: RingMember): number =>
  ((m as unknown as { dataServer: net.Server }).dataServer.address() as net.AddressInfo).port;

function hello(client: InstanceType<ReturnType<typeof ringService>['Client']>, req: Partial<HelloRequest>): Promise<HelloReply> {
  const full: HelloRequest = {
    jobId: JOB,
    rank: 1,
    worldSize: 2,
    attempt: 0,
    clientNonce: randomBytes(16),
    transport: 'tcp',
    ...req,
  };
  return new Promise((resolve, reject) =>
    client.Hello(full, { deadline: Date.now() + 1000 }, (err: grpc.ServiceError | null, r?: HelloReply) =>
      err || !r ? reject(err) : resolve(r),
    ),
  );
}

it('8 idle sockets on the data port and a flood of Hellos during formation: the ring still forms', async () => {
  const opts = { jobId: JOB, worldSize: 2, secret: 'the-secret', formationTimeoutMs: 20_000 };
  const a = await listen({ ...opts, rank: 0 });
  const b = await listen({ ...opts, rank: 1 });
  const { Client } = ringService();
  const attackers = [a, b].map((m) => new Client(m.address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS));
  const idle: net.Socket[] = [];
  const refusals: HelloReply[] = [];
  let flooding = true;
  const ports = [dataPort(a), dataPort(b)];
  const flood = (async () => {
    while (flooding) {
      for (const i of [0, 1]) {
        // Idle connections that never send their 48 bytes, 8 at a time and more.
        for (let k = 0; k < 8; k++) idle.push(net.connect(ports[i] as number, '127.0.0.1').on('error', () => undefined));
        const client = attackers[i] as InstanceType<typeof Client>;
        // Hellos that would be accepted (the neighbour guessed the job), never followed by a Join...
        const sent = Array.from({ length: 32 }, () => hello(client, { rank: (i + 1) % 2 }).catch(() => undefined));
        // ...and Hellos that are refused.
        sent.push(
          hello(client, { jobId: 'guess' }).then(
            (r) => void refusals.push(r),
            () => undefined, // past gRPC's 32 streams a connection
          ),
          hello(client, { rank: 7, worldSize: 9, attempt: 3 }).then(
            (r) => void refusals.push(r),
            () => undefined,
          ),
        );
        await Promise.all(sent);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  try {
    await new Promise((r) => setTimeout(r, 200)); // the gates are full before the real peers dial
    const [ra, rb] = await Promise.all([a.join([a.address, b.address]), b.join([a.address, b.address])]);
    flooding = false;
    await flood;
    await expectWorkingPair(ra, rb);
  } finally {
    flooding = false;
    await flood;
    for (const s of idle) s.destroy();
    for (const c of attackers) c.close();
  }
  expect(idle.length).toBeGreaterThanOrEqual(16);
  expect(refusals.length).toBeGreaterThan(0);
  for (const r of refusals) {
    expect(r.refusedField).not.toBe('');
    const said = JSON.stringify(r);
    expect(said).not.toContain(JOB);
    expect(r.refusedReason).toBe(`${r.refusedField} does not match`);
    expect(r.rank).toBe(0);
  }
}, 60_000);

it("the served rank's proof binds the session id and the data port its JoinReply gives", () => {
  const secret = Buffer.from('s');
  const p = { jobId: 'j', attempt: 0, worldSize: 2, dialingRank: 1, servedRank: 0 };
  const [cn, sn, session] = [randomBytes(16), randomBytes(16), randomBytes(16)];
  const proof = acceptProof(secret, p, cn, sn, session, 4000);
  expect(acceptProof(secret, p, cn, sn, session, 4001).equals(proof)).toBe(false);
  expect(acceptProof(secret, p, cn, sn, randomBytes(16), 4000).equals(proof)).toBe(false);
  expect(acceptProof(secret, p, cn, sn, session, 4000).equals(proof)).toBe(true);
});
