/**
 * Chaos: N runs (allreduce runs and searches, through the CLI, `--max-attempts 3`), each with one
 * random fault at a random time: kill -9 of a Node worker, of a task's Python worker or of an
 * executor JVM, a restart of Redis, or a Node worker frozen with SIGSTOP. Prints how many runs
 * ended with the right result, how many were lost or hung, and what was left behind (processes,
 * staging files, /dev/shm partition files). Entries and folders live in a temp folder.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { listProcesses } from '../cluster/processes.js';
import { freePort } from '../src/util/net.js';
import { packageFile } from '../src/util/package-file.js';

export const FAULTS = ['node', 'python', 'executor', 'redis', 'freeze'] as const;
export type Fault = (typeof FAULTS)[number];
export const KINDS = ['allreduce', 'search'] as const;
export type Kind = (typeof KINDS)[number];

const STEPS = 40;
const ALLREDUCE_ENTRY = `// chaos: deterministic steps over the ring, a checkpoint every 5 steps
export default async function train(ctx: any) {
  const saved = await ctx.checkpoint.load();
  const w = saved ? Float64Array.from(saved.w) : new Float64Array(4);
  for (let s = (saved?.step ?? 0) + 1; s <= ${STEPS}; s++) {
    const g = new Float64Array(4).map((_, i) => Math.sin(s * (i + 1) + ctx.rank));
    const avg = await ctx.allreduce(g, 'mean');
    for (let i = 0; i < 4; i++) w[i] -= 0.1 * avg[i];
    ctx.report({ loss: w.reduce((a, b) => a + b * b, 0) }, s);
    if (s % 5 === 0) { await ctx.checkpoint.save({ step: s, w: Array.from(w) }); await ctx.barrier(); }
    await new Promise((r) => setTimeout(r, 150));
  }
  return { w: Array.from(w) };
}
`;
const SEARCH_STEPS = 8;
const SEARCH_ENTRY = `// chaos: a trial whose metric is known, (x - 3)^2 + 1/step
export default async function train(ctx: any) {
  const x = Number(ctx.hparams.x);
  const from = (await ctx.checkpoint.load())?.step ?? 0;
  // A trial that resumes after its last step still returns its last loss.
  let loss = from > 0 ? (x - 3) ** 2 + 1 / from : Number.NaN;
  for (let step = from + 1; step <= ${SEARCH_STEPS}; step++) {
    loss = (x - 3) ** 2 + 1 / step;
    ctx.report({ loss }, step);
    await ctx.checkpoint.save({ step });
    await new Promise((r) => setTimeout(r, 300));
  }
  return { loss };
}
`;
const GRID = [1, 2, 3, 4];

/** What the allreduce entry returns when nothing goes wrong (2 workers). */
function expectedWeights(workers: number): number[] {
  const w = [0, 0, 0, 0];
  for (let s = 1; s <= STEPS; s++) {
    for (let i = 0; i < 4; i++) {
      let sum = 0;
      for (let r = 0; r < workers; r++) sum += Math.sin(s * (i + 1) + r);
      w[i] = (w[i] as number) - 0.1 * (sum / workers);
    }
  }
  return w;
}

/** A redis-server the bench owns (append-only, fsync always: a restart keeps the queue). */
class ChaosRedis {
  private child: ChildProcess | undefined;
  readonly password = randomBytes(16).toString('hex');
  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  static async start(dir: string): Promise<ChaosRedis> {
    const r = new ChaosRedis(await freePort(), dir);
    await r.up();
    return r;
  }

  get url(): string {
    return `redis://:${this.password}@127.0.0.1:${this.port}`;
  }

  async up(): Promise<void> {
    const child = spawn('redis-server', ['-'], { stdio: ['pipe', 'pipe', 'ignore'] });
    child.stdin?.end(
      [
        `port ${this.port}`,
        'bind 127.0.0.1',
        `dir ${this.dir}`,
        'save ""',
        'appendonly yes',
        'appendfsync always',
        `requirepass ${this.password}`,
        '',
      ].join('\n'),
    );
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.includes('Ready to accept connections')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`redis-server exited (${code}): ${out.slice(-300)}`)));
    });
    child.stdout?.resume();
  }

  /** kill -9, then the same server back on the same port after `downMs`. */
  async restart(downMs: number): Promise<void> {
    await this.kill();
    await new Promise((r) => setTimeout(r, downMs));
    await this.up();
  }

  async kill(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }
}

const processes = listProcesses;

const LEFTOVER =
  /sparkring_submit\.py|runtime\/main\.js|runtime\/trial\.js|hpo\/agent\.js|CoarseGrainedExecutorBackend|deploy\.SparkSubmit|pyspark\.daemon|pyspark\.worker|^redis-server /;

/** The pid a fault of `fault` hits in a run of `kind`, if one is running. */
function victim(fault: Exclude<Fault, 'redis'>, kind: Kind, redisPid: number | undefined): number | undefined {
  const ps = processes();
  const pick = (re: RegExp): number | undefined => {
    const found = ps.filter((p) => re.test(p.args));
    return found[Math.floor(Math.random() * found.length)]?.pid;
  };
  if (fault === 'executor') return pick(/CoarseGrainedExecutorBackend/);
  if (fault === 'python') {
    const daemons = new Set(ps.filter((p) => /-m pyspark\.daemon/.test(p.args)).map((p) => p.pid));
    const workers = ps.filter((p) => daemons.has(p.pid) && daemons.has(p.ppid));
    return workers[Math.floor(Math.random() * workers.length)]?.pid;
  }
  const node =
    kind === 'allreduce' ? /runtime\/main\.js/ : fault === 'freeze' ? /hpo\/agent\.js/ : /runtime\/trial\.js|hpo\/agent\.js/;
  const pid = pick(node);
  return pid === redisPid ? undefined : pid;
}

interface RunRecord {
  run: number;
  kind: Kind;
  fault: Fault;
  faultAtMs: number | null;
  injected: boolean;
  right: boolean;
  hung: boolean;
  exitCode: number | null;
  seconds: number;
  attempts: number | null;
  leftoverProcesses: string[];
  leftoverFiles: string[];
  why?: string;
}

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 250));
  }
  return true;
}

async function oneRun(
  n: number,
  kind: Kind,
  fault: Fault,
  dirs: { user: string; tmp: string },
  redis: ChaosRedis,
  progress: (l: string) => void,
): Promise<RunRecord> {
  const cli = packageFile('dist/src/cli/main.js');
  const common = ['--experiments', join(dirs.user, 'exp'), '--json'];
  const args =
    kind === 'allreduce'
      ? ['allreduce', 'train.ts', '--workers', '2', '--max-attempts', '3', '--heartbeat-timeout', '10', ...common]
      : [
          'launch',
          'trial.ts',
          '--grid',
          `x=${GRID.join(',')}`,
          '--metric',
          'loss',
          '--executors',
          '2',
          '--max-trial-attempts',
          '3',
          ...common,
        ];
  const started = Date.now();
  const child = execa(process.execPath, [cli, ...args], {
    cwd: dirs.user,
    env: { SPARKRING_REDIS: redis.url, TMPDIR: dirs.tmp },
    reject: false,
    all: false,
    timeout: 300_000,
    killSignal: 'SIGKILL',
  });
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  // The fault comes at a random moment of training (a search's trials take a few seconds in all).
  const faultAtMs = Math.round(Math.random() * (kind === 'allreduce' ? 5000 : 2500));
  let injected = false;
  const injector = (async () => {
    const training = await waitUntil(
      () => /\[worker \d\] step |sparkring: trial \S+ step /.test(stderr) || child.exitCode !== null,
      120_000,
    );
    if (!training || child.exitCode !== null) return;
    await new Promise((r) => setTimeout(r, faultAtMs));
    if (child.exitCode !== null) return;
    if (fault === 'redis') {
      await redis.restart(1000);
      injected = true;
      return;
    }
    const pid = victim(fault, kind, redis.pid);
    if (pid === undefined) return;
    try {
      process.kill(pid, fault === 'freeze' ? 'SIGSTOP' : 'SIGKILL');
      injected = true;
    } catch {
      // gone already
    }
  })();
  const r = await child;
  await injector;
  const seconds = (Date.now() - started) / 1000;
  const hung = r.timedOut === true;
  let right = false;
  let attempts: number | null = null;
  let why: string | undefined;
  try {
    const out = JSON.parse(r.stdout as string) as Record<string, unknown>;
    if (kind === 'allreduce') {
      attempts = Number(out.attempts);
      const w = (out.result as { w: number[] }).w;
      const want = expectedWeights(2);
      right = w.length === 4 && w.every((v, i) => Math.abs(v - (want[i] as number)) < 1e-9);
      if (!right) why = `weights ${JSON.stringify(w)}, expected ${JSON.stringify(want)}`;
    } else {
      const trials = out.trials as Array<{ hparams: { x: number }; status: string; metric: number; attempts: number }>;
      attempts = Math.max(...trials.map((t) => t.attempts));
      right =
        trials.length === GRID.length &&
        trials.every((t) => t.status === 'done' && Math.abs(t.metric - ((t.hparams.x - 3) ** 2 + 1 / SEARCH_STEPS)) < 1e-9) &&
        (out.best as { hparams: { x: number } } | null)?.hparams.x === 3;
      if (!right) why = `trials ${JSON.stringify(trials)}`;
    }
  } catch {
    why = hung ? 'timed out after 300 s' : (stderr.trim().split('\n').at(-1) ?? `exit ${r.exitCode}`);
  }
  // Thaw a frozen process so that what is left can end (and is counted if it does not).
  for (const p of processes()) if (/runtime\/main\.js|hpo\/agent\.js/.test(p.args)) spawnSafeKill(p.pid, 'SIGCONT');
  const redisPid = redis.pid;
  await waitUntil(() => !processes().some((p) => p.pid !== redisPid && LEFTOVER.test(p.args)), 30_000);
  const leftoverProcesses = processes()
    .filter((p) => p.pid !== redisPid && LEFTOVER.test(p.args))
    .map((p) => `${p.pid} ${p.args.slice(0, 120)}`);
  await waitUntil(() => readdirSync(dirs.tmp).length === 0, 10_000);
  const leftoverFiles = [
    ...readdirSync(dirs.tmp).map((f) => join(dirs.tmp, f)),
    ...readdirSync('/dev/shm')
      .filter((f) => f.startsWith('sparkring-'))
      .map((f) => join('/dev/shm', f)),
  ];
  // What was left must not spoil the next run.
  for (const p of leftoverProcesses) spawnSafeKill(Number(p.split(' ')[0]), 'SIGKILL');
  for (const f of leftoverFiles) rmSync(f, { recursive: true, force: true });
  const rec: RunRecord = {
    run: n,
    kind,
    fault,
    faultAtMs: injected ? faultAtMs : null,
    injected,
    right,
    hung,
    exitCode: r.exitCode ?? null,
    seconds: Number(seconds.toFixed(1)),
    attempts,
    leftoverProcesses,
    leftoverFiles,
    ...(why ? { why } : {}),
  };
  progress(
    `run ${n}: ${kind}, ${fault}${injected ? ` at +${faultAtMs} ms` : ' (not injected: the run ended first)'}: ${
      right ? 'right' : hung ? 'HUNG' : 'LOST'
    } in ${rec.seconds} s, ${attempts ?? '-'} attempts${leftoverProcesses.length + leftoverFiles.length > 0 ? `, LEFT ${leftoverProcesses.length} processes and ${leftoverFiles.length} files` : ''}${why ? ` (${why.slice(0, 200)})` : ''}`,
  );
  return rec;
}

function spawnSafeKill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // gone already
  }
}

export async function chaosBench(
  o: { runs: number; faults?: readonly Fault[]; kinds?: readonly Kind[] },
  progress: (l: string) => void,
) {
  const root = mkdtempSync(join(tmpdir(), 'sparkring-chaos-'));
  const user = join(root, 'user');
  const tmp = join(root, 'tmp');
  const redisDir = join(root, 'redis');
  for (const d of [user, tmp, redisDir]) mkdirSync(d);
  writeFileSync(join(user, 'train.ts'), ALLREDUCE_ENTRY);
  writeFileSync(join(user, 'trial.ts'), SEARCH_ENTRY);
  const redis = await ChaosRedis.start(redisDir);
  const records: RunRecord[] = [];
  try {
    for (let n = 1; n <= o.runs; n++) {
      const kinds = o.kinds ?? (['allreduce', 'search'] as const);
      const faults = o.faults ?? FAULTS;
      const kind = kinds[Math.floor(Math.random() * kinds.length)] as Kind;
      const fault = faults[Math.floor(Math.random() * faults.length)] as Fault;
      records.push(await oneRun(n, kind, fault, { user, tmp }, redis, progress));
    }
  } finally {
    await redis.kill();
    rmSync(root, { recursive: true, force: true });
  }
  const count = (f: (r: RunRecord) => boolean): number => records.filter(f).length;
  const faults: Record<string, number> = {};
  for (const r of records) if (r.injected) faults[`${r.kind}/${r.fault}`] = (faults[`${r.kind}/${r.fault}`] ?? 0) + 1;
  return {
    bench: 'chaos',
    runs: records.length,
    faults_injected: count((r) => r.injected),
    faults,
    right: count((r) => r.right),
    lost: count((r) => !r.right && !r.hung),
    hangs: count((r) => r.hung),
    leftover_processes: records.reduce((s, r) => s + r.leftoverProcesses.length, 0),
    leftover_files: records.reduce((s, r) => s + r.leftoverFiles.length, 0),
    median_seconds: records.map((r) => r.seconds).sort((a, b) => a - b)[Math.floor(records.length / 2)] ?? null,
    records,
  };
}
