/** Shared pieces of the Spark benchmarks: the noop entry, options, spark-submit of bench.py. */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ResolvedAllreduceOptions, resolveAllreduceOptions } from '../../src/client/jobs/options.js';
import { type SparkPaths, sparkPaths } from '../../src/client/submission/paths.js';
import { runSparkSubmit } from '../../src/client/submission/spark-submit.js';
import { packageFile } from '../../src/util/package-file.js';

export const noopEntry = (): string => packageFile('bench/entries/noop.mjs');

export function benchOptions(workers: number, experiments: string): { o: ResolvedAllreduceOptions; paths: SparkPaths } {
  return { o: resolveAllreduceOptions({ entry: noopEntry(), workers, experiments, name: 'bench' }), paths: sparkPaths() };
}

/** Runs `spark-plugin/sparkring_bench.py ARGS... OUT` and returns the JSON it wrote to OUT. */
export async function sparkBench(
  o: ResolvedAllreduceOptions,
  paths: SparkPaths,
  args: (out: string) => string[],
): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(join(tmpdir(), 'sparkring-bench-'));
  const out = join(dir, 'out.json');
  try {
    const r = await runSparkSubmit(o, paths, [paths.benchFile, ...args(out)], dir);
    try {
      return JSON.parse(await readFile(out, 'utf8')) as Record<string, unknown>;
    } catch {
      throw new Error(`spark bench failed (exit ${r.exitCode}): ${r.tail.slice(-15).join('\n')}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};
