/**
 * Which TensorFlow a worker gets for each --tf-backend value (src/runtime/backend.ts), each in a
 * fresh Node process, as a worker loads it: native is tfjs-node's binding over the venv's real
 * TensorFlow 2.21 (make setup builds it), wasm and cpu are tfjs's own backends.
 */
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { FIXTURES, ROOT } from '../helpers/spark.js';

interface Loaded {
  backend?: string;
  tfBackend?: string;
  threads?: number | null;
  library?: string | null;
  fallback?: string | null;
  product?: number[];
  reluGrad?: number[];
  osThreads?: number;
  error?: string;
  message?: string;
}

async function load(choice: string, env: Record<string, string> = {}, gpus?: string): Promise<Loaded> {
  const r = await execa(process.execPath, [join(FIXTURES, 'load-backend.mjs'), choice, ...(gpus ? [gpus] : [])], {
    env: { TF_CPP_MIN_LOG_LEVEL: '1', ...env },
    reject: false,
  });
  expect(r.exitCode, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as Loaded;
}

const TF_DIR = join(ROOT, '.venv', 'lib', 'python3.11', 'site-packages', 'tensorflow');

describe('--tf-backend in a worker', () => {
  it('native: tfjs-node over the TensorFlow 2.21 C library of the venv, reported as "tensorflow 2.21.0 cpu"', async () => {
    const got = await load('native');
    expect(got).toMatchObject({ backend: 'tensorflow 2.21.0 cpu', tfBackend: 'tensorflow', product: [7, 10, 15, 22] });
    expect(got.library).toBe(join(TF_DIR, 'libtensorflow_cc.so.2'));
  });

  it('auto: native where it loads', async () => {
    expect(await load('auto')).toMatchObject({ backend: 'tensorflow 2.21.0 cpu', fallback: null });
  });

  it('wasm and cpu: the tfjs backends of those names', async () => {
    expect(await load('wasm')).toMatchObject({ backend: 'wasm', tfBackend: 'wasm', product: [7, 10, 15, 22], library: null });
    expect(await load('cpu')).toMatchObject({ backend: 'cpu', tfBackend: 'cpu', product: [7, 10, 15, 22], library: null });
  });

  it('native uses the threads the task sets (TF_NUM_INTRAOP_THREADS and TF_NUM_INTEROP_THREADS, from spark.task.cpus)', async () => {
    const threads = (n: number) => ({ TF_NUM_INTRAOP_THREADS: String(n), TF_NUM_INTEROP_THREADS: String(n) });
    const one = await load('native', threads(1));
    const six = await load('native', threads(6));
    expect(one.threads).toBe(1);
    expect(six.threads).toBe(6);
    // TensorFlow's intra-op and inter-op pools: 5 more threads in each.
    expect((six.osThreads as number) - (one.osThreads as number)).toBeGreaterThanOrEqual(10);
  });

  it("native computes Relu's gradient with TensorFlow's ReluGrad, to the values of tfjs's own", async () => {
    const native = await load('native');
    const cpu = await load('cpu');
    expect(native.reluGrad).toEqual([0, 0, 0, 4, 5]);
    expect(native.reluGrad).toEqual(cpu.reluGrad);
  });

  it('a task with GPUs whose TensorFlow sees none fails with a line that says so, and never falls back to the CPU', async () => {
    for (const choice of ['auto', 'native']) {
      const got = await load(choice, { CUDA_VISIBLE_DEVICES: '0' }, '0');
      expect(got.error).toBe('TfBackendError');
      expect(got.message).toMatch(
        /Spark gave this task GPU 0 .* but TensorFlow 2\.21\.0 .* sees no GPU.*tensorflow\[and-cuda\].*--gpus-per-worker/,
      );
    }
  });
});
