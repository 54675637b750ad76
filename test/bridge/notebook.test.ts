/**
 * The Python API from a Jupyter kernel, run headless by nbclient: a cell that builds a DataFrame in
 * its session and calls `sparkring.allreduce` shows the progress (the lines, and a per-worker table
 * of step, loss and samples/s updated in place) and the result, in the cell's own output.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, expect, it } from 'vitest';
import { FIXTURES, PYTHON, tempDir, waitForNoLeftovers } from '../helpers/spark.js';

const TRAIN = `import type { TrainContext } from 'sparkring';

export default async function train(ctx: TrainContext) {
  const { tf } = ctx;
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2] })] });
  model.compile({ optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError' });
  const history = await ctx.fit(model, { label: 'y', features: ['a', 'b'], batchSize: 32, epochs: 2 });
  return { rows: ctx.data.numRows, loss: history.history.loss };
}
`;

const CELLS = [
  `import os, sys
from pyspark.sql import SparkSession, functions as F
import sparkring
spark = (SparkSession.builder.master("local-cluster[2,1,1024]").appName("notebook-test")
         .config("spark.executor.memory", "512m").config("spark.ui.showConsoleProgress", "false").getOrCreate())
spark.sparkContext.setLogLevel("ERROR")
df = spark.range(0, 400).select((F.col("id") % 10 / 10).alias("a"), (F.col("id") % 7 / 7).alias("b"))
df = df.withColumn("y", 2 * F.col("a") - F.col("b"))`,
  `run = sparkring.allreduce("train.ts", df, num_workers=2, experiments="experiments")
print("RESULT", run.result["rows"], run.attempts)`,
  'spark.stop()',
];

interface Output {
  output_type: string;
  text?: string | string[];
  data?: Record<string, string | string[]>;
}

afterEach(async () => {
  expect(await waitForNoLeftovers()).toEqual([]);
});

it("a notebook cell shows the run's progress table, its lines and its result", async () => {
  const dir = tempDir('notebook');
  writeFileSync(join(dir, 'train.ts'), TRAIN);
  const notebook = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' } },
    cells: CELLS.map((source, i) => ({
      cell_type: 'code',
      id: `cell-${i}`,
      metadata: {},
      source,
      outputs: [],
      execution_count: null,
    })),
  };
  writeFileSync(join(dir, 'train.ipynb'), JSON.stringify(notebook));
  const r = await execa(PYTHON, [join(FIXTURES, 'run-notebook.py'), 'train.ipynb', 'done.ipynb'], {
    cwd: dir,
    env: { PYSPARK_PYTHON: PYTHON },
    all: true,
    reject: false,
  });
  expect(r.exitCode, r.all?.slice(-4000)).toBe(0);
  const done = JSON.parse(readFileSync(join(dir, 'done.ipynb'), 'utf8')) as { cells: Array<{ outputs: Output[] }> };
  const outputs = done.cells[1]?.outputs ?? [];
  const join_ = (v: string | string[] | undefined): string => (Array.isArray(v) ? v.join('') : (v ?? ''));
  const stdout = outputs
    .filter((o) => o.output_type === 'stream')
    .map((o) => join_(o.text))
    .join('');
  expect(stdout).toMatch(/^\[worker 1\] joined the ring$/m);
  expect(stdout).toMatch(/^\[worker 0\] step \d+ {2}loss /m);
  expect(stdout).toMatch(/^RESULT \d+ 1$/m);
  const table = outputs.find((o) => o.output_type === 'display_data' && join_(o.data?.['text/html']).includes('<table>'));
  const html = join_(table?.data?.['text/html']);
  // The table as it was last updated: a row per worker (labelled, as a search's rows are by trial),
  // with its step, loss and samples/s.
  expect(html).toContain('<tr><th></th><th>step</th>');
  expect(html).toContain('<th>loss</th>');
  expect(html).toContain('<th>samples/s</th>');
  expect(html).toMatch(/<tr><td>worker 0<\/td><td>\d+<\/td>.*<tr><td>worker 1<\/td><td>\d+<\/td>/);
}, 300_000);
