/**
 * The Python API on real Spark, from a user's script in a folder of its own: a DataFrame built in
 * the session (a join, a filter, computed and UDF columns) handed to `sparkring.allreduce` on
 * local-cluster[2,1,1024] trains to the weights one worker gets on the same rows, every row used
 * once; with max_attempts=2 and a worker killed -9, the second attempt runs in the same Spark
 * application and ends on the same weights.
 */
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { followLines, PYTHON, pidOf, tempDir, waitForNoLeftovers } from '../helpers/spark.js';

const TRAIN = `import type { TrainContext } from 'sparkring';

export default async function train(ctx: TrainContext) {
  const { tf } = ctx;
  const h = ctx.hparams as { epochs: number; epochMs: number };
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [4] })] });
  model.setWeights([tf.tensor2d([0.1, -0.2, 0.3, 0.05], [4, 1]), tf.tensor1d([0.5])]);
  model.compile({ optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError' });
  const history = await ctx.fit(model, {
    label: 'y',
    features: ['x0', 'x1', 'x2', 'x3'],
    batchSize: 100000,
    epochs: h.epochs,
    shuffle: false,
    callbacks: { onEpochEnd: () => new Promise((r) => setTimeout(r, h.epochMs)) },
  });
  const weights = (await Promise.all(model.getWeights().map((w) => w.data()))).flatMap((d) => [...d]);
  const ids = Array.from(ctx.data.column('id').values as ArrayLike<number | bigint>, Number);
  return { attempt: ctx.attempt, weights, loss: history.history.loss, ids: await ctx.allgather(ids) };
}
`;

// What a PySpark user writes: their own session and DataFrame, then one call.
const SCRIPT = `import json, sys
from pyspark.sql import SparkSession, functions as F
import sparkring

entry, out, mode, experiments = sys.argv[1:5]
spark = (
    SparkSession.builder.master("local-cluster[2,1,1024]")
    .appName("python-api-test")
    .config("spark.executor.memory", "512m")
    .config("spark.ui.showConsoleProgress", "false")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")
quarter = F.udf(lambda v: float(v) * float(v) / 4.0, "double")
base = spark.range(0, 3000).select(
    "id", ((F.col("id") * 7 % 17 - 8) / 4).alias("x0"), ((F.col("id") * 13 % 17 - 8) / 4).alias("x1")
)
extra = spark.range(0, 3000).filter(F.col("id") % 7 != 0).select("id", ((F.col("id") * 5 % 11 - 5) / 3).alias("x2"))
df = (
    base.join(extra, "id")
    .filter(F.col("x0") > -1.9)
    .withColumn("x3", quarter("x1"))
    .withColumn("y", 0.5 * F.col("x0") - 0.25 * F.col("x1") + F.col("x2") + 0.125 * F.col("x3") + 1.0)
)
ids = sorted(r.id for r in df.select("id").collect())

def summary(run):
    return {"result": run.result, "attempts": run.attempts, "appId": run.app_id, "dir": run.dir, "backends": run.backends}

if mode == "same":
    two = sparkring.allreduce(entry, df, num_workers=2, hparams={"epochs": 3, "epochMs": 0}, experiments=experiments)
    one = sparkring.allreduce(entry, df, num_workers=1, hparams={"epochs": 3, "epochMs": 0}, experiments=experiments)
    report = {"two": summary(two), "one": summary(one)}
else:
    hp = {"epochs": 8, "epochMs": 400}
    unbroken = sparkring.allreduce(entry, df, num_workers=2, hparams=hp, experiments=experiments, name="unbroken")
    print("sparkring-test: unbroken run done", flush=True)
    retried = sparkring.allreduce(entry, df, num_workers=2, hparams=hp, max_attempts=2, experiments=experiments, name="retried")
    report = {"unbroken": summary(unbroken), "retried": summary(retried)}
report["ids"] = ids
report["spark"] = spark.version
report["appId"] = spark.sparkContext.applicationId
with open(out, "w") as f:
    json.dump(report, f)
spark.stop()
`;

interface RunSummary {
  result: { attempt: number; weights: number[]; loss: number[]; ids: number[][] };
  attempts: number;
  appId: string;
  dir: string;
  backends: string[];
}

let dir: string;
/** The user's Python: the venv's, or another PySpark's (make smoke-pyspark4 points it at a 4.x venv). */
const USER_PYTHON = process.env.SPARKRING_TEST_PYTHON ?? PYTHON;

async function python(mode: 'same' | 'retry', onLine: (line: string) => void = () => {}) {
  const out = join(dir, `${mode}.json`);
  const child = execa(USER_PYTHON, [join(dir, 'run.py'), join(dir, 'train.ts'), out, mode, join(dir, 'experiments')], {
    cwd: dir,
    // The executors' Python: what a cluster's PySpark users set up once (spark.pyspark.python applies to spark-submit only).
    env: { PYSPARK_PYTHON: USER_PYTHON },
    all: true,
    reject: false,
  });
  const lines = followLines(child, onLine);
  const r = await child;
  expect(r.exitCode, lines.slice(-40).join('\n')).toBe(0);
  return { report: JSON.parse(await readFile(out, 'utf8')) as Record<string, unknown> & { ids: number[]; appId: string }, lines };
}

beforeAll(() => {
  dir = tempDir('python-api');
  writeFileSync(join(dir, 'train.ts'), TRAIN);
  writeFileSync(join(dir, 'run.py'), SCRIPT);
});

afterEach(async () => {
  expect(await waitForNoLeftovers()).toEqual([]);
});

describe('sparkring.allreduce from a PySpark script', () => {
  it("trains the session's DataFrame to one worker's weights, every row used once", async () => {
    const { report, lines } = await python('same');
    const two = report.two as RunSummary;
    const one = report.one as RunSummary;
    // make smoke-pyspark4 names the PySpark it points the script at.
    expect(report.spark).toBe(process.env.SPARKRING_TEST_SPARK ?? '3.5.6');
    const seen = two.result.ids.flat().sort((a, b) => a - b);
    expect(seen).toEqual(report.ids);
    expect(two.result.ids.every((part) => part.length > 0)).toBe(true);
    expect(one.result.ids.flat().sort((a, b) => a - b)).toEqual(report.ids);
    two.result.weights.forEach((w, i) => {
      expect(w).toBeCloseTo(one.result.weights[i] as number, 5);
    });
    expect(two.appId).toBe(report.appId);
    expect(two.backends).toHaveLength(2);
    // The CLI's own progress lines, on the script's stdout.
    expect(lines).toContain('[worker 1] joined the ring');
    expect(lines.some((l) => /^\[worker 0\] step \d+/.test(l))).toBe(true);
  }, 300_000);

  it('max_attempts=2 with a worker killed -9: two attempts in one Spark application, the same weights', async () => {
    let unbrokenDone = false;
    let killed = false;
    const { report, lines } = await python('retry', (line) => {
      if (line.includes('sparkring-test: unbroken run done')) unbrokenDone = true;
      const step = /^\[worker \d\] step (\d+)/.exec(line);
      if (unbrokenDone && !killed && step && Number(step[1]) >= 3) {
        const pid = pidOf(/node .*runtime\/main\.js/);
        if (pid) {
          killed = true;
          process.kill(pid, 'SIGKILL');
        }
      }
    });
    const unbroken = report.unbroken as RunSummary;
    const retried = report.retried as RunSummary;
    expect(killed).toBe(true);
    expect(retried.attempts).toBe(2);
    expect(retried.result.attempt).toBe(1);
    expect(retried.appId).toBe(report.appId);
    expect(unbroken.appId).toBe(report.appId);
    // Full-batch steps: the same weights up to float32 summation order (each attempt's stage runs the
    // join again, and its rows may reach the round-robin repartition in another order).
    retried.result.weights.forEach((w, i) => {
      expect(w).toBeCloseTo(unbroken.result.weights[i] as number, 5);
    });
    expect(retried.result.ids.flat().sort((a, b) => a - b)).toEqual(report.ids);
    expect(
      lines.some((l) => /^sparkring: attempt 1 failed: worker \d failed: .*; retrying from the last checkpoint$/.test(l)),
    ).toBe(true);
    expect(lines).toContain('sparkring: attempt 2 of 2, in the same Spark application');
  }, 400_000);
});
