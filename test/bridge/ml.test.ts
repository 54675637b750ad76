/**
 * Spark ML: `sparkring.ml.Estimator` in a `pyspark.ml.Pipeline` after a feature stage, from a
 * user's script in a folder of its own on local-cluster[2,1,1024]. The fitted PipelineModel scores
 * every row once, as `sparkring.predict(df, run.dir)` does and as tfjs's own loadLayersModel does
 * in a plain Node process; saved and loaded again (with the run's folder gone), it scores the same.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, expect, it } from 'vitest';
import { predictInPlainNode } from '../helpers/load-model.js';
import { PYTHON, tempDir, waitForNoLeftovers } from '../helpers/spark.js';

const TRAIN = `import type { TrainContext } from 'sparkring';

export default async function train(ctx: TrainContext) {
  const { tf } = ctx;
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 8, inputShape: [4], activation: 'relu' }),
      tf.layers.dense({ units: 1 }),
    ],
  });
  model.compile({ optimizer: tf.train.sgd(0.02), loss: 'meanSquaredError' });
  const history = await ctx.fit(model, { label: 'y', features: ['x0', 'x1', 'x2', 'x3'], batchSize: 64, epochs: Number(ctx.hparams.epochs) });
  await ctx.saveModel(model);
  return { loss: history.history.loss };
}
`;

const SCRIPT = `import json, shutil, sys
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import SQLTransformer
from pyspark.sql import SparkSession, functions as F
import sparkring
from sparkring.ml import Estimator

out, saved = sys.argv[1:3]
spark = (SparkSession.builder.master("local-cluster[2,1,1024]").appName("ml-test")
         .config("spark.executor.memory", "512m").config("spark.ui.showConsoleProgress", "false").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
df = spark.range(0, 2009).select(
    "id", ((F.col("id") * 7 % 17 - 8) / 4).alias("x0"), ((F.col("id") * 13 % 17 - 8) / 4).alias("x1"),
    ((F.col("id") * 5 % 11 - 5) / 3).alias("x2"),
).withColumn("y", 0.5 * F.col("x0") - 0.25 * F.col("x1") + F.col("x2") + 1.0)
features = SQLTransformer(statement="SELECT *, x1 * x1 / 4.0 AS x3 FROM __THIS__")
estimator = Estimator(entry="train.ts", num_workers=2, hparams={"epochs": 3}, experiments="experiments", prediction_col="yhat")
pipeline = Pipeline(stages=[features, estimator])
model = pipeline.fit(df)
run = model.stages[1].run

def by_id(frame, column):
    return {r.id: r[column] for r in frame.select("id", column).collect()}

piped = by_id(model.transform(df), "yhat")
direct = by_id(sparkring.predict(features.transform(df), run.dir), "prediction")
model.write().overwrite().save(saved)
pipeline.write().overwrite().save(saved + "-unfitted")
shutil.rmtree(run.dir)
reloaded = by_id(PipelineModel.load(saved).transform(df), "yhat")
again = Pipeline.load(saved + "-unfitted").getStages()[1]
report = {
    "rows": df.count(), "attempts": run.attempts, "workers": len(run.ranks),
    "piped": piped, "direct": direct, "reloaded": reloaded,
    "unfitted": {"numWorkers": again.getOrDefault("numWorkers"), "hparams": again.getOrDefault("hparams"),
                 "entry": again.getOrDefault("entry")},
    "sample": [[r.x0, r.x1, r.x2, r.x3, r.id] for r in features.transform(df).orderBy("id").limit(16).collect()],
}
with open(out, "w") as f:
    json.dump(report, f)
spark.stop()
`;

afterEach(async () => {
  expect(await waitForNoLeftovers()).toEqual([]);
});

it('an Estimator in a Pipeline fits, scores every row once, and saves and loads with its model', async () => {
  const dir = tempDir('ml');
  writeFileSync(join(dir, 'train.ts'), TRAIN);
  writeFileSync(join(dir, 'pipeline.py'), SCRIPT);
  const out = join(dir, 'out.json');
  const saved = join(dir, 'saved-pipeline');
  const r = await execa(PYTHON, [join(dir, 'pipeline.py'), out, saved], {
    cwd: dir,
    env: { PYSPARK_PYTHON: PYTHON },
    all: true,
    reject: false,
  });
  expect(r.exitCode, r.all?.slice(-4000)).toBe(0);
  const report = JSON.parse(readFileSync(out, 'utf8')) as {
    rows: number;
    attempts: number;
    workers: number;
    piped: Record<string, number>;
    direct: Record<string, number>;
    reloaded: Record<string, number>;
    unfitted: { numWorkers: number; hparams: Record<string, unknown>; entry: string };
    sample: number[][];
  };
  expect(report.workers).toBe(2);
  expect(report.attempts).toBe(1);
  const ids = Array.from({ length: report.rows }, (_, i) => String(i));
  for (const scored of [report.piped, report.direct, report.reloaded]) {
    expect(Object.keys(scored).sort()).toEqual([...ids].sort());
  }
  for (const id of ids) {
    expect(report.direct[id]).toBe(report.piped[id]);
    expect(report.reloaded[id]).toBe(report.piped[id]);
  }
  expect(report.unfitted).toEqual({ numWorkers: 2, hparams: { epochs: 3 }, entry: join(dir, 'train.ts') });

  // The saved model as tfjs-node itself loads it, in a plain Node process of the user's.
  const stage = readdirSync(join(saved, 'stages')).find((d) => d.startsWith('1_')) as string;
  const loaded = predictInPlainNode(
    join(saved, 'stages', stage, 'model'),
    report.sample.map((row) => row.slice(0, 4)),
  );
  report.sample.forEach((row, i) => {
    expect(loaded[i]).toBeCloseTo(report.piped[String(row[4])] as number, 4);
  });
}, 400_000);
