/**
 * Ring allreduce bus bandwidth (nccl-tests' busbw = bytes * 2(N-1)/N / time) for each data plane
 * (raw TCP, raw TCP with shared memory between the ranks of one host, gRPC; each raw one also with
 * --ring-encrypt, `encrypt`, its busbw beside the clear one's as vs_clear),
 * beside OpenMPI's MPI_Allreduce over TCP (../shared/anchors/mpi-allreduce.sh) and the loopback
 * TCP ceiling (../shared/anchors/tcp-loopback.sh), measured in the same run.
 */

import { startRing } from '../cluster/ring-processes.js';
import { packageFile } from '../src/util/package-file.js';
import { runAnchor } from './lib/anchors.js';

export const DATA_PLANES = ['tcp', 'shm', 'grpc'] as const;
export type DataPlane = (typeof DATA_PLANES)[number];

export interface AllreduceBenchOptions {
  bytes: number[];
  workers: number[];
  iters: number;
  transports: DataPlane[];
  chunkBytes?: number;
  anchors: boolean;
  /** Also each raw TCP plane with its frames sealed (--ring-encrypt). */
  encrypt?: boolean;
}

export interface AllreduceRow {
  impl: string;
  /** How rank 0's data reached rank 1 (Ring.dataPath). */
  data_path?: string;
  procs: number;
  bytes: number;
  time_ms: number;
  busbw_GBps: number;
  vs_mpi?: number;
  vs_tcp_loopback?: number;
  /** A sealed plane's busbw over the same plane's in clear, same run. */
  vs_clear?: number;
  fused_ms?: number;
  per_tensor_ms?: number;
  fused_speedup?: number;
}

const busbw = (bytes: number, n: number, ms: number): number => (n === 1 ? 0 : (bytes * 2 * (n - 1)) / n / (ms / 1e3) / 1e9);
const round = (v: number, d = 3): number => Number(v.toFixed(d));

export async function allreduceBench(
  o: AllreduceBenchOptions,
  progress: (line: string) => void,
): Promise<Record<string, unknown>> {
  const worker = packageFile('dist/bench/ring-worker.js');
  const rows: AllreduceRow[] = [];
  const ceiling = o.anchors ? await runAnchor('tcp-loopback.sh', []) : undefined;
  const ceilingGBps = typeof ceiling?.GBps === 'number' ? ceiling.GBps : undefined;
  if (ceiling) progress(`anchor tcp-loopback: ${JSON.stringify(ceiling)}`);
  const anchorsOut: Array<Record<string, unknown>> = [];
  for (const n of o.workers) {
    for (const bytes of o.bytes) {
      const mpi = o.anchors ? await runAnchor('mpi-allreduce.sh', [String(bytes), String(n), String(o.iters)]) : undefined;
      if (mpi) {
        anchorsOut.push(mpi);
        progress(`anchor: ${JSON.stringify(mpi)}`);
      }
      const planes: Array<[DataPlane, boolean]> = o.transports.flatMap(
        (t): Array<[DataPlane, boolean]> =>
          o.encrypt && t !== 'grpc'
            ? [
                [t, false],
                [t, true],
              ]
            : [[t, false]],
      );
      const clear = new Map<DataPlane, number>();
      for (const [transport, sealed] of planes) {
        const ring = await startRing(worker, n, () => ({
          transport: transport === 'grpc' ? 'grpc' : 'tcp',
          sharedMemory: transport === 'shm',
          encrypt: sealed,
          bytes,
          iters: o.iters,
          chunkBytes: o.chunkBytes,
          tensors: 100,
          tensorBytes: 64 * 1024,
        }));
        try {
          const r = (await ring.waitFor(0, 'result', 600_000)).result as {
            timeMs: number;
            fusedMs: number;
            perTensorMs: number;
            dataPath: string;
          };
          await Promise.all(ring.ranks.map((p) => p.exited));
          const bw = busbw(bytes, n, r.timeMs);
          const row: AllreduceRow = {
            impl: `sparkring-${transport}${sealed ? '-sealed' : ''}`,
            data_path: r.dataPath,
            procs: n,
            bytes,
            time_ms: round(r.timeMs, 2),
            busbw_GBps: round(bw),
            fused_ms: round(r.fusedMs, 2),
            per_tensor_ms: round(r.perTensorMs, 2),
            fused_speedup: round(r.perTensorMs / r.fusedMs, 1),
          };
          if (typeof mpi?.busbw_GBps === 'number' && mpi.busbw_GBps > 0) row.vs_mpi = round(bw / mpi.busbw_GBps, 2);
          if (ceilingGBps) row.vs_tcp_loopback = round(bw / ceilingGBps, 2);
          if (!sealed) clear.set(transport, bw);
          const clearBw = clear.get(transport);
          if (sealed && clearBw) row.vs_clear = round(bw / clearBw, 2);
          rows.push(row);
          progress(JSON.stringify(row));
        } finally {
          ring.killAll();
        }
      }
    }
  }
  return { bench: 'allreduce', rows, anchors: { mpi: anchorsOut, tcp_loopback: ceiling ?? null } };
}
