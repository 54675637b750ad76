/**
 * Which TensorFlow a worker trains on, chosen by `--tf-backend`:
 *   native  tfjs-node's binding over the TensorFlow C library of the executors' Python (the task
 *           puts it on LD_LIBRARY_PATH: spark-plugin/sparkring/executor/tf_libraries.py), or tfjs-node(-gpu)
 *           installed on the node; `tensorflow <version> cpu|gpu`
 *   wasm    @tensorflow/tfjs-backend-wasm (no gradient kernel for convolutions: MLPs only)
 *   cpu     pure-JS tfjs, 40x to 300x slower than native (README, "TensorFlow in the workers")
 *   auto    native, else pure-JS with a line that says why and what it costs; a task with GPUs never
 *           falls back (its GPUs would sit idle)
 * A task with GPUs whose TensorFlow sees none fails: there is no silent CPU training on a GPU slot.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as tfTypes from '@tensorflow/tfjs';
import { useNativeGradients } from './native-gradients.js';

export type Tf = typeof tfTypes;

export const TF_BACKENDS = ['auto', 'native', 'wasm', 'cpu'] as const;
export type TfBackendChoice = (typeof TF_BACKENDS)[number];

export interface LoadedTf {
  tf: Tf;
  /** What the worker reports: `tensorflow 2.21.0 cpu`, `tensorflow 2.21.0 gpu`, `wasm` or `cpu`. */
  backend: string;
  /** The package that provides it (tfjs-node, tfjs-node-gpu, tfjs-backend-wasm, tfjs). */
  flavour: string;
  /** The TensorFlow library the process loaded (native only). */
  library?: string;
  /** Threads its kernels use (native: TF_NUM_INTRAOP_THREADS as the task set it). */
  threads?: number;
  /** auto only: why native was not used, and what that costs. */
  fallback?: string;
}

/** The chosen backend cannot run here; the message names what is missing and the fix. */
export class TfBackendError extends Error {
  override readonly name = 'TfBackendError';
  readonly code = 'SR_TF_BACKEND';
}

/**
 * The binding make setup builds for shipped runtimes (scripts/build-tf-binding.mjs), relative to the
 * package: it has no RUNPATH, so a worker loads only the TensorFlow its task puts on LD_LIBRARY_PATH.
 */
export const TF_BINDING_PORTABLE = 'native/build/tfjs_binding.portable.node';
/** Where tfjs-node's JS requires it (node-pre-gyp's module_path for Node-API 8). */
export const BINDING_IN_PACKAGE = 'lib/napi-v8/tfjs_binding.node';

export const PURE_JS_COST = 'pure-JS tfjs trains 40x to 300x slower than native TensorFlow';

/**
 * Where native backends may be installed: beside this module (a checkout's node_modules, or the
 * shipped bundle's), then $SPARKRING_NODE_MODULES, then the global folders of `npm install -g`.
 */
function nativeSearchBases(): string[] {
  const fromEnv = process.env.SPARKRING_NODE_MODULES?.split(':').filter(Boolean) ?? [];
  const prefix = dirname(dirname(process.execPath));
  const dirs = [...fromEnv, join(prefix, 'lib', 'node_modules'), '/usr/local/lib/node_modules', '/usr/lib/node_modules'];
  return [fileURLToPath(import.meta.url), ...dirs.map((d) => join(d, 'sparkring-search-base.js'))];
}

/** The TensorFlow C library this process has mapped, as /proc/self/maps names it. */
function loadedLibrary(): string | undefined {
  try {
    const line = readFileSync('/proc/self/maps', 'utf8')
      .split('\n')
      .find((l) => l.includes('libtensorflow_cc.so') || l.includes('libtensorflow.so'));
    return line?.slice(line.indexOf('/'));
  } catch {
    return undefined;
  }
}

/** Why a native package failed to load, said as what is missing and how to get it. */
function nativeProblem(name: string, err: Error): string {
  const m = err.message;
  const tfDir = process.env.SPARKRING_TF_DIR;
  const python = process.env.SPARKRING_TF_PYTHON ?? "the executors' Python";
  if (/native addon module \(tfjs_binding\.node\) can not be found/.test(m)) {
    return `${name} is installed but its binding is not built: run \`make setup\` (scripts/build-tf-binding.mjs builds it against PyPI's TensorFlow)`;
  }
  if (/libtensorflow[_a-z]*\.so/.test(m) || /cannot open shared object/.test(m)) {
    const where = tfDir
      ? `the TensorFlow at ${tfDir}`
      : `TensorFlow's C libraries (libtensorflow_cc.so.2): ${python} has no tensorflow package`;
    return `${name} cannot load ${where} (${m.split('\n')[0]}); install it in the executors' Python (pip install tensorflow-cpu==2.21.0, or tensorflow[and-cuda] for GPUs)`;
  }
  return `${name} failed to load: ${m.split('\n')[0]}`;
}

interface NativeFound {
  tf?: Tf;
  name: string;
  problem?: string;
}

function requireNativeFrom(name: string): NativeFound {
  for (const base of nativeSearchBases()) {
    try {
      return { tf: createRequire(base)(name) as Tf, name };
    } catch (err) {
      const code = (err as { code?: string }).code;
      const notHere = code === 'MODULE_NOT_FOUND' && String((err as Error).message).includes(`'${name}'`);
      if (!notHere) return { name, problem: nativeProblem(name.slice('@tensorflow/'.length), err as Error) };
    }
  }
  return { name, problem: `${name.slice('@tensorflow/'.length)} is not installed beside the runtime (run \`make setup\`)` };
}

/** tfjs-node-gpu when the task has GPUs and the node has it, else tfjs-node (over a GPU TensorFlow or not). */
function loadNative(gpus: readonly string[]): { loaded?: LoadedTf; problem: string } {
  const names = [...(gpus.length > 0 ? ['@tensorflow/tfjs-node-gpu'] : []), '@tensorflow/tfjs-node'];
  const problems: string[] = [];
  for (const name of names) {
    const found = requireNativeFrom(name);
    if (!found.tf) {
      problems.push(found.problem as string);
      continue;
    }
    const tf = found.tf;
    const backend = tf.backend() as unknown as { binding?: { TF_Version?: string }; isUsingGpuDevice?: boolean };
    const version = backend.binding?.TF_Version ?? 'unknown';
    const onGpu = backend.isUsingGpuDevice === true;
    const library = loadedLibrary();
    if (gpus.length > 0 && !onGpu) {
      throw new TfBackendError(
        `Spark gave this task GPU ${gpus.join(',')} (CUDA_VISIBLE_DEVICES=${process.env.CUDA_VISIBLE_DEVICES ?? ''}), ` +
          `but TensorFlow ${version} (${library ?? 'its library'}) sees no GPU: it is a CPU-only build or lacks CUDA's libraries; ` +
          "install tensorflow[and-cuda] in the executors' Python, or run without --gpus-per-worker",
      );
    }
    const threads = Number(process.env.TF_NUM_INTRAOP_THREADS) || undefined;
    useNativeGradients(tf);
    return {
      loaded: {
        tf,
        backend: `tensorflow ${version} ${onGpu ? 'gpu' : 'cpu'}`,
        flavour: name.slice('@tensorflow/'.length),
        library,
        threads,
      },
      problem: '',
    };
  }
  return { problem: problems.join('; ') };
}

function pureJs(): Tf {
  return createRequire(import.meta.url)('@tensorflow/tfjs') as Tf;
}

async function loadWasm(): Promise<LoadedTf> {
  const tf = pureJs();
  const require = createRequire(import.meta.url);
  let wasm: { setWasmPaths(prefix: string): void; setThreadsCount?(n: number): void };
  try {
    wasm = require('@tensorflow/tfjs-backend-wasm');
  } catch (err) {
    throw new TfBackendError(
      `--tf-backend wasm: @tensorflow/tfjs-backend-wasm cannot load (${(err as Error).message.split('\n')[0]})`,
    );
  }
  const dist = dirname(require.resolve('@tensorflow/tfjs-backend-wasm'));
  wasm.setWasmPaths(`${dist}/`);
  const threads = Number(process.env.TF_NUM_INTRAOP_THREADS) || undefined;
  if (threads) wasm.setThreadsCount?.(threads);
  if (!(await tf.setBackend('wasm'))) throw new TfBackendError('--tf-backend wasm: the wasm backend failed to initialise');
  await tf.ready();
  return { tf, backend: 'wasm', flavour: 'tfjs-backend-wasm', threads };
}

function cpu(fallback?: string): LoadedTf {
  const tf = pureJs();
  // tfjs-node, when it loaded before, made itself the default; pure-JS is asked for by name.
  void tf.setBackend('cpu');
  return { tf, backend: 'cpu', flavour: 'tfjs-cpu', fallback };
}

/** Loads the TensorFlow `choice` names for a task given `gpus`; native may be loaded synchronously. */
export function loadTfSync(gpus: readonly string[], choice: TfBackendChoice = 'auto'): LoadedTf {
  if (choice === 'cpu') return cpu();
  if (choice === 'wasm') throw new TfBackendError('--tf-backend wasm loads asynchronously: use loadTf');
  const { loaded, problem } = loadNative(gpus);
  if (loaded) return loaded;
  if (choice === 'native') throw new TfBackendError(`--tf-backend native: ${problem}`);
  if (gpus.length > 0) {
    throw new TfBackendError(
      `this task has GPU ${gpus.join(',')} but no native TensorFlow to use it: ${problem}; (pure-JS tfjs cannot use GPUs)`,
    );
  }
  return cpu(`${PURE_JS_COST}: ${problem}; or pass --tf-backend cpu to choose it`);
}

export async function loadTf(gpus: readonly string[], choice: TfBackendChoice = 'auto'): Promise<LoadedTf> {
  if (choice === 'wasm') return loadWasm();
  const loaded = loadTfSync(gpus, choice);
  await loaded.tf.ready();
  return loaded;
}
