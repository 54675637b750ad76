/**
 * The model repository `sparkring serve` reads and `sparkring models` writes (default ./models):
 *
 *   <repo>/<name>/<N>/   model.json, weights.bin, signature.json (as ctx.saveModel wrote them) and
 *                        version.json: where the version came from (the run, its hyperparameters
 *                        and final metrics) and when it was registered
 *   <repo>/<name>/policy.json   how requests are routed among the versions, and which stay loaded
 *
 * A version appears whole or not at all: it is copied under a staging name and renamed to the next
 * free number (a rename onto a number another register took fails, and the next number is tried).
 * policy.json is replaced by rename too, so the server never reads half a file.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { findRun } from '../experiments/layout.js';
import { MODEL_JSON, type ModelSignature, SIGNATURE_JSON, WEIGHTS_BIN } from '../runtime/fit/save-model.js';

export const DEFAULT_REPO = 'models';
export const POLICY_JSON = 'policy.json';
export const VERSION_JSON = 'version.json';
export const DEFAULT_STICKY_HEADER = 'x-sparkring-route-key';

export class ModelRepoError extends Error {
  readonly code = 'SR_MODEL_REPO';
  constructor(message: string) {
    super(message);
    this.name = 'ModelRepoError';
  }
}

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function checkModelName(name: string): string {
  if (!MODEL_NAME.test(name)) {
    throw new ModelRepoError(
      `model name "${name}": use letters, digits, '_', '.' and '-' (at most 128, starting with a letter or digit)`,
    );
  }
  return name;
}

const version = z.number().int().positive();

export const routingSchema = z.discriminatedUnion('kind', [
  /** The newest loaded version takes every request. */
  z.object({ kind: z.literal('latest') }),
  z.object({ kind: z.literal('only'), version }),
  /** Percent weights by version, e.g. { "2": 90, "3": 10 }. */
  z.object({
    kind: z.literal('canary'),
    weights: z.record(z.string().regex(/^[1-9]\d*$/), z.number().positive()).refine((w) => Object.keys(w).length > 0),
  }),
]);
export type Routing = z.infer<typeof routingSchema>;

export const policySchema = z.object({
  routing: routingSchema.default({ kind: 'latest' }),
  /** A version that gets a copy of every routed request: its answer is logged, never returned. */
  shadow: version.nullable().default(null),
  /** Requests with this header (gRPC: metadata) keep to one version for one value of it. */
  sticky_header: z.string().min(1).default(DEFAULT_STICKY_HEADER),
  /** Versions kept loaded: the newest N, the pinned ones, and any the routing or shadow names. */
  keep_latest: z.number().int().min(1).default(2),
  pinned: z.array(version).default([]),
});
export type ModelPolicy = z.infer<typeof policySchema>;

export const DEFAULT_POLICY: ModelPolicy = policySchema.parse({});

export interface VersionInfo {
  name: string;
  version: number;
  registeredAt: string;
  source: {
    /** The run's id under its experiments directory, when the model came from a run. */
    run: string | null;
    runDir: string | null;
    modelDir: string;
  };
  hparams: Record<string, unknown>;
  metrics: Record<string, number>;
  signature: ModelSignature;
}

export const modelDir = (repo: string, name: string): string => join(resolve(repo), checkModelName(name));
export const versionDir = (repo: string, name: string, v: number): string => join(modelDir(repo, name), String(v));

/** The version numbers present under <repo>/<name>, ascending. */
export function versionsOf(repo: string, name: string): number[] {
  const dir = modelDir(repo, name);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((d) => /^[1-9]\d*$/.test(d) && existsSync(join(dir, d, VERSION_JSON)))
    .map(Number)
    .sort((a, b) => a - b);
}

export function modelNames(repo: string): string[] {
  const dir = resolve(repo);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && MODEL_NAME.test(d.name))
    .map((d) => d.name)
    .sort();
}

export function readVersion(repo: string, name: string, v: number): VersionInfo {
  return JSON.parse(readFileSync(join(versionDir(repo, name, v), VERSION_JSON), 'utf8')) as VersionInfo;
}

/** The model's policy.json, or the default (newest version, nothing else). */
export function readPolicy(repo: string, name: string): ModelPolicy {
  const path = join(modelDir(repo, name), POLICY_JSON);
  if (!existsSync(path)) return DEFAULT_POLICY;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ModelRepoError(`${path} is not JSON (${(err as Error).message}); fix it or run \`sparkring models route\``);
  }
  const parsed = policySchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ModelRepoError(`${path}: ${issue?.path.join('.') || 'the file'}: ${issue?.message}`);
  }
  return parsed.data;
}

export async function writePolicy(repo: string, name: string, policy: ModelPolicy): Promise<void> {
  const dir = modelDir(repo, name);
  const present = versionsOf(repo, name);
  const named = [
    ...(policy.routing.kind === 'only' ? [policy.routing.version] : []),
    ...(policy.routing.kind === 'canary' ? Object.keys(policy.routing.weights).map(Number) : []),
    ...(policy.shadow ? [policy.shadow] : []),
    ...policy.pinned,
  ];
  const missing = named.filter((v) => !present.includes(v));
  if (missing.length > 0) {
    throw new ModelRepoError(
      `model ${name} has no version ${missing.join(', ')} (it has ${present.join(', ') || 'none'}); \`sparkring models list\` shows them`,
    );
  }
  const tmp = join(dir, `.${POLICY_JSON}.${process.pid}.${randomBytes(4).toString('hex')}`);
  await writeFile(tmp, `${JSON.stringify(policySchema.parse(policy), null, 2)}\n`);
  await rename(tmp, join(dir, POLICY_JSON));
}

/** Where a model comes from: a folder ctx.saveModel wrote, a run folder with model/, or a run id. */
function resolveSource(ref: string, experiments: string): { modelDir: string; runDir: string | null; run: string | null } {
  const dir = resolve(ref);
  if (existsSync(join(dir, SIGNATURE_JSON))) {
    const parent = resolve(dir, '..');
    const isRun = existsSync(join(parent, 'spec.json'));
    return { modelDir: dir, runDir: isRun ? parent : null, run: null };
  }
  if (existsSync(join(dir, 'model', SIGNATURE_JSON))) return { modelDir: join(dir, 'model'), runDir: dir, run: null };
  let runDir: string;
  let run: string;
  try {
    const found = findRun(experiments, ref);
    runDir = found.dir;
    run = found.id;
  } catch (err) {
    throw new ModelRepoError(
      `no model at ${ref}: pass a folder ctx.saveModel wrote, a run folder with model/ in it, or a run id (${(err as Error).message})`,
    );
  }
  if (!existsSync(join(runDir, 'model', SIGNATURE_JSON))) {
    throw new ModelRepoError(`run ${run} saved no model (${join(runDir, 'model')} has no signature.json): call ctx.saveModel`);
  }
  return { modelDir: join(runDir, 'model'), runDir, run };
}

const readJson = (path: string): Record<string, unknown> => {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
};

function runId(runDir: string, experiments: string): string | null {
  try {
    return findRun(experiments, runDir).id;
  } catch {
    return null;
  }
}

/** A run's final metrics, as its result.json holds them (rank 0's last reported values). */
function finalMetrics(runDir: string): Record<string, number> {
  const result = readJson(join(runDir, 'result.json'));
  const metrics = result.metrics as Record<string, unknown> | undefined;
  const numeric = Object.entries(metrics ?? {}).filter((e): e is [string, number] => typeof e[1] === 'number');
  return Object.fromEntries(numeric);
}

/** Adds the model as the next version of `name`; returns its number and folder. */
export async function registerModel(
  ref: string,
  o: { name: string; repo?: string; experiments: string },
): Promise<{ name: string; version: number; dir: string }> {
  const repo = o.repo ?? DEFAULT_REPO;
  const name = checkModelName(o.name);
  const source = resolveSource(ref, o.experiments);
  for (const file of [MODEL_JSON, WEIGHTS_BIN, SIGNATURE_JSON]) {
    if (!existsSync(join(source.modelDir, file))) {
      throw new ModelRepoError(`${source.modelDir} has no ${file}: a model folder is what ctx.saveModel writes`);
    }
  }
  const signature = JSON.parse(await readFile(join(source.modelDir, SIGNATURE_JSON), 'utf8')) as ModelSignature;
  const spec = source.runDir ? readJson(join(source.runDir, 'spec.json')) : {};
  const home = modelDir(repo, name);
  await mkdir(home, { recursive: true });
  const staging = join(home, `.staging-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(staging);
  try {
    for (const file of [MODEL_JSON, WEIGHTS_BIN, SIGNATURE_JSON])
      await copyFile(join(source.modelDir, file), join(staging, file));
    for (let attempt = 0; ; attempt++) {
      const v = (versionsOf(repo, name).at(-1) ?? 0) + 1; // read again after a lost race
      const info: VersionInfo = {
        name,
        version: v,
        registeredAt: new Date().toISOString(),
        source: {
          run: source.run ?? (source.runDir ? runId(source.runDir, o.experiments) : null),
          runDir: source.runDir,
          modelDir: source.modelDir,
        },
        hparams: (spec.hparams as Record<string, unknown> | undefined) ?? {},
        metrics: source.runDir ? finalMetrics(source.runDir) : {},
        signature,
      };
      await writeFile(join(staging, VERSION_JSON), `${JSON.stringify(info, null, 2)}\n`);
      try {
        await rename(staging, join(home, String(v)));
        return { name, version: v, dir: join(home, String(v)) };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || attempt > 100) throw err;
      }
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

export interface ModelListing {
  name: string;
  versions: Array<Pick<VersionInfo, 'version' | 'registeredAt' | 'metrics' | 'hparams'> & { run: string | null }>;
  policy: ModelPolicy;
}

export function listModels(repo: string): ModelListing[] {
  return modelNames(repo).map((name) => ({
    name,
    versions: versionsOf(repo, name).map((v) => {
      const info = readVersion(repo, name, v);
      return {
        version: v,
        registeredAt: info.registeredAt,
        run: info.source.run,
        metrics: info.metrics,
        hparams: info.hparams,
      };
    }),
    policy: readPolicy(repo, name),
  }));
}

/** The versions a policy keeps loaded, of those present. */
export function versionsToLoad(present: number[], policy: ModelPolicy): number[] {
  const keep = new Set(present.slice(-policy.keep_latest));
  for (const v of policy.pinned) keep.add(v);
  if (policy.routing.kind === 'only') keep.add(policy.routing.version);
  if (policy.routing.kind === 'canary') for (const v of Object.keys(policy.routing.weights)) keep.add(Number(v));
  if (policy.shadow) keep.add(policy.shadow);
  return present.filter((v) => keep.has(v));
}
