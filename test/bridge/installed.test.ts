/**
 * sparkring as a new user gets it, not from this checkout: `npm pack` of the project, `npm install -g`
 * of that tarball into a prefix of its own, then `sparkring` commands from an empty folder, with the
 * user's own Spark ($SPARK_HOME: a real Spark distribution, here the pinned pyspark's) and a per-user
 * cache in a temp folder. The first run makes sparkring's Python environment there and builds its
 * native parts, which npm's install of a global package leaves unbuilt.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PYTHON, ROOT, tempDir, waitForNoLeftovers } from '../helpers/spark.js';

let base: string;
let prefix: string;
let cache: string;
/** The user's own Spark: the pyspark package is a Spark distribution (bin/spark-submit, jars/). */
let sparkHome: string;

/** The user's shell: the installed `sparkring` and Node on PATH, and nothing of the checkout. */
function userEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: [join(prefix, 'bin'), dirname(process.execPath), '/usr/local/bin', '/usr/bin', '/bin'].join(':'),
    HOME: process.env.HOME ?? '/root',
    SPARKRING_CACHE: cache,
    ...extra,
  };
}

function installed(args: string[], cwd: string, extra: Record<string, string> = {}) {
  return execa('sparkring', args, { cwd, env: userEnv(extra), extendEnv: false, reject: false, timeout: 540_000 });
}

beforeAll(async () => {
  base = tempDir('installed');
  prefix = join(base, 'prefix');
  cache = join(base, 'cache');
  sparkHome = execFileSync(PYTHON, ['-c', 'import os, pyspark; print(os.path.dirname(pyspark.__file__))'], {
    encoding: 'utf8',
  }).trim();
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--pack-destination', base], { cwd: ROOT, encoding: 'utf8' }),
  ) as { filename: string }[];
  const tarball = join(base, packed[0]?.filename ?? 'missing.tgz');
  // As a user does: no --ignore-scripts. tfjs-node's own install script (a download) fails here and
  // npm drops that optional package; setup fetches its sources again.
  await execa('npm', ['install', '-g', '--prefix', prefix, tarball, '--prefer-offline', '--no-audit', '--no-fund'], {
    cwd: base,
    timeout: 300_000,
  });
}, 330_000);

afterAll(async () => {
  expect(await waitForNoLeftovers()).toEqual([]);
  // A venv with TensorFlow is over a GB.
  rmSync(base, { recursive: true, force: true });
});

describe('an installed sparkring (npm pack, npm install -g)', () => {
  it('`sparkring demo` in an empty folder: the first run makes its environment, uses $SPARK_HOME, trains on native TensorFlow', async () => {
    const folder = join(base, 'empty');
    mkdirSync(folder);
    const r = await installed(['demo', '--json'], folder, { SPARK_HOME: sparkHome });
    expect(r.exitCode, r.stderr).toBe(0);
    const lines = r.stderr.split('\n');
    expect(lines).toContain(
      `sparkring: first run: no environment yet at ${join(cache, 'venv')}; making it (\`sparkring setup\` does this alone)`,
    );
    expect(lines).toContain(
      `sparkring: using Spark from $SPARK_HOME (${join(sparkHome, 'bin', 'spark-submit')}), Python from ${join(cache, 'venv')}`,
    );
    const out = JSON.parse(r.stdout) as {
      dir: string;
      backends: string[];
      result: { heldOutAccuracy: number };
      scored: { rows: number; out: string };
    };
    // ctx.fit trains on native TensorFlow to the accuracy it had on pure-JS tfjs (95.6%).
    expect(out.backends).toEqual(['tensorflow 2.21.0 cpu', 'tensorflow 2.21.0 cpu']);
    expect(lines).toContain('[worker 0] trains on tensorflow 2.21.0 cpu, 1 thread');
    expect(out.result.heldOutAccuracy).toBeGreaterThan(0.94);
    expect(out.scored.rows).toBe(363);
    // The saved model scored the held-out rows on Spark to the accuracy validation measured.
    const [scoredAccuracy, scoredRows] = execFileSync(
      PYTHON,
      [
        '-c',
        `import sys, numpy as np, pyarrow.dataset as ds
t = ds.dataset(sys.argv[1], format="parquet").to_table(columns=["label", "is_test", "prediction"])
assert set(t.column("is_test").to_pylist()) == {1}
p = np.array(t.column("prediction").to_pylist())
print(float((p.argmax(1) == t.column("label").to_numpy()).mean()), t.num_rows)`,
        out.scored.out,
      ],
      { encoding: 'utf8' },
    )
      .trim()
      .split(' ');
    expect(Number(scoredRows)).toBe(out.scored.rows);
    expect(Number(scoredAccuracy)).toBeCloseTo(out.result.heldOutAccuracy, 6);
    const env = JSON.parse(readFileSync(join(out.dir, 'versioned', 'environment.json'), 'utf8'));
    expect(env).toMatchObject({ tfBackend: 'auto', backends: ['tensorflow 2.21.0 cpu', 'tensorflow 2.21.0 cpu'] });
    // The run's files are the user's: under the folder it ran in, not the package or the checkout.
    expect(out.dir.startsWith(join(folder, 'experiments'))).toBe(true);
    // The workers' Python side is the package's copy, installed in the cache's venv.
    const plugin = execFileSync(join(cache, 'venv', 'bin', 'python'), ['-c', 'import sparkring; print(sparkring.__file__)'], {
      encoding: 'utf8',
    }).trim();
    expect(plugin.startsWith(join(cache, 'venv'))).toBe(true);
  }, 540_000);

  it("`sparkring setup` again installs nothing; with no Spark of the user it names its own pyspark and archives its JVMs' classes", async () => {
    const r = await installed(['setup', '--json'], base);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/installing|building|fetching/);
    const out = JSON.parse(r.stdout) as { venv: string; sparkSubmit: string; sparkFrom: string; tfBinding?: string };
    expect(out).toMatchObject({
      venv: join(cache, 'venv'),
      sparkSubmit: join(cache, 'venv', 'bin', 'spark-submit'),
      sparkFrom: "sparkring's environment",
    });
    expect(out.tfBinding?.startsWith(join(cache, 'venv'))).toBe(true);
    expect(existsSync(join(prefix, 'lib', 'node_modules', 'sparkring', 'native', 'build', 'partition_map.node'))).toBe(true);
    // Its own pyspark's JVMs get their class-data archives (the first run used $SPARK_HOME's, which gets none).
    for (const archive of ['driver.jsa', 'executor.jsa']) {
      expect(existsSync(join(cache, 'venv', 'sparkring-jvm-archives', archive))).toBe(true);
    }
  });

  it('a $SPARK_HOME that holds no Spark: one line naming it, before anything starts', async () => {
    const r = await installed(['allreduce', 'train.ts'], base, { SPARK_HOME: join(base, 'no-spark') });
    expect(r.exitCode).toBe(1);
    expect(r.stderr.trim().split('\n')).toEqual([
      `sparkring: $SPARK_HOME is ${join(base, 'no-spark')}, but ${join(base, 'no-spark', 'bin', 'spark-submit')} does not exist; fix or unset SPARK_HOME`,
    ]);
  });
});
