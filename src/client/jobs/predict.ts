/**
 * The predict kind (`sparkring predict`, `predict()`): scores a table with a model ctx.saveModel
 * wrote, on Spark executors (spark-plugin/sparkring/driver/predict_job.py and scoring.py), and writes the
 * table with the prediction column appended. The model loads once per executor core and stays for
 * its tasks. Scoring runs the executors' installed runtime: it ships none.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { RunError } from '../errors.js';
import { packageRoot } from '../submission/paths.js';
import { driverResultSchema } from './driver-result-base.js';
import { specRedis } from './job-spec.js';
import type { JobKind } from './kind.js';
import { jobFields, parseOptions } from './options.js';
import { runJob } from './run-job.js';

const { entry: _entry, experiments: _experiments, ...envelopeFields } = jobFields;

export const predictOptionsSchema = z.object({
  ...envelopeFields,
  /** A folder ctx.saveModel wrote, or a run folder with model/ in it. */
  model: z.string().min(1),
  data: z.string().min(1),
  out: z.string().min(1),
  /** Feature columns in the model's input order; default: the model's signature.json. */
  features: z.array(z.string().min(1)).optional(),
  /** Rows a model call takes at most. */
  batchSize: z.number().int().positive().default(4096),
  /** The prediction column's name; default the signature's ("prediction"). */
  output: z.string().min(1).optional(),
  /** Score only the rows whose column equals the value (e.g. the held-out rows: { column: 'is_test', value: 1 }). */
  where: z.object({ column: z.string().min(1), value: z.number() }).optional(),
  /** Executors of the embedded local Spark; the cluster's own with `master`. */
  executors: z.number().int().positive().default(2),
  overwrite: z.boolean().default(false),
});
export type PredictOptions = z.input<typeof predictOptionsSchema>;
type ResolvedPredictOptions = z.output<typeof predictOptionsSchema> & { name: string; modelDir: string };

/** Every option's default, from the schema: the CLI's flags show and use these. */
export const PREDICT_DEFAULTS = predictOptionsSchema.parse({ model: '-', data: '-', out: '-' });

export const predictResultSchema = driverResultSchema({
  out: z.string(),
  rows: z.number().int(),
  /** Times a model was loaded: once per executor core that ran a task. */
  loads: z.number().int(),
  /** Tasks that scored a partition (more than loads: the processes served later tasks too). */
  tasks: z.number().int(),
  output: z.string(),
  features: z.array(z.string()),
  scoreMs: z.number(),
  releaseMs: z.number().nullable(),
  /** Set when executors were still listed after the release's wait (spark-plugin/sparkring/driver/executors.py). */
  releaseNote: z.string().optional(),
});
type PredictDriverResult = z.infer<typeof predictResultSchema>;

export interface PredictResult {
  appId: string;
  out: string;
  rows: number;
  loads: number;
  tasks: number;
  output: string;
  features: string[];
  scoreMs: number;
  releaseMs: number | null;
}

export interface PredictSpec {
  kind: 'predict';
  model: string;
  data: string;
  out: string;
  overwrite: boolean;
  features: string[] | null;
  batchSize: number;
  output: string | null;
  where: { column: string; value: number } | null;
  node: string;
  script: string;
  tfBackend: string;
  resultPath: string;
  secret: string;
  redis: ReturnType<typeof specRedis>;
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

export const predictJob: JobKind<PredictOptions, ResolvedPredictOptions, PredictSpec, PredictDriverResult, PredictResult> = {
  kind: 'predict',
  noun: 'scoring',
  resolve(input) {
    const o = parseOptions(predictOptionsSchema, input);
    return { ...o, name: o.name ?? 'predict', modelDir: modelFolder(o.model) };
  },
  executors: (o) => ({ count: o.executors, flag: '--executors' }),
  preflight(o) {
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(o.data) && !existsSync(o.data)) {
      throw new RunError('input', `--data ${o.data}: no such file or folder`, { code: 'SR_DATA_PATH' });
    }
  },
  async spec(run) {
    const { o } = run;
    return {
      kind: 'predict',
      model: o.modelDir,
      data: /^[a-z][a-z0-9+.-]*:\/\//i.test(o.data) ? o.data : resolve(o.data),
      out: resolve(o.out),
      overwrite: o.overwrite,
      features: o.features ?? null,
      batchSize: o.batchSize,
      output: o.output ?? null,
      where: o.where ?? null,
      node: process.execPath,
      script: join(packageRoot(), 'dist', 'src', 'predict', 'server.js'),
      tfBackend: o.tfBackend,
      resultPath: run.resultPath,
      secret: run.secret,
      redis: specRedis(run.redis),
    };
  },
  submission: (o) => ({
    line: `sparkring: scoring ${o.data} with ${o.modelDir} on ${o.livy ?? o.master ?? `the embedded local Spark (${o.executors} executors)`}`,
    settings: { gpusPerWorker: 0 },
  }),
  onSubmitLine(line, run) {
    if (line.startsWith('sparkring predict:')) run.say(line.replace('sparkring predict:', 'sparkring:'));
  },
  result: predictResultSchema,
  async finish(run, _state, d) {
    if (d.releaseNote) run.say(`sparkring: ${d.releaseNote}`);
    const { appId, out, rows, loads, tasks, output, features, scoreMs, releaseMs } = d;
    return { appId, out, rows, loads, tasks, output, features, scoreMs, releaseMs };
  },
};

export const predict = (input: PredictOptions): Promise<PredictResult> => runJob(predictJob, input);
