/**
 * Peers: time to a trained model, end to end, beside what a Spark user would run instead, on the
 * same machine, data and Spark (local-cluster[W,1,1024]) in one run, systems alternating each round:
 * sparkring through its CLI and through `sparkring.allreduce` in a warm PySpark session,
 * spark-tensorflow-distributor's MirroredStrategyRunner, PySpark's TorchDistributor, and one Keras
 * process (1 thread and TensorFlow's default threads). The peers come from PyPI into a bench-only
 * venv (.cache/peers, scripts/peers/*requirements.txt); each system's runner is in bench/peers/.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus as cpus_, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { packageRoot, sparkPaths } from '../src/client/submission/paths.js';
import { packageFile } from '../src/util/package-file.js';
import { median } from './lib/spark.js';

export const PEER_MODELS = ['mlp', 'cnn'] as const;
export type PeerModel = (typeof PEER_MODELS)[number];
export const PEER_SYSTEMS = ['sparkring', 'sparkring-session', 'std', 'torch', 'keras-1thread', 'keras'] as const;
export type PeerSystem = (typeof PEER_SYSTEMS)[number];

/** The workload: 128 rows per worker per step, SGD; the CNN on fewer rows (a CPU run of minutes otherwise). */
const WORKLOADS: Record<
  PeerModel,
  { rows: number; epochs: number; batch: number; lr: number; targetAcc: number; labels: 'linear' | 'blocks' }
> = {
  mlp: { rows: 60_000, epochs: 3, batch: 128, lr: 0.05, targetAcc: 0.75, labels: 'linear' },
  cnn: { rows: 30_000, epochs: 3, batch: 128, lr: 0.1, targetAcc: 0.4, labels: 'blocks' },
};

export interface PeerRow {
  impl: PeerSystem;
  model: PeerModel;
  workers: number;
  /** Submit (the process started; for the warm session, the allreduce call) to the runner's return. */
  wall_s: number | null;
  first_step_s: number | null;
  /**
   * Steady rows/s: the epochs after the first over their seconds (every system's first epoch
   * carries its tracing). One epoch alone varied 2x between runs of the same Keras process here.
   */
  samples_per_s: number | null;
  /** Submit to the end of the first epoch whose training accuracy reached the workload's target. */
  time_to_acc_s: number | null;
  acc: number | null;
  /** The model on disk to the runner's return. */
  teardown_s: number | null;
  /** With more than one round: every round's wall_s, in run order (the row is the median one). */
  rounds_wall_s?: (number | null)[];
  error?: string;
}

interface RunnerTimes {
  first_step_at: number | null;
  epochs: { at: number; acc: number }[];
  saved_at?: number;
  submit_at?: number;
  returned_at?: number;
}

const PEERS_VENV = '.cache/peers';
const round = (v: number, digits = 1): number => Number(v.toFixed(digits));

/** Installs the peers' venv when its requirements changed since the last install. */
async function peersPython(progress: (l: string) => void): Promise<string> {
  const root = packageRoot();
  const venv = join(root, PEERS_VENV);
  const python = join(venv, 'bin', 'python');
  const stamp = join(venv, '.installed');
  const reqs = ['requirements.txt', 'no-deps-requirements.txt'].map((f) => join(root, 'scripts', 'peers', f));
  const wanted = (await Promise.all(reqs.map((f) => readFile(f, 'utf8')))).join('\n');
  if (existsSync(stamp) && (await readFile(stamp, 'utf8')) === wanted) return python;
  progress(`installing the peers (torch, spark-tensorflow-distributor, tf-keras) in ${venv}: a few minutes, once`);
  if (!existsSync(python)) await execa('python3', ['-m', 'venv', venv]);
  const pip = [python, '-m', 'pip', 'install', '--quiet', '--disable-pip-version-check'];
  await execa(pip[0] as string, [...pip.slice(1), '-r', reqs[0] as string], { stdio: 'inherit' });
  await execa(pip[0] as string, [...pip.slice(1), '--no-deps', '-r', reqs[1] as string], { stdio: 'inherit' });
  await writeFile(stamp, wanted);
  return python;
}

/** The lines of a runner's stdout that are its JSON reports (Spark's own lines are not). */
function jsonLines(stdout: string): RunnerTimes[] {
  return stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as RunnerTimes);
}

/** A runner's last report. */
function lastJson(stdout: string): RunnerTimes {
  const last = jsonLines(stdout).at(-1);
  if (!last) throw new Error('the runner printed no result');
  return last;
}

function rowOf(impl: PeerSystem, model: PeerModel, workers: number, t: RunnerTimes, submitAt: number, endedAt: number): PeerRow {
  const w = WORKLOADS[model];
  const last = t.epochs.at(-1);
  const steady =
    t.epochs.length > 1 ? { from: t.epochs[0]?.at, epochs: t.epochs.length - 1 } : { from: t.first_step_at, epochs: 1 };
  const reached = t.epochs.find((e) => e.acc >= w.targetAcc);
  return {
    impl,
    model,
    workers,
    wall_s: round((endedAt - submitAt) / 1000),
    first_step_s: t.first_step_at === null ? null : round((t.first_step_at - submitAt) / 1000),
    samples_per_s: last && steady.from ? Math.round((w.rows * steady.epochs) / ((last.at - steady.from) / 1000)) : null,
    time_to_acc_s: reached ? round((reached.at - submitAt) / 1000) : null,
    acc: last ? round(last.acc, 3) : null,
    teardown_s: t.saved_at === undefined ? null : round((endedAt - t.saved_at) / 1000, 2),
  };
}

const failed = (impl: PeerSystem, model: PeerModel, workers: number, error: string): PeerRow => ({
  impl,
  model,
  workers,
  wall_s: null,
  first_step_s: null,
  samples_per_s: null,
  time_to_acc_s: null,
  acc: null,
  teardown_s: null,
  error,
});

export async function peersBench(
  o: { models: PeerModel[]; systems: PeerSystem[]; workers: number; rounds: number },
  progress: (l: string) => void,
) {
  const peers = await peersPython(progress);
  const ours = sparkPaths().python;
  const dir = await mkdtemp(join(tmpdir(), 'sparkring-peers-'));
  const rounds: PeerRow[][] = [];
  try {
    for (const model of o.models) {
      const w = WORKLOADS[model];
      progress(`data: ${w.rows} x 784 float32 for the ${model} (Parquet for Spark, .npy for the peers)`);
      await execa(peers, [packageFile('bench/peers/make_data.py'), join(dir, model), String(w.rows), '6', w.labels]);
    }
    const args = (model: PeerModel, workers: number) => {
      const w = WORKLOADS[model];
      return [model, String(w.epochs), String(w.batch), String(w.lr), join(dir, model), String(workers)];
    };
    const python = (bin: string) => ({
      PYSPARK_PYTHON: bin,
      PYSPARK_DRIVER_PYTHON: bin,
      TF_CPP_MIN_LOG_LEVEL: '2',
    });
    /** One cold system: from spawning its process to the process's exit. */
    const cold = async (
      impl: PeerSystem,
      model: PeerModel,
      workers: number,
      file: string,
      argv: string[],
      env = {},
      times: (stdout: string) => RunnerTimes = lastJson,
    ) => {
      const submitAt = Date.now();
      const r = await execa(file, argv, { env, reject: false, all: true });
      const endedAt = Date.now();
      if (r.exitCode !== 0) return failed(impl, model, workers, `exit ${r.exitCode}: ${(r.all ?? '').slice(-1500)}`);
      return rowOf(impl, model, workers, times(r.stdout), submitAt, endedAt);
    };
    const run = async (system: PeerSystem, model: PeerModel): Promise<PeerRow[]> => {
      const W = o.workers;
      switch (system) {
        case 'sparkring': {
          const hp = ['model', 'epochs', 'batch', 'lr'].flatMap((k, i) => ['--hp', `${k}=${args(model, W)[i]}`]);
          const experiments = join(dir, 'experiments');
          const cli = [packageFile('dist/src/cli/main.js'), 'allreduce', packageFile('bench/entries/peers-fit.mjs')];
          const flags = ['--workers', String(W), '--data', join(dir, model, 'parquet'), '--experiments', experiments];
          // --json prints the run: rank 0's return value is its `result`.
          const result = (stdout: string) => (JSON.parse(stdout) as { result: RunnerTimes }).result;
          return [await cold(system, model, W, process.execPath, [...cli, ...flags, ...hp, '--json'], {}, result)];
        }
        case 'sparkring-session': {
          // Two runs in one PySpark session: the second is the warm one this row reports.
          const script = packageFile('bench/peers/sparkring_session.py');
          const extra = ['2', packageFile('bench/entries/peers-fit.mjs'), join(dir, 'experiments')];
          const r = await execa(ours, [script, ...args(model, W), ...extra], { env: python(ours), reject: false, all: true });
          if (r.exitCode !== 0) return [failed(system, model, W, `exit ${r.exitCode}: ${(r.all ?? '').slice(-1500)}`)];
          const warm = lastJson(r.stdout);
          return [rowOf(system, model, W, warm, warm.submit_at as number, warm.returned_at as number)];
        }
        case 'std':
        case 'torch': {
          const script = packageFile(`bench/peers/${system === 'std' ? 'std' : 'torch'}_train.py`);
          return [await cold(system, model, W, peers, [script, ...args(model, W)], python(peers))];
        }
        case 'keras-1thread':
        case 'keras': {
          const threads = system === 'keras' ? '0' : '1';
          const argv = [packageFile('bench/peers/keras_fit.py'), ...args(model, 1), threads];
          return [await cold(system, model, 1, peers, argv, python(peers))];
        }
      }
    };
    for (let r = 0; r < o.rounds; r++) {
      const these: PeerRow[] = [];
      for (const model of o.models) {
        for (const system of o.systems) {
          progress(`round ${r + 1} of ${o.rounds}: ${system}, ${model}`);
          const rows = await run(system, model);
          for (const row of rows) progress(`  ${JSON.stringify(row)}`);
          these.push(...rows);
        }
      }
      rounds.push(these);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const rows: PeerRow[] = [];
  for (const model of o.models) {
    for (const impl of o.systems) {
      const each = rounds.map((r) => r.find((row) => row.impl === impl && row.model === model) as PeerRow);
      const measured = each.filter((row) => row.wall_s !== null).sort((a, b) => (a.wall_s as number) - (b.wall_s as number));
      const mid = measured[Math.floor((measured.length - 1) / 2)] ?? (each[0] as PeerRow);
      rows.push(each.length > 1 ? { ...mid, rounds_wall_s: each.map((row) => row.wall_s) } : mid);
    }
  }
  return {
    bench: 'peers',
    machine: machineLine(),
    master: `local-cluster[${o.workers},1,1024]`,
    rounds: o.rounds,
    rows,
    goals: goals(rounds, o.models),
  };
}

/** Each goal's ratio per round, and the median of those (a slow spell of the VM lands on both sides). */
function goals(rounds: PeerRow[][], models: PeerModel[]) {
  const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? round(a / b, 2) : null);
  const per = (rows: PeerRow[], m: PeerModel) => {
    const at = (impl: PeerSystem) => rows.find((r) => r.impl === impl && r.model === m);
    return {
      wall_vs_std: ratio(at('sparkring')?.wall_s, at('std')?.wall_s),
      wall_vs_torch: ratio(at('sparkring')?.wall_s, at('torch')?.wall_s),
      wall_vs_keras_1thread: ratio(at('sparkring')?.wall_s, at('keras-1thread')?.wall_s),
      first_step_s: at('sparkring')?.first_step_s ?? null,
      warm_session_first_step_s: at('sparkring-session')?.first_step_s ?? null,
      samples_vs_keras_1thread: ratio(at('sparkring')?.samples_per_s, at('keras-1thread')?.samples_per_s),
    };
  };
  const mid = (xs: (number | null)[]) => {
    const v = xs.filter((x): x is number => x !== null);
    return v.length ? round(median(v), 2) : null;
  };
  return Object.fromEntries(
    models.map((m) => {
      const each = rounds.map((r) => per(r, m));
      const names = Object.keys(per([], m)) as (keyof ReturnType<typeof per>)[];
      return [m, Object.fromEntries(names.map((n) => [n, mid(each.map((g) => g[n]))]))];
    }),
  );
}

function machineLine(): string {
  const cpus = cpus_();
  return `${cpus.length} x ${cpus[0]?.model ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, no GPU`;
}
