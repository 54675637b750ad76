/**
 * `sparkring serve --workers N`: N serving processes on the same ports (node:cluster; the primary
 * deals the connections), each with the models loaded, its own batcher and its own metrics. The
 * primary prints the one ready line once every worker is up, sums the workers' metrics when one of
 * them is asked for /metrics, starts a worker again if one dies, and on SIGTERM or SIGINT drains
 * them all (server.ts) and exits once they have.
 *
 * Messages between the primary and a worker (process.send):
 *   worker -> primary  { t: 'ready', httpPort, grpcPort, backend, models }
 *   worker -> primary  { t: 'metrics?', id }          primary -> worker  { t: 'metrics', id, text }
 *   worker -> primary  { t: 'failed', message, code }  (it could not start)
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import { type RunningServer, type ServeOptions, startServer } from './server.js';
import { SERVE_OPTIONS_ENV } from './worker-env.js';

type FromWorker =
  | { t: 'ready'; httpPort: number; grpcPort: number; backend: string; models: string }
  | { t: 'metrics?'; id: number }
  | { t: 'failed'; message: string; code: string };
type FromPrimary = { t: 'metrics'; id: number; text: string };

export interface ServeReady {
  httpPort: number;
  grpcPort: number;
  backend: string;
  models: string;
}

/** Serves until SIGTERM or SIGINT, then drains; resolves once ready with where it listens. */
export async function serve(o: ServeOptions, say: (line: string) => void, onExit: (code: number) => void): Promise<ServeReady> {
  if (o.workers <= 1) {
    const running = await startServer(o, say);
    drainOnSignal(running, say, onExit);
    return { httpPort: running.httpPort, grpcPort: running.grpcPort, backend: running.backend, models: running.models() };
  }
  return primary(o, say, onExit);
}

function drainOnSignal(running: RunningServer, say: (line: string) => void, onExit: (code: number) => void): void {
  let draining = false;
  const stop = (signal: string): void => {
    if (draining) return;
    draining = true;
    say(`sparkring serve: ${signal}: not ready any more, finishing the requests in flight`);
    running.drain().then(
      () => onExit(0),
      () => onExit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

function primary(o: ServeOptions, say: (line: string) => void, onExit: (code: number) => void): Promise<ServeReady> {
  const registry = new AggregatorRegistry();
  let stopping = false;
  let readyOnce = false;
  /** When workers died, to stop restarting one that cannot stay up. */
  const deaths: number[] = [];
  const env = { [SERVE_OPTIONS_ENV]: JSON.stringify(o) };
  return new Promise((resolve, reject) => {
    const ready = new Map<number, ServeReady>();
    const fork = (): Worker => {
      const worker = cluster.fork(env);
      worker.on('message', (m: FromWorker) => {
        if (m.t === 'ready') {
          ready.set(worker.id, m);
          if (!readyOnce && ready.size === o.workers) {
            readyOnce = true;
            resolve({ ...m });
          }
        } else if (m.t === 'metrics?') {
          registry.clusterMetrics().then(
            (text) => worker.send({ t: 'metrics', id: m.id, text } satisfies FromPrimary),
            (err: Error) =>
              worker.send({ t: 'metrics', id: m.id, text: `# metrics failed: ${err.message}\n` } satisfies FromPrimary),
          );
        } else if (m.t === 'failed' && !readyOnce) {
          stopping = true;
          for (const w of Object.values(cluster.workers ?? {})) w?.kill();
          reject(Object.assign(new Error(m.message), { code: m.code }));
        }
      });
      worker.on('exit', (code) => {
        ready.delete(worker.id);
        if (stopping || !readyOnce) return;
        const now = Date.now();
        deaths.push(now);
        if (deaths.filter((t) => now - t < 60_000).length > 5) {
          say(`sparkring serve: workers keep exiting (6 in a minute, the last with ${code}); stopping`);
          stop('worker failures', 1);
          return;
        }
        say(`sparkring serve: worker ${worker.process.pid} exited (${code}); starting another`);
        fork();
      });
      return worker;
    };
    for (let i = 0; i < o.workers; i++) fork();
    const stop = (signal: string, code = 0): void => {
      if (stopping) return;
      stopping = true;
      say(`sparkring serve: ${signal}: not ready any more, finishing the requests in flight`);
      const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
      let left = workers.length;
      if (left === 0) onExit(code);
      for (const w of workers) {
        w.on('exit', () => {
          left -= 1;
          if (left === 0) onExit(code);
        });
        w.process.kill('SIGTERM');
      }
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}

export async function serveWorker(): Promise<void> {
  const o = JSON.parse(process.env[SERVE_OPTIONS_ENV] as string) as ServeOptions;
  const say = (line: string): void => void process.stderr.write(`${line}\n`);
  const pending = new Map<number, (text: string) => void>();
  let next = 0;
  new AggregatorRegistry(); // its listeners answer the primary's requests for this worker's metrics
  process.on('message', (m: FromPrimary) => {
    if (m?.t !== 'metrics') return;
    pending.get(m.id)?.(m.text);
    pending.delete(m.id);
  });
  // SIGINT goes to the whole process group from a terminal: the primary's SIGTERM is the one to drain on.
  process.on('SIGINT', () => {});
  try {
    const running = await startServer(o, say, () => {
      const id = next++;
      return new Promise<string>((resolve) => {
        pending.set(id, resolve);
        process.send?.({ t: 'metrics?', id } satisfies FromWorker);
      });
    });
    AggregatorRegistry.setRegistries([running.metrics.registry]);
    process.on('SIGTERM', () => {
      running.drain().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
    process.send?.({
      t: 'ready',
      httpPort: running.httpPort,
      grpcPort: running.grpcPort,
      backend: running.backend,
      models: running.models(),
    } satisfies FromWorker);
  } catch (err) {
    const e = err as Error & { code?: string };
    process.send?.({ t: 'failed', message: e.message, code: e.code ?? 'SR_SERVE' } satisfies FromWorker);
    process.exit(1);
  }
}
