/** Where the pieces of an installed sparkring are: the venv's Spark, the plugin, the runtime. */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { packageFile } from '../util/package-file.js';
import { RunError } from './errors.js';

export const packageRoot = (): string => dirname(packageFile('package.json'));

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
  const venv = process.env.SPARKRING_VENV ?? join(root, '.venv');
  const python = join(venv, 'bin', 'python');
  const sparkSubmit = process.env.SPARKRING_SPARK_SUBMIT ?? join(venv, 'bin', 'spark-submit');
  if (needsSubmit && !existsSync(sparkSubmit)) {
    throw new SetupError(
      `spark-submit not found at ${sparkSubmit}; run \`make setup\` (creates ${venv} with the pinned pyspark) or set SPARKRING_SPARK_SUBMIT`,
    );
  }
  const runtimeMain = join(root, 'dist', 'src', 'runtime', 'main.js');
  if (!existsSync(runtimeMain)) throw new SetupError(`the runtime is not built (${runtimeMain}); run \`make build\``);
  return {
    sparkSubmit,
    python,
    submitFile: join(root, 'spark-plugin', 'sparkring_submit.py'),
    benchFile: join(root, 'spark-plugin', 'sparkring_bench.py'),
    runtimeMain,
    agentMain: join(root, 'dist', 'src', 'hpo', 'agent.js'),
    trialMain: join(root, 'dist', 'src', 'hpo', 'trial.js'),
  };
}
