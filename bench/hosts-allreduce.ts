/**
 * Ring allreduce across namespaced hosts (cluster/hosts.ts) over shaped links, beside OpenMPI's
 * MPI_Allreduce over TCP across the same hosts and links (mpirun reaches each namespace through a
 * launch agent that enters it) and the link's line rate measured by iperf3 between two hosts, all
 * in the same run; the loopback figures (bench/allreduce.ts) beside them.
 *
 *   npm run bench -- allreduce --hosts 2,3 --link 10gbit,1gbit [--ranks-per-host 2] [--wire fp16,bf16] [--json]
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { type Host, HostCluster } from '../cluster/hosts.js';
import { startRing } from '../cluster/ring-processes.js';
import type { HalfFormat, WirePrecision } from '../src/collective/half-precision.js';
import { packageFile } from '../src/util/package-file.js';
import { allreduceBench } from './allreduce.js';
import { anchorsDir } from './lib/anchors.js';
import { busySince, cpuSample } from './lib/machine-cpu.js';

export interface HostsAllreduceOptions {
  hosts: number[];
  links: string[];
  bytes: number[];
  iters: number;
  anchors: boolean;
  /** Also the ring with its frames sealed (--ring-encrypt), its busbw beside the clear one's. */
  encrypt?: boolean;
  /** Also the ring with gradients in these 16-bit formats (--wire-precision), beside float32. */
  wire?: HalfFormat[];
  /**
   * Ranks on each host (default 1). With more than one, ranks are dealt to the hosts in turn (rank r
   * on host r mod hosts, as Spark may deal barrier tasks), the ranks of a host share memory, and the
   * ring orders itself by host; a row in rank order (`-rank-order`) shows what that ordering is worth.
   */
  ranksPerHost?: number;
}

interface Row {
  impl: string;
  link: string;
  hosts: number;
  ranks_per_host: number;
  bytes: number;
  time_ms: number;
  busbw_GBps: number;
  vs_mpi?: number;
  vs_line_rate?: number;
  /** Against iperf3 with every host sending to the next at once, as the ring's traffic goes. */
  vs_ring_line_rate?: number;
  cpu_share?: number;
  /** The share of the machine's CPUs busy during the timed iterations (every host shares them). */
  machine_busy?: number;
  /** A sealed ring's busbw over the clear ring's, same hosts, link and size. */
  vs_clear?: number;
  /** A 16-bit wire's busbw (counted in float32 bytes) over the float32 ring's, same hosts, link and size. */
  vs_fp32?: number;
  /** The ring in rank order over the ring ordered by host, same ranks, hosts, link and size. */
  vs_host_order?: number;
}

const busbw = (bytes: number, n: number, ms: number): number => (bytes * 2 * (n - 1)) / n / (ms / 1e3) / 1e9;
const round = (v: number, d = 3): number => Number(v.toFixed(d));

/** Debian's package for a tool the benchmark needs, installed once (the machines here are root). */
function ensureTool(command: string, packages: string[], say: (l: string) => void): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    say(`installing ${packages.join(' ')} (Debian) for the ${command} reference`);
    try {
      execFileSync(
        'sh',
        ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${packages.join(' ')}`],
        {
          stdio: 'ignore',
        },
      );
      return true;
    } catch {
      say(`could not install ${packages.join(' ')}: the ${command} reference is left out`);
      return false;
    }
  }
}

/** One iperf3 stream, server on `to`, for 4 s; its received rate in GB/s. */
async function stream(c: HostCluster, from: Host, to: Host): Promise<number> {
  const [file, ...args] = c.on(from, ['iperf3', '-c', to.address, '-t', '4', '-J']) as [string, ...string[]];
  const r = await execa(file, args, { reject: false, timeout: 60_000 });
  const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
  return j.end.sum_received.bits_per_second / 8 / 1e9;
}

/**
 * The line rate as a ring sees it, measured by iperf3: every host sends to the next at once (the
 * traffic of a ring allreduce, here on cores the hosts share); the slowest stream, in GB/s. With
 * two hosts this is one link in both directions; with one host pair and `oneWay`, one stream.
 */
async function lineRate(c: HostCluster, hosts: Host[], oneWay = false): Promise<{ GBps: number; machineBusy: number }> {
  const servers = hosts.map((h) => c.spawnOn(h, ['iperf3', '-s', '-1', '-B', h.address], process.env));
  await new Promise((r) => setTimeout(r, 500));
  try {
    const pairs = oneWay ? [[hosts[1], hosts[0]]] : hosts.map((h, i) => [h, hosts[(i + 1) % hosts.length]]);
    const from = cpuSample();
    const rates = await Promise.all(pairs.map(([a, b]) => stream(c, a as Host, b as Host)));
    return { GBps: Math.min(...rates), machineBusy: busySince(from) };
  } finally {
    for (const s of servers) s.kill('SIGKILL');
  }
}

/**
 * OpenMPI's MPI_Allreduce (../shared/anchors/mpi_allreduce.c) with `perHost` ranks on each of
 * `hosts` (ranks of one host next to each other, as mpirun maps by slot).
 */
async function mpiAcross(
  c: HostCluster,
  hosts: Host[],
  perHost: number,
  bytes: number,
  iters: number,
  tries = 3,
): Promise<number | undefined> {
  const dir = anchorsDir();
  if (!dir) return undefined;
  const bin = join(tmpdir(), 'sparkring-ref-mpi-allreduce');
  const src = join(dir, 'mpi_allreduce.c');
  if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(src).mtimeMs) execFileSync('mpicc', ['-O2', '-o', bin, src]);
  // The launch agent: mpirun calls it as `agent HOST command...`; HOST is the network namespace.
  const work = mkdtempSync(join(tmpdir(), 'sparkring-mpi-'));
  const agent = join(work, 'agent.sh');
  // nsenter into the namespace only (ip netns exec also remounts /sys, racing mpirun's parallel launches).
  writeFileSync(agent, '#!/bin/sh\nhost=$1\nshift\nexec nsenter --net=/run/netns/"$host" sh -c "$*"\n');
  chmodSync(agent, 0o755);
  const subnet = `${c.clientAddress.replace(/\.1$/, '.0')}/24`;
  const r = await execa(
    'mpirun',
    [
      '--allow-run-as-root',
      '--host',
      hosts.map((h) => `${h.netns}:${perHost}`).join(','),
      '-np',
      String(hosts.length * perHost),
      '--mca',
      'plm_rsh_agent',
      agent,
      '--mca',
      'plm_rsh_no_tree_spawn',
      '1',
      // TCP between the ranks of one host too: its shared-memory transport (vader) ended in a
      // segmentation fault in every launch across these namespaces, with or without CMA.
      '--mca',
      'btl',
      'tcp,self',
      '--mca',
      'btl_tcp_if_include',
      subnet,
      '--mca',
      'oob_tcp_if_include',
      subnet,
      bin,
      String(bytes),
      String(iters),
    ],
    // mpirun sometimes never hears from one of its daemons through the launch agent (seen about
    // once in ten launches here): give up on that launch after a while and start it again.
    { reject: false, timeout: 90_000 },
  );
  // "mpi n=2 bytes=67108864 time_ms=192.80 busbw_GBps=0.348"
  const ms = /time_ms=([\d.]+)/.exec(r.stdout)?.[1];
  if (ms) return Number(ms);
  return tries > 1 ? mpiAcross(c, hosts, perHost, bytes, iters, tries - 1) : undefined;
}

export async function hostsAllreduceBench(
  o: HostsAllreduceOptions,
  say: (line: string) => void,
): Promise<Record<string, unknown>> {
  const worker = packageFile('dist/bench/ring-worker.js');
  const withIperf = o.anchors && ensureTool('iperf3', ['iperf3'], say);
  const withMpi = o.anchors && anchorsDir() !== undefined && ensureTool('mpirun', ['openmpi-bin', 'libopenmpi-dev'], say);
  const rows: Row[] = [];
  const lines: Array<{ link: string; GBps?: number; hosts?: number; ringGBps?: number; machineBusy: number }> = [];
  for (const link of o.links) {
    const c = await HostCluster.start({ hosts: Math.max(...o.hosts), link: { rate: link } });
    try {
      const one = withIperf ? await lineRate(c, c.hosts.slice(0, 2), true) : undefined;
      const line = one?.GBps;
      if (one) {
        lines.push({ link, GBps: round(one.GBps), machineBusy: round(one.machineBusy, 2) });
        say(`link ${link}: iperf3 ${round(one.GBps)} GB/s, one stream (CPUs ${Math.round(one.machineBusy * 100)}% busy)`);
      }
      for (const n of o.hosts) {
        const hosts = c.hosts.slice(0, n);
        const ringStreams = withIperf ? await lineRate(c, hosts) : undefined;
        const ringLine = ringStreams?.GBps;
        if (ringStreams) {
          lines.push({ link, hosts: n, ringGBps: round(ringStreams.GBps), machineBusy: round(ringStreams.machineBusy, 2) });
          say(
            `link ${link}, ${n} hosts: iperf3 ${round(ringStreams.GBps)} GB/s per stream with every host sending to the next (CPUs ${Math.round(ringStreams.machineBusy * 100)}% busy)`,
          );
        }
        const perHost = o.ranksPerHost ?? 1;
        const ranks = n * perHost;
        for (const bytes of o.bytes) {
          const mpiMs = withMpi ? await mpiAcross(c, hosts, perHost, bytes, o.iters) : undefined;
          const mpiBw = mpiMs ? busbw(bytes, ranks, mpiMs) : undefined;
          if (mpiMs && mpiBw) {
            const row: Row = {
              impl: 'openmpi-tcp',
              link,
              hosts: n,
              ranks_per_host: perHost,
              bytes,
              time_ms: round(mpiMs, 2),
              busbw_GBps: round(mpiBw),
            };
            if (line) row.vs_line_rate = round(mpiBw / line, 2);
            if (ringLine) row.vs_ring_line_rate = round(mpiBw / ringLine, 2);
            rows.push(row);
            say(JSON.stringify(row));
          }
          let clearBw: number | undefined;
          const variants: Array<{ sealed: boolean; wire: WirePrecision; rankOrder?: boolean }> = [
            { sealed: false, wire: 'fp32' },
            ...(perHost > 1 ? [{ sealed: false, wire: 'fp32' as const, rankOrder: true }] : []),
            ...(o.encrypt ? [{ sealed: true, wire: 'fp32' as const }] : []),
            ...(o.wire ?? []).map((wire) => ({ sealed: false, wire })),
          ];
          const hostOf = (rank: number): Host => hosts[rank % n] as Host;
          for (const { sealed, wire, rankOrder } of variants) {
            const ring = await startRing(
              worker,
              ranks,
              (rank) => ({
                transport: 'tcp',
                sharedMemory: perHost > 1,
                hosts: rankOrder ? undefined : Array.from({ length: ranks }, (_, r) => hostOf(r).name),
                encrypt: sealed,
                wirePrecision: wire,
                bytes,
                iters: o.iters,
                tensors: 0,
                tensorBytes: 0,
                only: true,
                host: hostOf(rank).address,
              }),
              [],
              (rank, command) => c.on(hostOf(rank), command),
            );
            try {
              const r = (await ring.waitFor(0, 'result', 600_000)).result as {
                timeMs: number;
                cpuShare: number;
                machineBusy: number;
              };
              await Promise.all(ring.ranks.map((p) => p.exited));
              const bw = busbw(bytes, ranks, r.timeMs);
              const impl = sealed ? 'sparkring-tcp-sealed' : wire === 'fp32' ? 'sparkring-tcp' : `sparkring-tcp-${wire}`;
              const row: Row = {
                impl: rankOrder ? `${impl}-rank-order` : impl,
                link,
                hosts: n,
                ranks_per_host: perHost,
                bytes,
                time_ms: round(r.timeMs, 2),
                busbw_GBps: round(bw),
                cpu_share: round(r.cpuShare, 2),
                machine_busy: round(r.machineBusy, 2),
              };
              if (mpiBw) row.vs_mpi = round(bw / mpiBw, 2);
              if (line) row.vs_line_rate = round(bw / line, 2);
              if (ringLine) row.vs_ring_line_rate = round(bw / ringLine, 2);
              if (sealed && clearBw) row.vs_clear = round(bw / clearBw, 2);
              else if (rankOrder && clearBw) row.vs_host_order = round(bw / clearBw, 2);
              else if (wire !== 'fp32' && clearBw) row.vs_fp32 = round(bw / clearBw, 2);
              else clearBw = bw;
              rows.push(row);
              say(JSON.stringify(row));
            } finally {
              ring.killAll();
            }
          }
        }
      }
    } finally {
      await c.stop();
    }
  }
  say('loopback, the same sizes and process counts:');
  const loopback = await allreduceBench(
    { bytes: o.bytes, workers: o.hosts, iters: o.iters, transports: ['tcp'], anchors: o.anchors, encrypt: o.encrypt },
    say,
  );
  return { bench: 'allreduce-hosts', rows, lineRates: lines, loopback };
}
