/**
 * Ring allreduce across namespaced hosts (cluster/hosts.ts) over shaped links, beside OpenMPI's
 * MPI_Allreduce over TCP across the same hosts and links (mpirun reaches each namespace through a
 * launch agent that enters it) and the link's line rate measured by iperf3 between two hosts, all
 * in the same run; the loopback figures (bench/allreduce.ts) beside them.
 *
 *   npm run bench -- allreduce --hosts 2,3 --link 10gbit,1gbit [--json]
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { type Host, HostCluster } from '../cluster/hosts.js';
import { packageFile } from '../src/util/package-file.js';
import { allreduceBench } from './allreduce.js';
import { anchorsDir } from './lib/anchors.js';
import { startRing } from './lib/processes.js';

export interface HostsAllreduceOptions {
  hosts: number[];
  links: string[];
  bytes: number[];
  iters: number;
  anchors: boolean;
}

interface Row {
  impl: string;
  link: string;
  hosts: number;
  bytes: number;
  time_ms: number;
  busbw_GBps: number;
  vs_mpi?: number;
  vs_line_rate?: number;
  cpu_share?: number;
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

/** iperf3, one stream, host 1 to host 2: the link's line rate in GB/s. */
async function lineRate(c: HostCluster, a: Host, b: Host): Promise<number> {
  const server = c.spawnOn(a, ['iperf3', '-s', '-1', '-B', a.address], process.env);
  await new Promise((r) => setTimeout(r, 500));
  try {
    const out = c.run(b, ['iperf3', '-c', a.address, '-t', '4', '-J']);
    const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
    return j.end.sum_received.bits_per_second / 8 / 1e9;
  } finally {
    server.kill('SIGKILL');
  }
}

/** OpenMPI's MPI_Allreduce (../shared/anchors/mpi_allreduce.c) with one rank on each of `hosts`. */
async function mpiAcross(c: HostCluster, hosts: Host[], bytes: number, iters: number): Promise<number | undefined> {
  const dir = anchorsDir();
  if (!dir) return undefined;
  const bin = join(tmpdir(), 'sparkring-ref-mpi-allreduce');
  const src = join(dir, 'mpi_allreduce.c');
  if (!existsSync(bin) || statSync(bin).mtimeMs < statSync(src).mtimeMs) execFileSync('mpicc', ['-O2', '-o', bin, src]);
  // The launch agent: mpirun calls it as `agent HOST command...`; HOST is the network namespace.
  const work = mkdtempSync(join(tmpdir(), 'sparkring-mpi-'));
  const agent = join(work, 'agent.sh');
  writeFileSync(agent, '#!/bin/sh\nhost=$1\nshift\nexec ip netns exec "$host" sh -c "$*"\n');
  chmodSync(agent, 0o755);
  const subnet = `${c.clientAddress.replace(/\.1$/, '.0')}/24`;
  const r = await execa(
    'mpirun',
    [
      '--allow-run-as-root',
      '--host',
      hosts.map((h) => h.netns).join(','),
      '-np',
      String(hosts.length),
      '--mca',
      'plm_rsh_agent',
      agent,
      '--mca',
      'plm_rsh_no_tree_spawn',
      '1',
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
    { reject: false, timeout: 300_000 },
  );
  // "mpi n=2 bytes=67108864 time_ms=192.80 busbw_GBps=0.348"
  const ms = /time_ms=([\d.]+)/.exec(r.stdout)?.[1];
  return ms ? Number(ms) : undefined;
}

export async function hostsAllreduceBench(
  o: HostsAllreduceOptions,
  say: (line: string) => void,
): Promise<Record<string, unknown>> {
  const worker = packageFile('dist/bench/ring-worker.js');
  const withIperf = o.anchors && ensureTool('iperf3', ['iperf3'], say);
  const withMpi = o.anchors && anchorsDir() !== undefined && ensureTool('mpirun', ['openmpi-bin', 'libopenmpi-dev'], say);
  const rows: Row[] = [];
  const lines: Array<{ link: string; GBps: number }> = [];
  for (const link of o.links) {
    const c = await HostCluster.start({ hosts: Math.max(...o.hosts), link: { rate: link } });
    try {
      const line = withIperf ? await lineRate(c, c.hosts[0] as Host, c.hosts[1] as Host) : undefined;
      if (line !== undefined) {
        lines.push({ link, GBps: round(line) });
        say(`link ${link}: iperf3 ${round(line)} GB/s`);
      }
      for (const n of o.hosts) {
        const hosts = c.hosts.slice(0, n);
        for (const bytes of o.bytes) {
          const mpiMs = withMpi ? await mpiAcross(c, hosts, bytes, o.iters) : undefined;
          const mpiBw = mpiMs ? busbw(bytes, n, mpiMs) : undefined;
          if (mpiMs && mpiBw) {
            const row: Row = { impl: 'openmpi-tcp', link, hosts: n, bytes, time_ms: round(mpiMs, 2), busbw_GBps: round(mpiBw) };
            if (line) row.vs_line_rate = round(mpiBw / line, 2);
            rows.push(row);
            say(JSON.stringify(row));
          }
          const ring = await startRing(
            worker,
            n,
            (rank) => ({
              transport: 'tcp',
              bytes,
              iters: o.iters,
              tensors: 0,
              tensorBytes: 0,
              only: true,
              host: hosts[rank]?.address,
            }),
            [],
            (rank, command) => c.on(hosts[rank] as Host, command),
          );
          try {
            const r = (await ring.waitFor(0, 'result', 600_000)).result as { timeMs: number; cpuShare: number };
            await Promise.all(ring.ranks.map((p) => p.exited));
            const bw = busbw(bytes, n, r.timeMs);
            const row: Row = {
              impl: 'sparkring-tcp',
              link,
              hosts: n,
              bytes,
              time_ms: round(r.timeMs, 2),
              busbw_GBps: round(bw),
              cpu_share: round(r.cpuShare, 2),
            };
            if (mpiBw) row.vs_mpi = round(bw / mpiBw, 2);
            if (line) row.vs_line_rate = round(bw / line, 2);
            rows.push(row);
            say(JSON.stringify(row));
          } finally {
            ring.killAll();
          }
        }
      }
    } finally {
      await c.stop();
    }
  }
  say('loopback, the same sizes and process counts:');
  const loopback = await allreduceBench(
    { bytes: o.bytes, workers: o.hosts, iters: o.iters, transports: ['tcp'], anchors: o.anchors },
    say,
  );
  return { bench: 'allreduce-hosts', rows, lineRates: lines, loopback };
}
