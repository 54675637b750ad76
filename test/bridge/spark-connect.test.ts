/**
 * Spark Connect: the Python API from a client that has a Connect session and no SparkContext, against
 * PySpark 4's own Connect server over local-cluster[2,1,1024], whose executors' Python has no
 * sparkring (the client ships it). Two clients run the same user script: PySpark 4 in full, and a venv
 * with only pyspark-client and the sparkring wheel, run with no JVM on its PATH. The script:
 * logistic regression through `sparkring.allreduce` on a computed, filtered DataFrame equals NumPy's
 * full-batch descent; `launch` runs a small grid; `predict` scores every row once; `register` adds
 * the model to a repository; a worker's own failure comes back as a typed RunError; the Estimator fits
 * and transforms inside a Pipeline; with max_attempts=2 and a worker killed -9, the second attempt
 * ends on the unbroken run's weights. Then Ctrl-C of a client mid-training: the job is gone from the
 * server's UI within 10 s, and nothing is left behind.
 */
import { mkdirSync, readdirSync, readFileSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { followLines, processes, ROOT, tempDir, waitForNoLeftovers } from '../helpers/spark.js';
import { CONNECT_CLIENT_VENV, CONNECT_SERVER_PYTHON, CONNECT_SPARK_VERSION, TestSparkConnect } from '../helpers/spark-connect.js';

// Logistic regression by hand (bench/entries/logistic.mjs, which `npm run bench -- connect` runs):
// each step's gradient is the sum over every rank's rows divided by their count, so any split of the
// rows gives NumPy's full-batch descent.
const LOGISTIC = readFileSync(join(ROOT, 'bench', 'entries', 'logistic.mjs'), 'utf8');

// ctx.fit on full batches, saving its model: for predict, the Pipeline and the retried run.
const FIT = `import type { TrainContext } from 'sparkring';

export default async function train(ctx: TrainContext) {
  const { tf } = ctx;
  const h = ctx.hparams as { epochs?: number; epochMs?: number };
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [2] })] });
  model.setWeights([tf.tensor2d([0.1, -0.2], [2, 1]), tf.tensor1d([0.5])]);
  model.compile({ optimizer: tf.train.sgd(0.3), loss: 'meanSquaredError' });
  await ctx.fit(model, {
    label: 'y',
    features: ['a', 'b'],
    batchSize: 100000,
    epochs: h.epochs ?? 3,
    shuffle: false,
    callbacks: { onEpochEnd: () => new Promise((r) => setTimeout(r, h.epochMs ?? 0)) },
  });
  await ctx.saveModel(model);
  const weights = (await Promise.all(model.getWeights().map((w) => w.data()))).flatMap((d) => [...d]);
  return { attempt: ctx.attempt, weights };
}
`;

const TRIAL = `import type { TrainContext } from 'sparkring';

export default async function train(ctx: TrainContext) {
  const lr = Number(ctx.hparams.lr);
  ctx.report({ loss: Math.abs(lr - 0.3) }, 1);
  return { loss: Math.abs(lr - 0.3) };
}
`;

const BAD = `export default async function train(ctx) {
  throw new Error(\`boom on rank \${ctx.rank}\`);
}
`;

const SLOW = `import type { TrainContext } from 'sparkring';

export default async function train(ctx: TrainContext) {
  for (let i = 0; i < 3000; i++) {
    ctx.report({ loss: 1 / (i + 1) }, i);
    await new Promise((r) => setTimeout(r, 100));
    await ctx.barrier();
  }
  return 'never';
}
`;

// What a Spark 4 user writes: a remote session, their DataFrame, then the calls.
const SCRIPT = `import json, os, shutil, sys
import numpy as np
from pyspark.sql import SparkSession, functions as F
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import SQLTransformer
import sparkring, sparkring.ml

url, out, experiments = sys.argv[1:4]
# As to a server on another machine: the runtime and the entry go to the executors as an archive.
ship = True if os.environ.get("SHIP") == "1" else None
spark = SparkSession.builder.remote(url).getOrCreate()
report = {"session": type(spark).__module__, "spark": spark.version, "java": shutil.which("java")}
try:
    import py4j  # noqa: F401
    report["py4j"] = True
except ImportError:
    report["py4j"] = False

df = (
    spark.range(0, 3000)
    .select("id", ((F.col("id") % 17 - 8) / 8).alias("a"), ((F.col("id") * 7 % 13 - 6) / 4).alias("b"))
    .filter(F.col("id") % 5 != 0)
    .withColumn("y", F.when(F.col("a") - 0.5 * F.col("b") + 0.25 > 0, 1.0).otherwise(0.0))
)
rows = df.orderBy("id").toPandas()
X = np.stack([rows["a"], rows["b"], np.ones(len(rows))], axis=1)
w = np.zeros(3)
for _ in range(40):
    w -= 0.5 * X.T @ (1 / (1 + np.exp(-X @ w)) - rows["y"].to_numpy()) / len(rows)
logistic = sparkring.allreduce("logistic.mjs", df, num_workers=2, hparams={"steps": 40, "lr": 0.5}, experiments=experiments, tf_backend="cpu", ship=ship, release_executors=True)
report["logistic"] = {"weights": logistic.result["weights"], "numpy": w.tolist(), "rows": len(rows), "appId": logistic.app_id, "dir": logistic.dir}

search = sparkring.launch("trial.ts", grid={"lr": [0.1, 0.3, 1.0]}, metric="loss", direction="min", executors=2, experiments=experiments, tf_backend="cpu", ship=ship)
report["search"] = {"best": search.best.hparams if search.best else None, "status": sorted(t.status for t in search.trials)}

fitted = sparkring.allreduce("fit.ts", df, num_workers=2, experiments=experiments, name="fitted", tf_backend="cpu")
scored = sparkring.predict(df, fitted.dir)
report["predict"] = {"rows": scored.count(), "ids": scored.select("id").distinct().count(), "columns": scored.columns}
report["registered"] = sparkring.register(fitted, "connect-model", repo=os.path.join(experiments, "models"))["version"]

try:
    sparkring.allreduce("bad.js", df, num_workers=2, experiments=experiments, name="bad", tf_backend="cpu", ship=ship)
    report["error"] = None
except sparkring.RunError as e:
    report["error"] = {"kind": e.kind, "code": e.code, "rank": e.rank, "message": str(e)}

estimator = sparkring.ml.Estimator(entry="fit.ts", num_workers=2, hparams={"epochs": 3}, experiments=experiments, tf_backend="cpu")
model = Pipeline(stages=[SQLTransformer(statement="SELECT *, a + b AS c FROM __THIS__"), estimator]).fit(df)
transformed = model.transform(df)
model.write().overwrite().save(os.path.join(experiments, "pipeline"))
reloaded = PipelineModel.load(os.path.join(experiments, "pipeline")).transform(df)
report["pipeline"] = {"rows": transformed.count(), "columns": transformed.columns, "reloaded": reloaded.count()}

hp = {"epochs": 8, "epochMs": 400}
unbroken = sparkring.allreduce("fit.ts", df, num_workers=2, hparams=hp, experiments=experiments, name="unbroken", tf_backend="cpu", ship=ship)
print("sparkring-test: unbroken run done", flush=True)
retried = sparkring.allreduce("fit.ts", df, num_workers=2, hparams=hp, max_attempts=2, experiments=experiments, name="retried", tf_backend="cpu", ship=ship)
report["retry"] = {"unbroken": unbroken.result, "retried": retried.result, "attempts": retried.attempts, "same_app": retried.app_id == unbroken.app_id}
with open(out, "w") as f:
    json.dump(report, f)
`;

const INTERRUPTED = `import sys
from pyspark.sql import SparkSession
import sparkring

spark = SparkSession.builder.remote(sys.argv[1]).getOrCreate()
sparkring.allreduce("slow.ts", spark.range(0, 100), num_workers=2, experiments=sys.argv[2], tf_backend="cpu")
`;

interface Report {
  session: string;
  spark: string;
  java: string | null;
  py4j: boolean;
  logistic: { weights: number[]; numpy: number[]; rows: number; appId: string; dir: string };
  search: { best: { lr: number } | null; status: string[] };
  predict: { rows: number; ids: number; columns: string[] };
  registered: number | string;
  error: { kind: string; code: string; rank: number | null; message: string } | null;
  pipeline: { rows: number; columns: string[]; reloaded: number };
  retry: {
    unbroken: { weights: number[] };
    retried: { attempt: number; weights: number[] };
    attempts: number;
    same_app: boolean;
  };
}

let server: TestSparkConnect;
let dir: string;
let clientPython: string;
/** A PATH with Node and redis-server (the client side of a run) and no java. */
let thinPath: string;

beforeAll(async () => {
  dir = tempDir('spark-connect');
  const entries = { 'logistic.mjs': LOGISTIC, 'fit.ts': FIT, 'trial.ts': TRIAL, 'bad.js': BAD, 'slow.ts': SLOW };
  for (const [name, text] of Object.entries(entries)) {
    writeFileSync(join(dir, name), text);
  }
  writeFileSync(join(dir, 'run.py'), SCRIPT);
  writeFileSync(join(dir, 'interrupted.py'), INTERRUPTED);
  // The machine's commands but Java's (/usr/bin/java and the like lead into a JDK), and Node.
  const thin = join(dir, 'bin');
  mkdirSync(thin);
  const leadsToJava = (path: string): boolean => {
    try {
      return realpathSync(path).includes('/jvm/');
    } catch {
      return true; // a dangling link: left out too
    }
  };
  for (const name of readdirSync('/usr/bin')) {
    if (name !== 'node' && !leadsToJava(join('/usr/bin', name))) symlinkSync(join('/usr/bin', name), join(thin, name));
  }
  symlinkSync(process.execPath, join(thin, 'node'));
  clientPython = join(CONNECT_CLIENT_VENV, 'bin', 'python');
  thinPath = [join(CONNECT_CLIENT_VENV, 'bin'), thin].join(':');
  const built = join(dir, 'dist-wheel');
  const [started] = await Promise.all([
    // Scoring processes end 2 s after their last task, not a minute: the leftover checks below.
    TestSparkConnect.start('local-cluster[2,1,1024]', { 'spark.executorEnv.SPARKRING_SCORING_IDLE_S': '2' }),
    (async () => {
      await execa(process.execPath, [join(ROOT, 'scripts', 'build-wheel.mjs'), '--out', built], { cwd: ROOT, timeout: 300_000 });
      const wheel = readdirSync(built).find((f) => f.endsWith('.whl')) as string;
      // The wheel alone: pyspark-client and sparkring's dependencies are the venv's (make spark-connect).
      await execa(join(CONNECT_CLIENT_VENV, 'bin', 'pip'), [
        'install',
        '--quiet',
        '--disable-pip-version-check',
        '--no-deps',
        '--force-reinstall',
        join(built, wheel),
      ]);
    })(),
  ]);
  server = started;
}, 600_000);

/** The server's own processes, which outlive each test: its JVMs and its executors' Python workers. */
const SERVER = /SparkConnectServer|CoarseGrainedExecutorBackend|pyspark\.daemon/;

afterEach(async () => {
  expect(await waitForNoLeftovers(20_000, SERVER)).toEqual([]);
});

afterAll(async () => {
  await server?.stop();
  expect(await waitForNoLeftovers()).toEqual([]);
});

async function runScript(python: string, env: Record<string, string>, name: string) {
  const out = join(dir, `${name}.json`);
  let unbrokenDone = false;
  let killed: string | undefined;
  const child = execa(python, [join(dir, 'run.py'), server.url, out, join(dir, `experiments-${name}`)], {
    cwd: dir,
    env,
    all: true,
    reject: false,
    timeout: 500_000,
  });
  const lines = followLines(child, (line) => {
    if (line.includes('sparkring-test: unbroken run done')) unbrokenDone = true;
    const step = /^\[worker \d\] step (\d+)/.exec(line);
    if (unbrokenDone && !killed && step && Number(step[1]) >= 3) {
      const worker = processes().find((p) => /node .*runtime\/main\.js/.test(p.args));
      if (worker) {
        killed = worker.args;
        process.kill(worker.pid, 'SIGKILL');
      }
    }
  });
  const r = await child;
  expect(r.exitCode, `${lines.slice(-60).join('\n')}\n--- server ---\n${server.log().slice(-3000)}`).toBe(0);
  expect(killed).toBeDefined();
  return { report: JSON.parse(await readFile(out, 'utf8')) as Report, lines, killed: killed as string };
}

function expectTheScript(report: Report, lines: string[]): void {
  expect(report.session).toBe('pyspark.sql.connect.session');
  expect(report.spark).toBe(CONNECT_SPARK_VERSION);
  // NumPy's descent in float64; the workers sum float32 gradients.
  report.logistic.weights.forEach((w, i) => {
    expect(Math.abs(w - (report.logistic.numpy[i] as number))).toBeLessThan(1e-4);
  });
  expect(report.logistic.rows).toBe(2400);
  expect(report.logistic.appId).toMatch(/^app-/);
  expect(report.search).toEqual({ best: { lr: 0.3 }, status: ['done', 'done', 'done'] });
  expect(report.predict).toEqual({ rows: 2400, ids: 2400, columns: ['id', 'a', 'b', 'y', 'prediction'] });
  expect(String(report.registered)).toBe('1');
  // A worker's own failure comes back typed and named, though the client has no executor logs.
  expect(report.error).toMatchObject({ kind: 'worker', code: 'SR_ENTRY_FAILED' });
  expect(report.error?.message).toMatch(/boom on rank [01]/);
  expect([0, 1]).toContain(report.error?.rank);
  // release_executors=True over Connect: said once that release is the server's dynamic allocation.
  expect(lines.filter((l) => l.includes('giving them back is left to its dynamic allocation'))).toHaveLength(1);
  expect(report.pipeline).toEqual({ rows: 2400, columns: ['id', 'a', 'b', 'y', 'c', 'prediction'], reloaded: 2400 });
  expect(report.retry.attempts).toBe(2);
  expect(report.retry.retried.attempt).toBe(1);
  expect(report.retry.same_app).toBe(true);
  report.retry.retried.weights.forEach((w, i) => {
    expect(w).toBeCloseTo(report.retry.unbroken.weights[i] as number, 5);
  });
  // Progress streams as on classic Spark, and the failed attempt is named.
  expect(lines).toContain('[worker 1] joined the ring');
  expect(
    lines.some((l) => /^sparkring: attempt 1 failed: worker \d failed: .*; retrying from the last checkpoint$/.test(l)),
  ).toBe(true);
  expect(lines).toContain('sparkring: attempt 2 of 2, in the same Spark application');
}

describe('the Python API over Spark Connect', () => {
  it('PySpark 4: allreduce equals NumPy, launch, predict, register, a typed failure, a Pipeline saved and loaded, a retried kill -9', async () => {
    // The checkout's package for the client only: the server's executors get it from the client.
    const { report, lines, killed } = await runScript(
      CONNECT_SERVER_PYTHON,
      { PYTHONPATH: join(ROOT, 'spark-plugin') },
      'pyspark4',
    );
    expect(report.py4j).toBe(true);
    // A server on this machine: the workers run the client's runtime where it is.
    expect(killed).toContain(join(ROOT, 'dist', 'src', 'runtime', 'main.js'));
    expectTheScript(report, lines);
  }, 600_000);

  it('the same from a venv with only pyspark-client and the wheel, with no JVM on its PATH', async () => {
    const { report, lines, killed } = await runScript(
      clientPython,
      { PATH: thinPath, JAVA_HOME: '', PYTHONPATH: '', SHIP: '1' },
      'client',
    );
    expect(report.java).toBeNull();
    expect(report.py4j).toBe(false);
    // ship=True: the worker ran the runtime from the run's archive, unpacked in the session's files.
    expect(killed).toMatch(/\/sparkring-runtime-[0-9a-f]{8}\/runtime\/runtime\/main\.js/);
    expect(lines.some((l) => /^sparkring: shipping the runtime and fit\.ts to the executors/.test(l))).toBe(true);
    expectTheScript(report, lines);
  }, 600_000);

  it('Ctrl-C of the client mid-training: the job is gone from the server within 10 s, nothing left behind', async () => {
    const child = execa(clientPython, [join(dir, 'interrupted.py'), server.url, join(dir, 'experiments-interrupted')], {
      cwd: dir,
      env: { PATH: thinPath, PYTHONPATH: '' },
      all: true,
      reject: false,
      detached: true,
    });
    let output = '';
    child.all?.on('data', (b: Buffer) => (output += b.toString()));
    const until = Date.now() + 120_000;
    while (!/\[worker 1\] step [1-9]\d* /.test(output) && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
    expect(await server.runningJobs(), output).toBe(1);
    // A terminal's Ctrl-C: SIGINT to the client's whole process group.
    process.kill(-(child.pid as number), 'SIGINT');
    const interruptedAt = Date.now();
    while ((await server.runningJobs()) > 0 && Date.now() - interruptedAt < 15_000) await new Promise((r) => setTimeout(r, 200));
    const gone = Date.now() - interruptedAt;
    expect(gone, output).toBeLessThan(10_000);
    const r = await child;
    expect(r.all).toContain('KeyboardInterrupt');
    expect(r.exitCode).not.toBe(0);
    // The server lives on for its other users: a later query still runs.
    // (A script file: pyspark's Connect module takes a `python -c` for its own doctests.)
    writeFileSync(
      join(dir, 'after.py'),
      'import sys\nfrom pyspark.sql import SparkSession\nprint(SparkSession.builder.remote(sys.argv[1]).getOrCreate().range(7).count())\n',
    );
    const after = await execa(clientPython, [join(dir, 'after.py'), server.url], { cwd: dir, env: { PATH: thinPath } });
    expect(after.stdout.trim()).toBe('7');
  }, 300_000);
});
