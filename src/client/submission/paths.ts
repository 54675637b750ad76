/**
 * Where the pieces of sparkring are on this machine: the Spark it submits with, the Python of its
 * driver and workers, the plugin and the built runtime.
 *
 * Spark: the user's own first ($SPARKRING_SPARK_SUBMIT, then $SPARK_HOME, then `spark-submit` on
 * PATH), else the pinned pyspark of sparkring's private environment. Python: always the private
 * environment, which holds the plugin's dependencies (pyarrow, redis, TensorFlow). That environment is
 * the checkout's .venv (`make setup`) when sparkring runs from its checkout, else a per-user cache
 * (`sparkring setup`, or the first run: src/client/submission/setup.ts).
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { packageFile } from '../../util/package-file.js';
import { RunError } from '../errors.js';

export const packageRoot = (): string => dirname(packageFile('package.json'));

/** A checkout has its Makefile; an installed package (npm pack's files) does not. */
export const isCheckout = (): boolean => existsSync(join(packageRoot(), 'Makefile'));

/** The per-user cache of an installed sparkring: $SPARKRING_CACHE, else $XDG_CACHE_HOME/sparkring, else ~/.cache/sparkring. */
export function userCache(): string {
  if (process.env.SPARKRING_CACHE) return process.env.SPARKRING_CACHE;
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'sparkring');
}

/** sparkring's private Python environment: $SPARKRING_VENV, the checkout's .venv, or the user cache's venv. */
export function privateVenv(): string {
  if (process.env.SPARKRING_VENV) return process.env.SPARKRING_VENV;
  return isCheckout() ? join(packageRoot(), '.venv') : join(userCache(), 'venv');
}

/** Where files sparkring makes for itself go (the demo's table): the checkout's .cache, or the user cache. */
export const dataCache = (): string => (isCheckout() ? join(packageRoot(), '.cache') : userCache());

/** What setup makes: the command that makes it, for the lines that ask for it. */
export const setupCommand = (): string => (isCheckout() ? 'make setup' : 'sparkring setup');

export interface SparkSubmitChoice {
  path: string;
  /** Where it came from, for the line that says what a run uses. */
  from: string;
  /** The user's own Spark rather than sparkring's pinned pyspark. */
  users: boolean;
}

function onPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, command))) return join(dir, command);
  }
  return undefined;
}

/** The spark-submit a run uses (see the file's comment); undefined when there is none yet. */
export function findSparkSubmit(venv = privateVenv()): SparkSubmitChoice | undefined {
  const given = process.env.SPARKRING_SPARK_SUBMIT;
  if (given) {
    if (!existsSync(given)) throw new SetupError(`$SPARKRING_SPARK_SUBMIT names ${given}, which does not exist; fix or unset it`);
    return { path: given, from: '$SPARKRING_SPARK_SUBMIT', users: true };
  }
  const home = process.env.SPARK_HOME;
  if (home) {
    const path = join(home, 'bin', 'spark-submit');
    if (!existsSync(path)) throw new SetupError(`$SPARK_HOME is ${home}, but ${path} does not exist; fix or unset SPARK_HOME`);
    return { path, from: '$SPARK_HOME', users: true };
  }
  const found = onPath('spark-submit');
  if (found) return { path: found, from: 'PATH', users: true };
  const own = join(venv, 'bin', 'spark-submit');
  return existsSync(own) ? { path: own, from: "sparkring's environment", users: false } : undefined;
}

export interface SparkPaths {
  sparkSubmit: string;
  python: string;
  submitFile: string;
  /** spark-submit entry of the benchmarks' Spark side. */
  benchFile: string;
  runtimeMain: string;
  /** The search agent (one per executor) and the trial process it starts per trial. */
  agentMain: string;
  trialMain: string;
}

export class SetupError extends Error {
  override readonly name = 'SetupError';
}

/** sparkPaths(), its setup problem as the run's error. `needsSubmit`: false where the caller's own
 * Spark driver runs the job (the Python API), so no spark-submit of ours is needed. */
export function requireSparkPaths(needsSubmit = true): SparkPaths {
  try {
    return sparkPaths(needsSubmit);
  } catch (err) {
    if (err instanceof SetupError) throw new RunError('setup', err.message);
    throw err;
  }
}

export function sparkPaths(needsSubmit = true): SparkPaths {
  const root = packageRoot();
  const venv = privateVenv();
  const python = join(venv, 'bin', 'python');
  const submit = needsSubmit ? findSparkSubmit(venv) : undefined;
  if (needsSubmit && submit === undefined) {
    throw new SetupError(
      `no Spark found: neither $SPARK_HOME nor spark-submit on PATH, and sparkring's own environment (${venv}) is not made; ` +
        `run \`${setupCommand()}\` (the pinned pyspark, pyarrow and TensorFlow), or set SPARK_HOME to your Spark`,
    );
  }
  if (needsSubmit && !existsSync(python)) {
    throw new SetupError(`sparkring's Python environment is not at ${venv}; run \`${setupCommand()}\``);
  }
  const runtimeMain = join(root, 'dist', 'src', 'runtime', 'main.js');
  if (!existsSync(runtimeMain)) throw new SetupError(`the runtime is not built (${runtimeMain}); run \`make build\``);
  return {
    sparkSubmit: submit?.path ?? join(venv, 'bin', 'spark-submit'),
    python,
    submitFile: join(root, 'spark-plugin', 'sparkring_submit.py'),
    benchFile: join(root, 'spark-plugin', 'sparkring_bench.py'),
    runtimeMain,
    agentMain: join(root, 'dist', 'src', 'hpo', 'agent.js'),
    trialMain: join(root, 'dist', 'src', 'hpo', 'trial.js'),
  };
}
