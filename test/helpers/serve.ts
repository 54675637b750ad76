/**
 * `sparkring serve` for the serving tests: a saved model of the digits' shape, the server started
 * as a user starts it (the built CLI, its own process group, ports of its choosing, told by its one
 * ready line), and the PyPI clients of the protocol (test/fixtures/serve/oip_client.py, in the venv
 * `make serve-clients` makes).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { execa } from 'execa';
import { Ring } from '../../src/collective/index.js';
import { saveModel } from '../../src/runtime/fit/save-model.js';
import { FIXTURES, ROOT, stopGroup } from './spark.js';

export const SERVE_PYTHON = join(ROOT, '.cache', 'serve-clients', 'bin', 'python');
export const OIP_CLIENT = join(FIXTURES, 'serve', 'oip_client.py');
export const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
export const DIGIT_FEATURES = Array.from({ length: 64 }, (_, i) => `p${i}`);

/** A 64 -> 16 -> 10 softmax model; each seed gives other weights (so versions answer apart). */
export async function digitsLikeModel(dir: string, seed: number): Promise<string> {
  await tf.setBackend('cpu');
  const model = tf.sequential({
    layers: [
      tf.layers.dense({
        inputShape: [64],
        units: 16,
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed }),
      }),
      tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }),
    ],
  });
  const path = await saveModel(tf, Ring.solo(`serve-${seed}`), model, dir, { features: DIGIT_FEATURES });
  model.dispose();
  return path;
}

/** `rows` rows of 64 values in [0, 16), as float32 in a file (for the Python clients). */
export function digitRows(dir: string, rows: number, seed = 1): { path: string; x: Float32Array } {
  const x = new Float32Array(rows * 64);
  let s = seed;
  for (let i = 0; i < x.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    x[i] = (s >>> 16) % 17;
  }
  const path = join(dir, `rows-${rows}-${seed}.f32`);
  writeFileSync(path, new Uint8Array(x.buffer));
  return { path, x };
}

export interface Served {
  child: ChildProcess;
  http: number;
  grpc: number;
  url: string;
  /** Everything it wrote on stderr so far. */
  log: () => string;
  exited: Promise<number | null>;
  stop: () => Promise<void>;
}

/** Starts `sparkring serve ARGS --http-port 0 --grpc-port 0` and waits for its ready line. */
export async function startServe(args: string[], env: Record<string, string> = {}): Promise<Served> {
  const child = spawn(process.execPath, [CLI, 'serve', '--http-port', '0', '--grpc-port', '0', '--host', '127.0.0.1', ...args], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const ready = await new Promise<{ http: number; grpc: number }>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`sparkring serve gave no ready line in 60 s:\n${stderr}`)), 60_000);
    child.stdout?.on('data', (b: Buffer) => {
      stdout += b.toString();
      const m = /ready: REST https?:\/\/[^:]+:(\d+), gRPC [^:]+:(\d+)/.exec(stdout);
      if (m) {
        clearTimeout(t);
        resolve({ http: Number(m[1]), grpc: Number(m[2]) });
      }
    });
    void exited.then((code) => {
      clearTimeout(t);
      reject(new Error(`sparkring serve exited (${code}) before it was ready:\n${stderr}`));
    });
  });
  return {
    child,
    ...ready,
    url: `http://127.0.0.1:${ready.http}`,
    log: () => stderr,
    exited,
    stop: () => stopGroup(child, () => child.kill('SIGTERM'), 20_000),
  };
}

/** One subcommand of the Python clients; its JSON answer. */
export async function oipClient<T>(args: string[]): Promise<T> {
  const r = await execa(SERVE_PYTHON, [OIP_CLIENT, ...args], { reject: false, timeout: 240_000 });
  if (r.exitCode !== 0)
    throw new Error(`oip_client ${args[0]} failed (${r.exitCode}):\n${r.stderr.split('\n').slice(-15).join('\n')}`);
  return JSON.parse(r.stdout) as T;
}

/** The sparkring CLI, for `models` commands. */
export function models(args: string[]) {
  return execa(process.execPath, [CLI, 'models', ...args], { reject: false, all: true, timeout: 60_000 });
}

/** A REST call to the server, its status and JSON. */
export async function rest(
  url: string,
  init: { method?: string; body?: string | Uint8Array; headers?: Record<string, string> } = {},
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(url, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    body: init.body,
    headers: {
      ...(init.body !== undefined && typeof init.body === 'string' ? { 'content-type': 'application/json' } : {}),
      ...init.headers,
    },
  });
  const text = await res.text();
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { raw: text };
  }
  return { status: res.status, json, headers: res.headers };
}

/** A JSON infer body of `rows` rows of 64 values. */
export function inferBody(x: Float32Array, rows: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    inputs: [{ name: 'input', datatype: 'FP32', shape: [rows, 64], data: Array.from(x.subarray(0, rows * 64)) }],
    ...extra,
  });
}
