/**
 * Serve: requests/s and p50/p99 latency of one-row inference requests for the digits MLP (rescale,
 * dense 64 relu, dense 10 softmax), at each concurrency, all in one run on this machine:
 *   - `sparkring serve` over REST and gRPC, with dynamic batching (--max-batch-size 64) and without;
 *   - the peer: the same model converted to Keras by PyPI's tensorflowjs converter, served by KServe
 *     0.21's Python ModelServer on the same TensorFlow (bench/serve_peer.py);
 *   - the limit: the same one-row predicts in this process, back to back, on the same TensorFlow (and,
 *     as the ceiling of rows/s, predicts of 64 rows, the largest batch the batching server makes).
 * Load comes from generators nobody here wrote: autocannon for REST (in this process), tritonclient's
 * asyncio gRPC client for gRPC (bench/serve_grpc_load.py). Each cell warms up for a second first.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as tfTypes from '@tensorflow/tfjs';
import autocannon from 'autocannon';
import { execa } from 'execa';
import { packageRoot } from '../src/client/submission/paths.js';
import { loadTf } from '../src/runtime/backend.js';
import { loadSavedModel } from '../src/runtime/fit/load-model.js';
import { registerModel } from '../src/serve/repository.js';
import { freePort } from '../src/util/net.js';
import { digitsModel } from './predict.js';

export interface ServeRow {
  impl: 'sparkring' | 'sparkring-no-batching' | 'kserve' | 'in-process' | 'in-process-batch-64';
  protocol: 'rest' | 'grpc' | 'none';
  concurrency: number;
  rps: number | null;
  p50_ms: number | null;
  p99_ms: number | null;
  errors?: number;
  error?: string;
}

const MODEL = 'digits';
const venv = (name: string): string => join(packageRoot(), '.cache', name, 'bin', 'python');
const ROW = Array.from({ length: 64 }, (_, i) => (i * 7) % 17);
const BODY = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 64], data: ROW }] });
const round = (v: number, digits = 2): number => Number(v.toFixed(digits));

async function restLoad(url: string, concurrency: number, seconds: number): Promise<Omit<ServeRow, 'impl' | 'protocol'>> {
  const opts = {
    url: `${url}/v2/models/${MODEL}/infer`,
    method: 'POST' as const,
    body: BODY,
    headers: { 'content-type': 'application/json' },
    connections: concurrency,
  };
  await autocannon({ ...opts, duration: 1 });
  const r = await autocannon({ ...opts, duration: seconds });
  const errors = r.errors + r.timeouts + r.non2xx;
  return { concurrency, rps: round(r.requests.average, 0), p50_ms: round(r.latency.p50), p99_ms: round(r.latency.p99), errors };
}

async function grpcLoad(address: string, concurrency: number, seconds: number): Promise<Omit<ServeRow, 'impl' | 'protocol'>> {
  const script = join(packageRoot(), 'bench', 'serve_grpc_load.py');
  const r = await execa(venv('serve-clients'), [script, address, MODEL, String(concurrency), String(seconds)], { reject: false });
  if (r.exitCode !== 0)
    return { concurrency, rps: null, p50_ms: null, p99_ms: null, error: r.stderr.split('\n').slice(-2).join(' ') };
  const j = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as {
    rps: number;
    p50_ms: number;
    p99_ms: number;
    errors: string[];
  };
  return { concurrency, rps: round(j.rps, 0), p50_ms: round(j.p50_ms), p99_ms: round(j.p99_ms), errors: j.errors.length };
}

async function waitReady(url: string, child: ChildProcess, what: string): Promise<void> {
  const until = Date.now() + 120_000;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}) before it was ready`);
    const ok = await fetch(`${url}/v2/models/${MODEL}/ready`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return;
    await sleep(250);
  }
  throw new Error(`${what} was not ready in 120 s`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await gone;
  clearTimeout(t);
}

/** One server, every protocol and concurrency; it is stopped after. */
async function measureServer(
  impl: ServeRow['impl'],
  child: ChildProcess,
  ports: { http: number; grpc: number },
  o: { seconds: number; concurrency: number[] },
  progress: (line: string) => void,
): Promise<ServeRow[]> {
  const rows: ServeRow[] = [];
  const url = `http://127.0.0.1:${ports.http}`;
  try {
    await waitReady(url, child, impl);
    for (const concurrency of o.concurrency) {
      progress(`${impl}: REST at concurrency ${concurrency}`);
      rows.push({ impl, protocol: 'rest', ...(await restLoad(url, concurrency, o.seconds)) });
      progress(`${impl}: gRPC at concurrency ${concurrency}`);
      rows.push({ impl, protocol: 'grpc', ...(await grpcLoad(`127.0.0.1:${ports.grpc}`, concurrency, o.seconds)) });
    }
  } catch (err) {
    rows.push({ impl, protocol: 'none', concurrency: 0, rps: null, p50_ms: null, p99_ms: null, error: (err as Error).message });
  } finally {
    await stop(child);
  }
  return rows;
}

function startSparkring(repo: string, ports: { http: number; grpc: number }, maxBatchSize: number): ChildProcess {
  const cli = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');
  return spawn(
    process.execPath,
    [
      cli,
      'serve',
      '--repo',
      repo,
      '--host',
      '127.0.0.1',
      '--http-port',
      String(ports.http),
      '--grpc-port',
      String(ports.grpc),
      '--max-batch-size',
      String(maxBatchSize),
      '--drain-s',
      '0',
    ],
    { stdio: 'ignore' },
  );
}

/**
 * The limit: the same one-row predicts back to back in this process, on the native TensorFlow; with
 * `rows` 64, the batches the batching server makes at most (its rps is then rows/s).
 */
async function inProcess(modelDir: string, seconds: number, rows: 1 | 64): Promise<ServeRow> {
  const { tf } = await loadTf([], 'auto');
  const { model } = await loadSavedModel(tf, modelDir);
  const x = new Float32Array(rows * 64);
  for (let r = 0; r < rows; r++) x.set(ROW, r * 64);
  const call = (): Float32Array =>
    tf.tidy(() => (model.apply(tf.tensor(x, [rows, 64]), { training: false }) as tfTypes.Tensor).dataSync() as Float32Array);
  for (const until = performance.now() + 1000; performance.now() < until; ) call();
  const latencies: number[] = [];
  const started = performance.now();
  for (const until = started + seconds * 1000; performance.now() < until; ) {
    const t = performance.now();
    call();
    latencies.push(performance.now() - t);
  }
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] as number;
  model.dispose();
  return {
    impl: rows === 1 ? 'in-process' : 'in-process-batch-64',
    protocol: 'none',
    concurrency: 1,
    rps: round((rows * latencies.length) / elapsed, 0),
    p50_ms: round(at(0.5), 3),
    p99_ms: round(at(0.99), 3),
  };
}

export async function serveBench(o: { seconds: number; concurrency: number[]; peer: boolean }, progress: (line: string) => void) {
  const dir = await mkdtemp(join(tmpdir(), 'sparkring-bench-serve-'));
  const rows: ServeRow[] = [];
  try {
    const modelDir = await digitsModel(dir);
    const repo = join(dir, 'models');
    await registerModel(modelDir, { name: MODEL, repo, experiments: dir });
    progress('in-process predicts (the limit)');
    rows.push(await inProcess(modelDir, o.seconds, 1));
    rows.push(await inProcess(modelDir, o.seconds, 64));
    for (const [impl, maxBatchSize] of [
      ['sparkring', 64],
      ['sparkring-no-batching', 1],
    ] as const) {
      const ports = { http: await freePort(), grpc: await freePort() };
      rows.push(...(await measureServer(impl, startSparkring(repo, ports, maxBatchSize), ports, o, progress)));
    }
    if (o.peer) {
      progress('converting the model to Keras (tensorflowjs converter)');
      const h5 = join(dir, 'model.h5');
      execFileSync(
        venv('tfjs-converter').replace(/python$/, 'tensorflowjs_converter'),
        ['--input_format', 'tfjs_layers_model', '--output_format', 'keras', join(modelDir, 'model.json'), h5],
        { stdio: 'ignore', env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' } },
      );
      const ports = { http: await freePort(), grpc: await freePort() };
      const peer = spawn(
        venv('serve-clients'),
        [join(packageRoot(), 'bench', 'serve_peer.py'), h5, MODEL, String(ports.http), String(ports.grpc)],
        {
          stdio: 'ignore',
          env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3' },
        },
      );
      rows.push(...(await measureServer('kserve', peer, ports, o, progress)));
    }
    return {
      bench: 'serve' as const,
      machine: `${cpus().length} cores, ${cpus()[0]?.model ?? 'cpu'}`,
      rows,
      goals: goals(rows, o.concurrency),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The goals at the highest concurrency: 3x KServe's requests/s with a lower p99, within 2x of the limit. */
function goals(rows: ServeRow[], concurrency: number[]) {
  const top = Math.max(...concurrency);
  const cell = (impl: ServeRow['impl'], protocol: ServeRow['protocol']) =>
    rows.find((r) => r.impl === impl && r.protocol === protocol && r.concurrency === top);
  const limit = rows.find((r) => r.impl === 'in-process')?.rps ?? null;
  const batched = rows.find((r) => r.impl === 'in-process-batch-64')?.rps ?? null;
  return (['rest', 'grpc'] as const).map((protocol) => {
    const ours = cell('sparkring', protocol);
    const peer = cell('kserve', protocol);
    return {
      protocol,
      concurrency: top,
      vs_kserve_rps: ours?.rps && peer?.rps ? round(ours.rps / peer.rps) : null,
      p99_lower_than_kserve: ours?.p99_ms != null && peer?.p99_ms != null ? ours.p99_ms < peer.p99_ms : null,
      of_in_process_limit: ours?.rps && limit ? round(ours.rps / limit) : null,
      of_in_process_batch_64: ours?.rps && batched ? round(ours.rps / batched) : null,
    };
  });
}
