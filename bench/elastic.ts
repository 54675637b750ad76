/**
 * Elastic: the seconds of training a host loss costs, with --min-workers (the ring shrinks, then
 * grows back when the cluster replaces the executors) beside today's retry at the same size (which
 * waits for the replacements), on a loss the cluster can replace: a Spark standalone cluster of 3
 * namespaced hosts x 2 cores (cluster/spark.ts), a 4-worker full-batch ctx.fit spread over them, and
 * the host of a rank other than 0 lost for good (every process killed, its link down) after the
 * third epoch. Figures per mode (medians of --rounds): seconds from the loss to the first step of
 * the next stage (training again), and the run's wall time beside the same run without a fault.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Host, removeStaleClusters } from '../cluster/hosts.js';
import { rankOf } from '../cluster/processes.js';
import { hostLossConf, SparkOnHosts } from '../cluster/spark.js';
import { allreduce } from '../src/client/jobs/train.js';
import { packageFile } from '../src/util/package-file.js';
import { median } from './lib/spark.js';

export const MODES = ['none', 'elastic', 'retry'] as const;
export type Mode = (typeof MODES)[number];

const ROWS = 400;
const LOSE_AFTER_STEP = 3;

export interface ElasticRow {
  mode: Mode;
  training_again_s: number | null;
  wall_s: number;
  lost_s: number | null;
  attempts: number;
  sizes: string;
}

interface OneRun {
  wallS: number;
  againS: number | null;
  attempts: number;
  sizes: string;
}

async function oneRun(
  cluster: SparkOnHosts,
  dir: string,
  data: string,
  mode: Mode,
  o: { epochs: number; epochMs: number; verbose?: boolean; log: (line: string) => void },
): Promise<OneRun> {
  let lost: Host | undefined;
  let lostAt = 0;
  let nextStage = false;
  let againAt: number | undefined;
  const started = Date.now();
  const r = await allreduce({
    entry: packageFile('bench/entries/elastic-fit.mjs'),
    workers: 4,
    master: cluster.masterUrl,
    data,
    hparams: { epochs: o.epochs, rows: ROWS, epochMs: o.epochMs },
    experiments: join(dir, 'experiments'),
    // A retry waits for the master to drop the lost worker (spark.worker.timeout, checked every quarter of it) and for replacements.
    slotWaitSeconds: 180,
    ...(mode === 'elastic' ? { minWorkers: 2 } : { maxAttempts: 3 }),
    sparkConf: hostLossConf(4),
    onProgress: (line) => {
      if (lost && o.verbose) o.log(`  +${Date.now() - lostAt} ms ${line}`);
      if (lost && /^sparkring: (stage \d+|attempt \d+ of)/.test(line)) nextStage = true;
      if (nextStage && againAt === undefined && /^\[worker \d+\] step \d+/.test(line)) againAt = Date.now();
      const m = /^\[worker 0\] step (\d+)/.exec(line);
      if (mode === 'none' || lost || !m || Number(m[1]) < LOSE_AFTER_STEP) return;
      // A host with a rank other than 0 (rank 0's host keeps the driver's view of the run simple).
      lost = cluster.hosts.hosts.find((h) => {
        const ranks = cluster.hosts.processesOn(h, /runtime\/main\.js/).map((p) => rankOf(Number(p.split(' ')[0])));
        return ranks.length > 0 && !ranks.includes(0);
      });
      if (lost) {
        lostAt = Date.now();
        cluster.hosts.lose(lost);
      }
    },
  });
  const wallS = (Date.now() - started) / 1000;
  if (lost) await cluster.bringBack(lost);
  if (mode !== 'none' && !lost) throw new Error('bench elastic: no host other than rank 0 had a rank to lose');
  const sizes = [4, ...r.resizes.map((x) => x.toWorkers)].join(' -> ');
  return { wallS, againS: againAt === undefined ? null : (againAt - lostAt) / 1000, attempts: r.attempts, sizes };
}

export async function elasticBench(
  o: { rounds: number; epochs: number; epochMs: number; workerTimeoutS: number; modes?: Mode[]; verbose?: boolean },
  log: (line: string) => void,
): Promise<{ bench: 'elastic'; workerTimeoutS: number; rows: ElasticRow[] }> {
  removeStaleClusters();
  const dir = await mkdtemp(join(tmpdir(), 'sparkring-bench-elastic-'));
  const python = packageFile('.venv/bin/python');
  const data = join(dir, 'linear.parquet');
  execFileSync(python, [packageFile('test/fixtures/write-table.py'), 'linear', String(ROWS), data]);
  log(
    `bench elastic: starting a Spark standalone cluster of 3 namespaced hosts x 2 cores, spark.worker.timeout ${o.workerTimeoutS} s`,
  );
  // The master drops a lost host's worker after --worker-timeout-s without heartbeats (Spark's
  // spark.worker.timeout, 60 s unless set), which frees the cores its executors held for replacements.
  const cluster = await SparkOnHosts.start({
    hosts: 3,
    coresPerWorker: 2,
    memoryPerWorker: '1500m',
    python,
    workerTimeoutSeconds: o.workerTimeoutS,
  });
  const modes = o.modes ?? [...MODES];
  const runs = new Map<Mode, OneRun[]>(modes.map((m) => [m, []]));
  try {
    for (let round = 0; round < o.rounds; round++) {
      for (const mode of modes) {
        const run = await oneRun(cluster, dir, data, mode, { ...o, log });
        runs.get(mode)?.push(run);
        log(
          `bench elastic: round ${round + 1} ${mode}: wall ${run.wallS.toFixed(1)} s, training again ${run.againS?.toFixed(1) ?? '-'} s after the loss, workers ${run.sizes}, ${run.attempts} stages`,
        );
      }
    }
  } finally {
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
  const none = runs.get('none');
  const baseline = none ? median(none.map((r) => r.wallS)) : null;
  const rows = modes.map((mode): ElasticRow => {
    const rs = runs.get(mode) ?? [];
    const again = rs.map((r) => r.againS).filter((x): x is number => x !== null);
    const wall = median(rs.map((r) => r.wallS));
    return {
      mode,
      training_again_s: again.length ? Number(median(again).toFixed(2)) : null,
      wall_s: Number(wall.toFixed(2)),
      lost_s: mode === 'none' || baseline === null ? null : Number((wall - baseline).toFixed(2)),
      attempts: rs.at(-1)?.attempts ?? 0,
      sizes: rs.at(-1)?.sizes ?? '',
    };
  });
  return { bench: 'elastic', workerTimeoutS: o.workerTimeoutS, rows };
}
