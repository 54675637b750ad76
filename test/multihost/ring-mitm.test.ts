/**
 * A man in the middle between two ranks on namespaced hosts (cluster/hosts.ts): rank 1 on host1
 * reaches rank 0 on host0 through a relay on host2, which flips one bit of one frame of the data
 * rank 0 sends. With --ring-encrypt the attempt ends with a typed integrity error naming the link;
 * without it the sums come out silently wrong, which is what the option is for; a relay that
 * rewrites the session id or data port of the JoinReply is refused at the handshake either way.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Host, HostCluster, removeStaleClusters } from '../../cluster/hosts.js';
import { ROOT } from '../helpers/spark.js';

let cluster: HostCluster;
const children: ChildProcess[] = [];

beforeAll(async () => {
  removeStaleClusters();
  cluster = await HostCluster.start({ hosts: 3 });
}, 60_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await cluster?.stop();
}, 60_000);

/** Starts `script` on `host` and gives its stdout lines, one at a time. */
function startOn(host: Host, script: string, config: unknown): { child: ChildProcess; line(): Promise<string> } {
  const [file, ...args] = cluster.on(host, [process.execPath, `${ROOT}test/fixtures/${script}`, JSON.stringify(config)]) as [
    string,
    ...string[],
  ];
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  const lines: string[] = [];
  const waiting: Array<(l: string) => void> = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (l) => {
    const w = waiting.shift();
    if (w) w(l);
    else lines.push(l);
  });
  return {
    child,
    line: () => {
      const l = lines.shift();
      return l !== undefined ? Promise.resolve(l) : new Promise((resolve) => waiting.push(resolve));
    },
  };
}

describe('a relay on the path that flips one bit of one frame', () => {
  it.each([
    [true, 'ends the attempt with a typed integrity error naming the link'],
    [false, 'gives silently wrong sums'],
  ])(
    'with encrypt=%s it %s',
    async (encrypt) => {
      const [h0, h1, h2] = cluster.hosts as [Host, Host, Host];
      const r0 = startOn(h0, 'sealed-rank.mjs', { rank: 0, host: h0.address, encrypt });
      const r1 = startOn(h1, 'sealed-rank.mjs', { rank: 1, host: h1.address, encrypt });
      const a0 = JSON.parse(await r0.line()) as { address: string; dataPort: number };
      const a1 = JSON.parse(await r1.line()) as { address: string; dataPort: number };
      const grpcPort = Number(a0.address.split(':')[1]);
      // Past the 33-byte ack, the header (16) and, sealed, the tag (16): inside the first frame's payload.
      const flipAt = 33 + 16 + (encrypt ? 16 : 0) + 4003;
      const relay = startOn(h2, 'flip-relay.mjs', {
        listen: h2.address,
        target: h0.address,
        ports: [grpcPort, a0.dataPort],
        flipPort: a0.dataPort,
        flipAt,
      });
      expect(await relay.line()).toBe('ready');
      r0.child.stdin?.write(`${JSON.stringify([a0.address, a1.address])}\n`);
      r1.child.stdin?.write(`${JSON.stringify([`${h2.address}:${grpcPort}`, a1.address])}\n`);
      const [o0, o1] = (await Promise.all([r0.line(), r1.line()])).map((l) => JSON.parse(l)) as Array<{
        sum?: number[];
        error?: { name: string; code: string; message: string };
      }>;
      if (encrypt) {
        expect(o1?.error).toMatchObject({ name: 'RingIntegrityError', code: 'SR_RING_INTEGRITY' });
        expect(o1?.error?.message).toMatch(
          new RegExp(`^the link from rank 0 at ${h2.address.replace(/\./g, '\\.')}:${grpcPort} carried a Data frame`),
        );
        expect(o0?.error).toBeDefined(); // rank 0 learns of it too, and ends
      } else {
        expect(o0?.sum?.some((v) => v !== 3) || o1?.sum?.some((v) => v !== 3)).toBe(true);
      }
      relay.child.kill('SIGKILL');
    },
    60_000,
  );
});

describe('a relay on the path that rewrites the JoinReply, without --ring-encrypt', () => {
  it.each(['sessionId', 'dataPort'])(
    "a rewritten %s is refused at the handshake: the served rank's proof binds it",
    async (rewrite) => {
      const [h0, h1, h2] = cluster.hosts as [Host, Host, Host];
      const r0 = startOn(h0, 'sealed-rank.mjs', { rank: 0, host: h0.address, encrypt: false });
      const r1 = startOn(h1, 'sealed-rank.mjs', { rank: 1, host: h1.address, encrypt: false });
      const a0 = JSON.parse(await r0.line()) as { address: string; dataPort: number };
      const a1 = JSON.parse(await r1.line()) as { address: string; dataPort: number };
      const grpcPort = Number(a0.address.split(':')[1]);
      const relay = startOn(h2, 'flip-relay.mjs', {
        listen: h2.address,
        target: h0.address,
        ports: [grpcPort, a0.dataPort],
        rewrite,
        joinPort: grpcPort,
        dataPort: a0.dataPort,
      });
      expect(await relay.line()).toBe('ready');
      r0.child.stdin?.write(`${JSON.stringify([a0.address, a1.address])}\n`);
      r1.child.stdin?.write(`${JSON.stringify([`${h2.address}:${grpcPort}`, a1.address])}\n`);
      const o1 = JSON.parse(await r1.line()) as { error?: { name: string; code: string; message: string; field: string } };
      expect(await relay.line()).toBe('rewrote');
      expect(o1.error).toMatchObject({ name: 'RingHandshakeError', code: 'SR_RING_HANDSHAKE', field: 'secret' });
      expect(o1.error?.message).toMatch(/its session id or its data port \(rewritten on the way\?\)/);
      for (const c of [r0.child, relay.child]) c.kill('SIGKILL');
    },
    60_000,
  );
});
