/** One rank of the allreduce benchmark (see bench/allreduce.ts). */
import { createInterface } from 'node:readline';
import type { WirePrecision } from '../src/collective/half-precision.js';
import { listen, type Transport } from '../src/collective/index.js';
import { busySince, cpuSample } from './lib/machine-cpu.js';

interface Config {
  rank: number;
  worldSize: number;
  transport: Transport;
  /** Shared memory between ranks of one host (off: the socket carries everything). */
  sharedMemory?: boolean;
  /** --ring-encrypt: every frame sealed (collective/link-seal.ts). */
  encrypt?: boolean;
  /** --wire-precision: the timed allreduce as gradients in 16 bits (a mean, with error feedback). */
  wirePrecision?: WirePrecision;
  bytes: number;
  iters: number;
  chunkBytes?: number;
  tensors: number;
  tensorBytes: number;
  /** The address to listen on (default loopback). */
  host?: string;
  /** Every rank's host, by rank: the ring puts the ranks of one host side by side (ring-order.ts). */
  hosts?: string[];
  /** Skip the fused and per-tensor rounds (the multi-host benchmark measures one size only). */
  only?: boolean;
}

const cfg = JSON.parse(process.argv[2] as string) as Config;
const out = (o: unknown): void => {
  process.stdout.write(`${JSON.stringify(o)}\n`);
};

const member = await listen({
  jobId: 'bench',
  rank: cfg.rank,
  worldSize: cfg.worldSize,
  secret: 'bench-secret',
  transport: cfg.transport,
  sharedMemory: cfg.sharedMemory ?? false,
  encrypt: cfg.encrypt ?? false,
  wirePrecision: cfg.wirePrecision ?? 'fp32',
  chunkBytes: cfg.chunkBytes,
  host: cfg.host,
  hosts: cfg.hosts,
});
out({ address: member.address });
const rl = createInterface({ input: process.stdin });
const peers = await new Promise<string[]>((resolve) => rl.once('line', (l) => resolve(JSON.parse(l) as string[])));
rl.close();
const ring = await member.join(peers);

async function timed(iters: number, body: () => Promise<unknown>): Promise<number> {
  await body(); // warm-up
  await ring.barrier();
  const cpu0 = process.cpuUsage();
  const machine0 = cpuSample();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) await body();
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  cpuShare = (cpu.user + cpu.system) / 1e3 / wall;
  machineBusy = busySince(machine0);
  return wall / iters;
}

let cpuShare = 0;
let machineBusy = 0;
const x = new Float32Array(cfg.bytes / 4).fill(cfg.rank + 1);
const halfWire = (cfg.wirePrecision ?? 'fp32') !== 'fp32';
// Gradients are averaged (a sum would grow past fp16's range over the iterations).
const timeMs = await timed(cfg.iters, () =>
  halfWire ? ring.allreduceInPlace(x, 'mean', 'bench') : ring.allreduceInPlace(x, 'sum'),
);
const ringCpuShare = cpuShare;
const ringMachineBusy = machineBusy;

const small = Array.from({ length: cfg.tensors }, () => new Float32Array(cfg.tensorBytes / 4).fill(1));
const fusedMs = cfg.only ? 0 : await timed(5, () => ring.allreduceManyInPlace(small, 'sum'));
const perTensorMs = cfg.only
  ? 0
  : await timed(2, async () => {
      for (const t of small) await ring.allreduceInPlace(t, 'sum');
    });
out({
  result: { timeMs, fusedMs, perTensorMs, cpuShare: ringCpuShare, machineBusy: ringMachineBusy, dataPath: ring.dataPath },
});
await ring.close();
