/**
 * Spark Connect: against a real Spark Connect server, `sparkring.allreduce` and `sparkring.launch`
 * refuse a remote session with one line that says why and where to run instead, before anything
 * starts; the same session still runs its own queries.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PYTHON, tempDir, waitForNoLeftovers } from '../helpers/spark.js';
import { TestSparkConnect } from '../helpers/spark-connect.js';

const SCRIPT = `import sys
from pyspark.sql import SparkSession, functions as F
import sparkring

spark = SparkSession.builder.remote(sys.argv[1]).getOrCreate()
df = spark.range(0, 100).withColumn("y", F.col("id") * 2)
print("CONNECT", type(spark).__module__, df.count(), flush=True)
for call in (lambda: sparkring.allreduce("train.ts", df, num_workers=2),
             lambda: sparkring.launch("trial.ts", grid={"lr": [0.1, 0.01]}, spark=spark)):
    try:
        call()
        print("NOT REFUSED")
    except sparkring.RunError as e:
        print("REFUSED", e.kind, e.code, str(e), flush=True)
print("STILL", df.filter(F.col("y") > 100).count(), flush=True)
spark.stop()
`;

let server: TestSparkConnect;

beforeAll(async () => {
  server = await TestSparkConnect.start();
}, 120_000);
afterAll(async () => {
  await server?.stop();
  expect(await waitForNoLeftovers()).toEqual([]);
});

it('refuses a Spark Connect session with one line, before anything starts', async () => {
  const dir = tempDir('spark-connect');
  writeFileSync(join(dir, 'train.ts'), 'export default async function train() { return 1; }\n');
  writeFileSync(join(dir, 'trial.ts'), 'export default async function train() { return { loss: 1 }; }\n');
  writeFileSync(join(dir, 'client.py'), SCRIPT);
  const r = await execa(PYTHON, [join(dir, 'client.py'), server.url], { cwd: dir, all: true, reject: false });
  expect(r.exitCode, `${r.all}\n${server.log()}`).toBe(0);
  expect(r.stdout).toMatch(/^CONNECT pyspark\.sql\.connect\.session 100$/m);
  const refusals = r.stdout.split('\n').filter((l) => l.startsWith('REFUSED'));
  expect(refusals).toHaveLength(2);
  for (const line of refusals) {
    expect(line).toMatch(
      /^REFUSED input SR_SPARK_CONNECT sparkring\.(allreduce|launch) needs a classic SparkSession, not Spark Connect: .*barrier stage.*; run it where the driver runs/,
    );
  }
  expect(r.stdout).not.toContain('NOT REFUSED');
  expect(r.stdout).toMatch(/^STILL 49$/m);
}, 180_000);
