/**
 * `sparkring predict` and `predict()`: scores a table with a model ctx.saveModel wrote, on Spark
 * executors (spark-plugin/sparkring/predict_job.py and scoring.py), and writes the table with the
 * prediction column appended. The model loads once per executor core and stays for its tasks.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TfBackendChoice } from '../runtime/backend.js';
import { type DriverError, driverError } from './driver-error.js';
import { RunError } from './errors.js';
import { packageRoot, requireSparkPaths } from './paths.js';
import { checkEmbeddedSlots, defaultMaster, runSparkSubmit, submitError } from './spark-submit.js';

export interface PredictOptions {
  /** A folder ctx.saveModel wrote, or a run folder with model/ in it. */
  model: string;
  data: string;
  out: string;
  /** Feature columns in the model's input order; default: the model's signature.json. */
  features?: string[];
  /** Rows a model call takes at most (default 4096). */
  batchSize?: number;
  /** The prediction column's name; default the signature's ("prediction"). */
  output?: string;
  /** Score only the rows whose column equals the value (e.g. the held-out rows: { column: 'is_test', value: 1 }). */
  where?: { column: string; value: number };
  /** Executors of the embedded local Spark (default 2); ignored with `master`. */
  executors?: number;
  master?: string;
  overwrite?: boolean;
  tfBackend?: TfBackendChoice;
  sparkConf?: Record<string, string>;
  onProgress?: (line: string) => void;
}

export interface PredictResult {
  appId: string;
  out: string;
  rows: number;
  /** Times a model was loaded: once per executor core that ran a task. */
  loads: number;
  /** Tasks that scored a partition (more than loads: the processes served later tasks too). */
  tasks: number;
  output: string;
  features: string[];
  scoreMs: number;
  releaseMs: number | null;
}

interface PredictDriverResult extends Partial<PredictResult> {
  ok?: boolean;
  error?: DriverError;
}

function modelFolder(model: string): string {
  const dir = resolve(model);
  for (const candidate of [dir, join(dir, 'model')]) if (existsSync(join(candidate, 'signature.json'))) return candidate;
  throw new RunError(
    'input',
    `no model at ${model}: pass a folder ctx.saveModel wrote (model.json, weights.bin, signature.json) or a run folder with model/ in it`,
    { code: 'SR_PREDICT_MODEL', final: true },
  );
}

export async function predict(o: PredictOptions): Promise<PredictResult> {
  const model = modelFolder(o.model);
  if (!existsSync(o.data)) throw new RunError('input', `--data ${o.data}: no such file or folder`, { code: 'SR_DATA_PATH' });
  const executors = o.executors ?? 2;
  if (!o.master) checkEmbeddedSlots(executors, '--executors');
  const batchSize = o.batchSize ?? 4096;
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RunError('input', `--batch-size must be a positive integer, not ${batchSize}`);
  const paths = requireSparkPaths();
  const staging = await mkdtemp(join(tmpdir(), 'sparkring-predict-'));
  try {
    const resultPath = join(staging, 'result.json');
    const spec = {
      kind: 'predict',
      model,
      data: resolve(o.data),
      out: resolve(o.out),
      overwrite: o.overwrite ?? false,
      features: o.features ?? null,
      batchSize,
      output: o.output ?? null,
      where: o.where ?? null,
      node: process.execPath,
      script: join(packageRoot(), 'dist', 'src', 'predict', 'server.js'),
      tfBackend: o.tfBackend ?? 'auto',
      resultPath,
    };
    const specPath = join(staging, 'spec.json');
    await writeFile(specPath, JSON.stringify(spec, null, 2));
    const say = o.onProgress ?? ((line: string) => process.stderr.write(`${line}\n`));
    const master = o.master ?? defaultMaster(executors);
    say(`sparkring: scoring ${o.data} with ${model} on ${master}`);
    const outcome = await runSparkSubmit(
      { workers: executors, master, gpusPerWorker: 0, sparkConf: o.sparkConf ?? {} },
      paths,
      [paths.submitFile, specPath],
      undefined,
      (line) => {
        if (line.startsWith('sparkring predict:')) say(line.replace('sparkring predict:', 'sparkring:'));
      },
    );
    const driver = existsSync(resultPath) ? (JSON.parse(await readFile(resultPath, 'utf8')) as PredictDriverResult) : undefined;
    if (!driver) throw submitError(outcome);
    if (!driver.ok) throw driver.error ? driverError(driver.error, []) : submitError(outcome);
    return {
      appId: driver.appId as string,
      out: driver.out as string,
      rows: driver.rows as number,
      loads: driver.loads as number,
      tasks: driver.tasks as number,
      output: driver.output as string,
      features: driver.features as string[],
      scoreMs: driver.scoreMs as number,
      releaseMs: driver.releaseMs ?? null,
    };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
