/**
 * The experiment directory (README, "Experiments"; docs/architecture.md):
 * <experiments>/<appId>/run.<n>/<name>/ with spec.json, result.json, checkpoint/, tensorboard/,
 * logs/worker-<rank>.log, versioned/, and metrics.jsonl (every reported metric, as received).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';

export interface MetricRecord {
  rank: number;
  step: number;
  at: number;
  metrics: Record<string, number>;
}

const sha256 = async (path: string): Promise<string> =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex');

/** The nearest file called `name` in `dir` or above it. */
function findUp(dir: string, name: string): string | undefined {
  for (let d = resolve(dir); ; d = dirname(d)) {
    if (existsSync(join(d, name))) return join(d, name);
    if (dirname(d) === d) return undefined;
  }
}

/** versioned/'s compiled entry: the entry with its own imports, as the workers ran it; `experiments rerun` runs it. */
export const VERSIONED_ENTRY = 'compiled-entry.mjs';

/**
 * versioned/: the entry file as it ran, and what pins the environment around it (the lockfile
 * hashes, as HopsML kept conda.yml), with the Node, Python, Spark and sparkring versions.
 */
export async function writeVersioned(
  runDir: string,
  entry: string,
  packageRoot: string,
  runtime: { spark?: string; python?: string; master?: string; tfBackend?: string; backends?: string[] },
): Promise<void> {
  const dir = join(runDir, 'versioned');
  await mkdir(dir, { recursive: true });
  await copyFile(entry, join(dir, basename(entry)));
  const lockfiles: Record<string, string> = {};
  for (const path of [
    findUp(dirname(entry), 'package-lock.json'),
    join(packageRoot, 'package-lock.json'),
    join(packageRoot, 'spark-plugin', 'pyproject.toml'),
  ]) {
    if (path && existsSync(path) && !(path in lockfiles)) lockfiles[path] = await sha256(path);
  }
  const pkg = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string };
  await writeFile(
    join(dir, 'environment.json'),
    JSON.stringify(
      {
        entry: { path: entry, sha256: await sha256(entry) },
        lockfiles,
        node: process.version,
        sparkring: pkg.version,
        ...runtime,
      },
      null,
      2,
    ),
  );
}

export async function writeMetrics(runDir: string, records: readonly MetricRecord[]): Promise<void> {
  await writeFile(join(runDir, 'metrics.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : ''));
}

export interface RunSummary {
  /** <appId>/run.<n>/<name>, relative to the experiments directory. */
  id: string;
  /** The id the run was submitted under (spec.json's runId; `--json` prints it). */
  runId: string | null;
  dir: string;
  name: string;
  appId: string;
  /** A training run (sparkring allreduce) or a hyperparameter search (sparkring launch). */
  kind: 'allreduce' | 'search';
  ok: boolean | null;
  workers: number | null;
  attempts: number | null;
  startedAt: string;
  /** The run's result; for a search, its best trial. */
  result: unknown;
  error: string | null;
  /** A search's trials, as its result.json lists them. */
  trials?: Array<{
    id: string;
    hparams: Record<string, unknown>;
    status: string;
    metric: number | null;
    steps: number;
    attempts: number;
  }>;
}

const readJson = (path: string): Record<string, unknown> | undefined => {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
};

const bestOf = (best: unknown): unknown => {
  const b = best as { id?: string; hparams?: unknown; metric?: unknown } | null | undefined;
  return b ? { id: b.id, hparams: b.hparams, metric: b.metric } : null;
};

/** Every run under `experiments`, oldest first. */
export function listRuns(experiments: string): RunSummary[] {
  const runs: RunSummary[] = [];
  if (!existsSync(experiments)) return runs;
  for (const app of readdirSync(experiments)) {
    const appDir = join(experiments, app);
    if (!statSync(appDir).isDirectory()) continue;
    for (const run of readdirSync(appDir).filter((d) => /^run\.\d+$/.test(d))) {
      for (const name of readdirSync(join(appDir, run))) {
        const dir = join(appDir, run, name);
        if (!statSync(dir).isDirectory()) continue;
        const result = readJson(join(dir, 'result.json'));
        const spec = readJson(join(dir, 'spec.json'));
        const error = result?.error as { message?: string } | undefined;
        const search = spec?.kind === 'search';
        runs.push({
          id: relative(experiments, dir),
          runId: typeof spec?.runId === 'string' ? spec.runId : null,
          dir,
          name,
          appId: app,
          kind: search ? 'search' : 'allreduce',
          ok: result ? result.ok === true : null,
          workers: ((search ? spec?.executors : (result?.workers ?? spec?.workers)) as number | undefined) ?? null,
          attempts: (result?.attempts as number | undefined) ?? (typeof result?.attempt === 'number' ? result.attempt + 1 : null),
          startedAt: statSync(dir).birthtime.toISOString(),
          result: (search ? bestOf(result?.best) : result?.result) ?? null,
          error: error?.message ?? null,
          ...(search ? { trials: (result?.trials as RunSummary['trials']) ?? [] } : {}),
        });
      }
    }
  }
  return runs.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
}

/** The run `ref` names: its id, a unique suffix of it, its runId, its app id or its name when unique. */
export function findRun(experiments: string, ref: string): RunSummary {
  const runs = listRuns(experiments);
  const hits = runs.filter(
    (r) =>
      r.id === ref || r.id.endsWith(`/${ref}`) || r.runId === ref || r.appId === ref || r.name === ref || r.dir === resolve(ref),
  );
  if (hits.length === 1) return hits[0] as RunSummary;
  if (hits.length === 0) throw new Error(`no run "${ref}" under ${experiments}; \`sparkring experiments list\` shows the runs`);
  throw new Error(`"${ref}" names ${hits.length} runs (${hits.map((h) => h.id).join(', ')}); give the full id`);
}

export function readMetrics(runDir: string): MetricRecord[] {
  const path = join(runDir, 'metrics.jsonl');
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as MetricRecord);
}
