/**
 * Spark Connect beside a classic session: the same small run (logistic regression on 20,000 computed
 * rows, 2 workers, bench/entries/logistic.mjs) through `sparkring.allreduce` from a warm PySpark 4
 * session of each kind, on the same PySpark 4.2 and the same local-cluster[2,1,1024] shape, rounds
 * alternating. Connect: PySpark 4's own Connect server (cluster/spark-connect.ts) and its full client;
 * classic: a session on the same venv's PySpark. Figures: the run's submit-to-ring and the caller's
 * wall time around the call, medians, and Connect's ratio to classic.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CONNECT_SERVER_PYTHON, SparkConnectServer } from '../cluster/spark-connect.js';
import { packageFile } from '../src/util/package-file.js';
import { median } from './lib/spark.js';

type Kind = 'classic' | 'connect';
interface Sample {
  wall_ms: number;
  submit_to_ring_ms: number;
}

/** A warm session in its own Python, one run per line written to it. */
class Session {
  private readonly replies: AsyncIterator<string>;
  private constructor(private readonly child: ChildProcess) {
    this.replies = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  }

  static async open(kind: Kind, target: string, experiments: string): Promise<Session> {
    const child = spawn(
      CONNECT_SERVER_PYTHON,
      [packageFile('bench/connect_runs.py'), kind, target, packageFile('bench/entries/logistic.mjs'), experiments],
      {
        env: { ...process.env, PYTHONPATH: packageFile('spark-plugin'), PYSPARK_PYTHON: CONNECT_SERVER_PYTHON },
        stdio: ['pipe', 'pipe', 'inherit'],
        detached: true,
      },
    );
    const session = new Session(child);
    await session.next();
    return session;
  }

  private async next(): Promise<Record<string, unknown>> {
    for (;;) {
      const line = await this.replies.next();
      if (line.done) throw new Error('the bench session ended; its output is above');
      if (line.value.startsWith('BENCH ')) return JSON.parse(line.value.slice(6)) as Record<string, unknown>;
    }
  }

  async run(): Promise<Sample> {
    this.child.stdin?.write('run\n');
    return (await this.next()) as unknown as Sample;
  }

  async close(): Promise<void> {
    const gone = new Promise((r) => this.child.once('exit', r));
    this.child.stdin?.end();
    const t = setTimeout(() => process.kill(-(this.child.pid as number), 'SIGKILL'), 60_000);
    await gone;
    clearTimeout(t);
  }
}

export async function connectBench(o: { rounds: number }, progress: (l: string) => void) {
  const experiments = await mkdtemp(join(tmpdir(), 'sparkring-connect-bench-'));
  const master = 'local-cluster[2,1,1024]';
  const server = await SparkConnectServer.start(master);
  const sessions: Partial<Record<Kind, Session>> = {};
  const samples: Record<Kind, Sample[]> = { classic: [], connect: [] };
  try {
    sessions.connect = await Session.open('connect', server.url, experiments);
    sessions.classic = await Session.open('classic', master, experiments);
    for (let round = 0; round < o.rounds; round++) {
      // Alternating which goes first, so neither always runs on the machine the other just warmed.
      for (const kind of round % 2 ? (['connect', 'classic'] as const) : (['classic', 'connect'] as const)) {
        const s = await (sessions[kind] as Session).run();
        samples[kind].push(s);
        progress(
          `round ${round + 1} ${kind}: submit to ring ${Math.round(s.submit_to_ring_ms)} ms, wall ${Math.round(s.wall_ms)} ms`,
        );
      }
    }
  } finally {
    await Promise.all(Object.values(sessions).map((s) => s.close()));
    await server.stop();
    await rm(experiments, { recursive: true, force: true });
  }
  const summary = (kind: Kind) => ({
    submit_to_ring_ms: Math.round(median(samples[kind].map((s) => s.submit_to_ring_ms))),
    wall_ms: Math.round(median(samples[kind].map((s) => s.wall_ms))),
  });
  const classic = summary('classic');
  const connect = summary('connect');
  const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
  const [firstClassic, firstConnect] = [samples.classic[0] as Sample, samples.connect[0] as Sample];
  return {
    bench: 'connect',
    master,
    spark: '4.2.0',
    rounds: o.rounds,
    classic,
    connect,
    ratio: {
      submit_to_ring: ratio(connect.submit_to_ring_ms, classic.submit_to_ring_ms),
      wall: ratio(connect.wall_ms, classic.wall_ms),
    },
    // Each session's first run (its Python workers and the shipped package are new), on its own.
    first_run_ratio: {
      submit_to_ring: ratio(firstConnect.submit_to_ring_ms, firstClassic.submit_to_ring_ms),
      wall: ratio(firstConnect.wall_ms, firstClassic.wall_ms),
    },
    samples,
  };
}
