/**
 * Chaos across hosts: N runs of a full-batch ctx.fit on 4 workers over a Spark standalone cluster of
 * 2 namespaced hosts x 2 cores (cluster/spark.ts), with --min-workers 2 and --max-attempts 3, each
 * with one fault drawn at random, at a phase drawn at random:
 *   faults: kill -9 of a Node worker or of an executor JVM; SIGSTOP of a rank for twice the
 *   collective timeout; a host's link down for 3 s; its link down for good; netem delay 200 ms or
 *   loss 5% on its link (where this kernel has netem); the loss of a whole host (every process on
 *   it killed, its link down);
 *   phases: formation (the first worker started), a training step, a checkpoint write (rank 0
 *   ending an epoch, about to write), teardown (the last epoch done).
 * A run ends right with the weights of a fault-free run (ctx.fit's full batch does not depend on the
 * world size), or with a typed error whose worker failures name the rank, the host and the phase.
 * A run that outlives its deadline plus 30 s is a hang. After each run: what the run left on the
 * hosts (processes, /dev/shm files); a lost or cut host is then brought back for the next run.
 */
import { execFileSync } from 'node:child_process';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Host, removeStaleClusters } from '../cluster/hosts.js';
import { listProcesses } from '../cluster/processes.js';
import { hostLossConf, SparkOnHosts } from '../cluster/spark.js';
import { RunError } from '../src/client/errors.js';
import { allreduce } from '../src/client/jobs/train.js';
import { packageFile } from '../src/util/package-file.js';

export const HOST_FAULTS = ['node', 'executor', 'freeze', 'flap', 'cut', 'delay', 'loss', 'host'] as const;
export type HostFault = (typeof HOST_FAULTS)[number];
export const PHASES = ['formation', 'step', 'checkpoint', 'teardown'] as const;
export type ChaosPhase = (typeof PHASES)[number];

const ROWS = 400;
const EPOCHS = 6;
const PEER_TIMEOUT_MS = 5000;
const COLLECTIVE_TIMEOUT_MS = 5000;
/** A run's deadline: formation, 6 epochs and two recoveries, with room for a 2-core machine. */
const RUN_DEADLINE_MS = 240_000;
const HANG_MS = RUN_DEADLINE_MS + 30_000;

const ENTRY = `// chaos --hosts: a full-batch linear model; rank 0 says when an epoch ends, just before its checkpoint
export default async function train(ctx) {
  const { tf } = ctx;
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [4], kernelInitializer: 'zeros' })] });
  model.compile({ optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError' });
  const history = await ctx.fit(model, {
    label: 'y',
    features: ['x0', 'x1', 'x2', 'x3'],
    batchSize: ${ROWS},
    epochs: ${EPOCHS},
    shuffle: false,
    callbacks: {
      onEpochEnd: async (epoch) => {
        await new Promise((r) => setTimeout(r, 500));
        if (ctx.rank === 0) ctx.log('epoch ' + (epoch + 1) + ' ends: checkpoint');
      },
    },
  });
  const weights = (await Promise.all(model.getWeights().map((w) => w.data()))).flatMap((d) => [...d]);
  return { weights, loss: history.history.loss.at(-1) };
}
`;

interface HostRunRecord {
  run: number;
  fault: HostFault;
  phase: ChaosPhase;
  injected: boolean;
  right: boolean;
  hung: boolean;
  seconds: number;
  outcome: string;
  sizes: string;
  attempts: number | null;
  leftovers: string[];
}

/** Whether this kernel has netem (sch_netem): tc refuses the qdisc where it does not. */
function netemWorks(): string | null {
  const ns = `srnetem${process.pid}`;
  try {
    execFileSync('ip', ['netns', 'add', ns]);
    execFileSync('ip', ['netns', 'exec', ns, 'tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms'], {
      stdio: 'pipe',
    });
    return null;
  } catch (err) {
    const text = String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim();
    return `netem is not available on this kernel (tc: ${text.split('\n')[0]})`;
  } finally {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
}

async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

function pidsOn(cluster: SparkOnHosts, h: Host, pattern: RegExp): number[] {
  return cluster.hosts.processesOn(h, pattern).map((p) => Number(p.split(' ')[0]));
}

function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)] as T;

/** Injects `fault` now on a random host (one that runs workers); what to undo after the run. */
function inject(cluster: SparkOnHosts, fault: HostFault): { host: Host; undo: () => Promise<void> } | undefined {
  const withWorkers = cluster.hosts.hosts.filter((h) => pidsOn(cluster, h, /runtime\/main\.js/).length > 0);
  const host = pick(withWorkers.length ? withWorkers : cluster.hosts.hosts);
  const none = async () => undefined;
  switch (fault) {
    case 'node': {
      const pids = pidsOn(cluster, host, /runtime\/main\.js/);
      return pids.length && signal(pick(pids), 'SIGKILL') ? { host, undo: none } : undefined;
    }
    case 'executor': {
      const pids = pidsOn(cluster, host, /CoarseGrainedExecutorBackend/);
      return pids.length && signal(pick(pids), 'SIGKILL') ? { host, undo: none } : undefined;
    }
    case 'freeze': {
      const pids = pidsOn(cluster, host, /runtime\/main\.js/);
      if (!pids.length) return undefined;
      const pid = pick(pids);
      signal(pid, 'SIGSTOP');
      const thaw = setTimeout(() => signal(pid, 'SIGCONT'), 2 * COLLECTIVE_TIMEOUT_MS);
      return {
        host,
        undo: async () => {
          clearTimeout(thaw);
          signal(pid, 'SIGCONT');
        },
      };
    }
    case 'flap': {
      cluster.hosts.cut(host);
      const up = setTimeout(() => cluster.hosts.restore(host), 3000);
      return {
        host,
        undo: async () => {
          clearTimeout(up);
          cluster.hosts.restore(host);
        },
      };
    }
    case 'cut':
      cluster.hosts.cut(host);
      // Its processes live on, cut off; once its link is back they learn that the run ended.
      return { host, undo: async () => cluster.hosts.restore(host) };
    case 'host':
      cluster.hosts.lose(host);
      return { host, undo: () => cluster.bringBack(host) };
    case 'delay':
    case 'loss':
      cluster.hosts.shape(host, fault === 'delay' ? { delay: '200ms' } : { loss: '5%' });
      return { host, undo: async () => cluster.hosts.shape(host, {}) };
  }
}

/** Resolves at the moment `phase` of a run comes (from its progress lines and processes). */
function phaseWatch(cluster: SparkOnHosts, phase: ChaosPhase, lines: string[], ended: () => boolean): Promise<boolean> {
  const step = 2 + Math.floor(Math.random() * (EPOCHS - 3)); // an epoch in the middle
  const epoch = 1 + Math.floor(Math.random() * (EPOCHS - 2));
  const seen = (re: RegExp) => lines.some((l) => re.test(l));
  const check = (): boolean => {
    if (ended()) return true;
    switch (phase) {
      case 'formation':
        return cluster.hosts.hosts.some((h) => pidsOn(cluster, h, /runtime\/main\.js/).length > 0);
      case 'step':
        return seen(new RegExp(`^\\[worker 0\\] step ${step} `));
      case 'checkpoint':
        return seen(new RegExp(`^\\[worker 0\\] epoch ${epoch} ends: checkpoint`));
      case 'teardown':
        return seen(new RegExp(`^\\[worker 0\\] step ${EPOCHS} `));
    }
  };
  return waitUntil(check, RUN_DEADLINE_MS).then((ok) => ok && !ended());
}

async function oneRun(
  n: number,
  cluster: SparkOnHosts,
  dir: string,
  data: string,
  fault: HostFault | null,
  phase: ChaosPhase,
  want: number[] | undefined,
): Promise<{ rec: HostRunRecord; weights?: number[] }> {
  const lines: string[] = [];
  const abort = new AbortController();
  let ended = false;
  const started = Date.now();
  const run = allreduce({
    entry: join(dir, 'train.mjs'),
    workers: 4,
    minWorkers: 2,
    maxAttempts: 3,
    master: cluster.masterUrl,
    data,
    experiments: join(dir, 'experiments'),
    peerTimeoutMs: PEER_TIMEOUT_MS,
    collectiveTimeoutMs: COLLECTIVE_TIMEOUT_MS,
    slotWaitSeconds: 60,
    signal: abort.signal,
    sparkConf: hostLossConf(4),
    onProgress: (line) => lines.push(line),
  }).finally(() => {
    ended = true;
  });
  let injected: { host: Host; undo: () => Promise<void> } | undefined;
  const injector = fault
    ? phaseWatch(cluster, phase, lines, () => ended).then((now) => {
        if (now) injected = inject(cluster, fault);
      })
    : Promise.resolve();
  let hung = false;
  const hang = setTimeout(() => {
    hung = true;
    abort.abort();
  }, HANG_MS);
  const settled = await run.then(
    (r) => ({ ok: true as const, r }),
    (err: unknown) => ({ ok: false as const, err }),
  );
  clearTimeout(hang);
  await injector;
  const seconds = (Date.now() - started) / 1000;
  let right = false;
  let outcome: string;
  let weights: number[] | undefined;
  let sizes = '4';
  let attempts: number | null = null;
  if (settled.ok) {
    weights = (settled.r.result as { weights: number[] }).weights;
    sizes = [4, ...settled.r.resizes.map((x) => x.toWorkers)].join(' -> ');
    attempts = settled.r.attempts;
    right = want === undefined || weights.every((w, i) => Math.abs(w - (want[i] as number)) < 1e-5);
    outcome = right ? 'the fault-free weights' : `weights ${JSON.stringify(weights)}, expected ${JSON.stringify(want)}`;
  } else {
    const e = settled.err;
    if (e instanceof RunError) {
      const d = e.detail;
      const named = e.kind !== 'worker' || (d.rank !== undefined && d.host !== undefined && d.phase !== undefined);
      right = !hung && d.code !== undefined && named;
      outcome = `${e.code ?? 'no code'} (rank ${d.rank ?? '-'}, host ${d.host ?? '-'}, phase ${d.phase ?? '-'}): ${e.message.split('\n')[0]}`;
    } else {
      outcome = `untyped: ${String((e as Error)?.message ?? e).split('\n')[0]}`;
    }
  }
  if (injected) await injected.undo();
  // What the run left: the hosts' sparkring processes and /dev/shm files, and this machine's drivers.
  const leftDrivers = () =>
    listProcesses()
      .filter((p) => /sparkring_submit\.py|deploy\.SparkSubmit/.test(p.args))
      .map((p) => `driver ${p.pid}`);
  const left = () => [...cluster.hosts.leftovers(), ...leftDrivers()];
  await waitUntil(() => left().length === 0, 60_000);
  const leftovers = left();
  for (const h of cluster.hosts.hosts) {
    for (const pid of pidsOn(cluster, h, /runtime\/main\.js/)) signal(pid, 'SIGKILL');
  }
  // A cut host's worker may have been dropped by the master meanwhile, or its process be gone (which
  // the master counts as alive for spark.worker.timeout): the next run needs every worker, idle.
  for (const h of cluster.hosts.hosts) {
    const running = pidsOn(cluster, h, /deploy\.worker\.Worker/).length > 0;
    if (!running || !(await cluster.aliveWorkers()).includes(h.address)) {
      cluster.hosts.lose(h);
      await cluster.bringBack(h);
    }
  }
  await waitUntil(() => cluster.idle(), 60_000);
  return {
    rec: {
      run: n,
      fault: fault ?? 'node',
      phase,
      injected: injected !== undefined,
      right,
      hung,
      seconds: Number(seconds.toFixed(1)),
      outcome,
      sizes,
      attempts,
      leftovers,
    },
    weights,
  };
}

export async function chaosHostsBench(
  o: { runs: number; faults?: readonly HostFault[]; phases?: readonly ChaosPhase[]; records?: string },
  log: (line: string) => void,
) {
  removeStaleClusters();
  const netem = netemWorks();
  const faults = (o.faults ?? HOST_FAULTS).filter((f) => !(netem && (f === 'delay' || f === 'loss')));
  if (netem) log(`bench chaos --hosts: ${netem}; the delay and loss faults are left out`);
  const dir = await mkdtemp(join(tmpdir(), 'sparkring-chaos-hosts-'));
  await writeFile(join(dir, 'train.mjs'), ENTRY);
  const python = packageFile('.venv/bin/python');
  const data = join(dir, 'linear.parquet');
  execFileSync(python, [packageFile('test/fixtures/write-table.py'), 'linear', String(ROWS), data]);
  log('bench chaos --hosts: a Spark standalone cluster of 2 namespaced hosts x 2 cores');
  const cluster = await SparkOnHosts.start({ hosts: 2, coresPerWorker: 2, memoryPerWorker: '1500m', python });
  const records: HostRunRecord[] = [];
  try {
    const reference = await oneRun(0, cluster, dir, data, null, 'step', undefined);
    if (!reference.weights) throw new Error(`bench chaos --hosts: the fault-free run failed: ${reference.rec.outcome}`);
    log(`bench chaos --hosts: fault-free run in ${reference.rec.seconds} s`);
    for (let n = 1; n <= o.runs; n++) {
      const fault = pick(faults);
      const phase = pick(o.phases ?? PHASES);
      const { rec } = await oneRun(n, cluster, dir, data, fault, phase, reference.weights);
      records.push(rec);
      if (o.records) await appendFile(o.records, `${JSON.stringify(rec)}\n`);
      log(
        `run ${n}: ${fault} at ${phase}${rec.injected ? '' : ' (not injected: the run ended first)'}: ${
          rec.right ? 'right' : rec.hung ? 'HUNG' : 'WRONG'
        } in ${rec.seconds} s, workers ${rec.sizes}: ${rec.outcome.slice(0, 240)}${rec.leftovers.length ? `; LEFT ${rec.leftovers.join(', ')}` : ''}`,
      );
    }
  } finally {
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
  const byFault: Record<string, { runs: number; right: number; hangs: number }> = {};
  for (const r of records) {
    const key = `${r.fault}/${r.phase}`;
    const b = byFault[key] ?? { runs: 0, right: 0, hangs: 0 };
    byFault[key] = b;
    b.runs++;
    if (r.right) b.right++;
    if (r.hung) b.hangs++;
  }
  return {
    bench: 'chaos',
    hosts: true,
    runs: records.length,
    injected: records.filter((r) => r.injected).length,
    right: records.filter((r) => r.right).length,
    hangs: records.filter((r) => r.hung).length,
    leftovers: records.reduce((s, r) => s + r.leftovers.length, 0),
    ...(netem ? { unavailable: { delay: netem, loss: netem } } : {}),
    byFault,
    records,
  };
}
