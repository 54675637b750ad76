/**
 * `sparkring.launch` from a user's PySpark script, in a folder of its own, on the script's own
 * SparkSession (local-cluster[2,1,1024]): a grid search in which every trial is done exactly once,
 * in that session's application, with the best one right; then an ASHA search from the same
 * session, whose poor trials stop early.
 */
import { copyFileSync, readdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, expect, it } from 'vitest';
import { entry, PYTHON, tempDir, waitForNoLeftovers } from '../helpers/spark.js';

const SCRIPT = `import json, sys
from dataclasses import asdict
from pyspark.sql import SparkSession
import sparkring

out, experiments = sys.argv[1:3]
spark = (
    SparkSession.builder.master("local-cluster[2,1,1024]")
    .appName("python-launch-test")
    .config("spark.executor.memory", "512m")
    .config("spark.ui.showConsoleProgress", "false")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")
grid = sparkring.launch("quadratic.ts", grid={"x": [1, 2, 3, 4, 5]}, hparams={"steps": 3},
                        metric="loss", direction="min", executors=2, experiments=experiments, name="grid")
asha = sparkring.launch("quadratic.ts", grid={"x": [0, 1, 2, 3, 4, 5]}, hparams={"steps": 9, "stepMs": 200},
                        executors=2, asha={"min_steps": 1, "eta": 3, "max_steps": 9}, lease_s=2,
                        experiments=experiments, name="asha")
with open(out, "w") as f:
    json.dump({"grid": asdict(grid), "asha": asdict(asha), "appId": spark.sparkContext.applicationId}, f)
spark.stop()
`;

interface Trial {
  id: string;
  hparams: { x: number };
  status: string;
  metric: number | null;
  attempts: number;
  stopped_early: boolean;
  result: { x: number } | null;
}
interface Search {
  best: Trial | null;
  trials: Trial[];
  dir: string;
  app_id: string;
}

afterEach(async () => {
  expect(await waitForNoLeftovers()).toEqual([]);
});

it("searches in the script's own session: every trial done once, the best one right, ASHA stopping early", async () => {
  const dir = tempDir('python-launch');
  copyFileSync(entry('quadratic.ts'), join(dir, 'quadratic.ts'));
  writeFileSync(join(dir, 'search.py'), SCRIPT);
  const out = join(dir, 'out.json');
  const r = await execa(PYTHON, [join(dir, 'search.py'), out, join(dir, 'experiments')], {
    cwd: dir,
    env: { PYSPARK_PYTHON: PYTHON },
    all: true,
    reject: false,
  });
  expect(r.exitCode, r.all?.slice(-4000)).toBe(0);
  const report = JSON.parse(await readFile(out, 'utf8')) as { grid: Search; asha: Search; appId: string };
  const { grid, asha } = report;

  expect(grid.app_id).toBe(report.appId);
  expect(grid.trials.map((t) => t.hparams.x).sort()).toEqual([1, 2, 3, 4, 5]);
  for (const t of grid.trials) {
    expect(t.status).toBe('done');
    expect(t.attempts).toBe(1);
    expect(t.metric).toBeCloseTo((t.hparams.x - 3) ** 2 + 1 / 3, 9);
  }
  expect(grid.best?.hparams.x).toBe(3);
  expect(grid.best?.result).toEqual({ x: 3 });
  expect(
    readdirSync(grid.dir)
      .filter((f) => f.startsWith('trial-'))
      .sort(),
  ).toEqual(['0', '1', '2', '3', '4'].map((id) => `trial-${id}`));
  // The grid search's own lines: those before the ASHA search starts.
  const lines = (r.all ?? '').split(/^sparkring: searching asha /m)[0] ?? '';
  expect(lines).toMatch(new RegExp(`^sparkring: searching grid on 2 executors in ${report.appId}$`, 'm'));
  for (const id of ['0', '1', '2', '3', '4']) {
    expect(lines.match(new RegExp(`^sparkring: trial ${id} done: loss=`, 'gm'))).toHaveLength(1);
  }

  expect(asha.app_id).toBe(report.appId);
  expect(asha.best?.hparams.x).toBe(3);
  expect(asha.trials.every((t) => t.status === 'done' && t.attempts === 1)).toBe(true);
  expect(asha.trials.some((t) => t.stopped_early)).toBe(true);
  expect(asha.trials.find((t) => t.hparams.x === 3)?.stopped_early).toBe(false);
}, 400_000);
