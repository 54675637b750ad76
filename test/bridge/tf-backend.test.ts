/**
 * Native TensorFlow on real Spark (the digits demo trains on it: installed.test.ts): a shipped runtime trains on the
 * TensorFlow of the executors' own Python (found by the task, spark-plugin/sparkring/executor/tf_libraries.py),
 * falls back to pure-JS with a line saying why where that Python has none, and refuses under
 * --tf-backend native; a task given GPUs whose TensorFlow sees none fails with a line that says so.
 *
 * The executors' Pythons are venvs made here from the project's one: every package linked in,
 * except tensorflow, which is absent from one and a hard-linked copy (its own path) in the other.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gpuDiscoveryScript, ROOT, sparkring, tempDir, waitForNoLeftovers } from '../helpers/spark.js';

const SITE = join('lib', 'python3.11', 'site-packages');

/** A venv whose site-packages links every package of the project's venv; tensorflow as `tf` says. */
function executorPython(dir: string, tf: 'none' | 'copy'): { python: string; tfDir: string } {
  execFileSync(join(ROOT, '.venv', 'bin', 'python'), ['-c', `import venv; venv.create(${JSON.stringify(dir)}, with_pip=False)`]);
  const from = join(ROOT, '.venv', SITE);
  const to = join(dir, SITE);
  for (const name of readdirSync(from)) {
    if (name === 'tensorflow') {
      if (tf === 'copy') execFileSync('cp', ['-al', join(from, name), join(to, name)]);
    } else if (!existsSync(join(to, name))) symlinkSync(join(from, name), join(to, name));
  }
  return { python: join(dir, 'bin', 'python'), tfDir: join(to, 'tensorflow') };
}

const ENTRY = `
export default async function train(ctx) {
  const { tf } = ctx;
  const x = tf.tensor2d([[1, 2], [3, 4]]);
  const product = Array.from(tf.matMul(x, x).dataSync());
  const [sum] = await ctx.allreduce(new Float32Array([ctx.rank + 1]), 'sum');
  return { product, sum, backend: tf.getBackend() };
}
`;

describe('native TensorFlow in the workers, on local-cluster', () => {
  let dir: string;
  let entry: string;
  let withTf: { python: string; tfDir: string };
  let withoutTf: { python: string; tfDir: string };

  beforeAll(() => {
    dir = tempDir('tf-backend');
    entry = join(dir, 'user', 'train.mjs');
    mkdirSync(join(dir, 'user'));
    writeFileSync(entry, ENTRY);
    withTf = executorPython(join(dir, 'py-with-tf'), 'copy');
    withoutTf = executorPython(join(dir, 'py-without-tf'), 'none');
  }, 60_000);

  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    expect(await waitForNoLeftovers()).toEqual([]);
  });

  const run = (python: string, ...args: string[]) =>
    sparkring(
      [
        'allreduce',
        entry,
        '--workers',
        '2',
        '--ship',
        '--json',
        '--experiments',
        join(dir, 'experiments'),
        '--conf',
        `spark.pyspark.python=${python}`,
        ...args,
      ],
      {},
      join(dir, 'user'),
    );

  it("a shipped runtime trains on the TensorFlow of the executors' own Python", async () => {
    const r = await run(withTf.python);
    expect(r.exitCode, r.all).toBe(0);
    const out = JSON.parse(r.stdout) as { backends: string[]; result: { product: number[]; sum: number; backend: string } };
    expect(out.backends).toEqual(['tensorflow 2.21.0 cpu', 'tensorflow 2.21.0 cpu']);
    expect(out.result).toEqual({ product: [7, 10, 15, 22], sum: 3, backend: 'tensorflow' });
    const result = JSON.parse(readFileSync(join(JSON.parse(r.stdout).dir, 'result.json'), 'utf8')) as {
      ranks: Array<{ tfLibrary: string; tfThreads: number; ringDataPath: string }>;
    };
    for (const rank of result.ranks) {
      expect(rank.tfLibrary).toBe(join(withTf.tfDir, 'libtensorflow_cc.so.2'));
      expect(rank.tfThreads).toBe(1);
      // The shipped bundle carries the addon that maps the ring's regions: ranks on this one host
      // passed their data through shared memory.
      expect(rank.ringDataPath).toBe('shared memory');
    }
  }, 300_000);

  it("where the executors' Python has no TensorFlow: pure-JS tfjs, with a line naming the cause, the cost and the fix", async () => {
    const r = await run(withoutTf.python);
    expect(r.exitCode, r.all).toBe(0);
    const out = JSON.parse(r.stdout) as { backends: string[]; result: { product: number[]; backend: string } };
    expect(out.backends).toEqual(['cpu', 'cpu']);
    expect(out.result).toMatchObject({ product: [7, 10, 15, 22], backend: 'cpu' });
    const line = r.stderr.split('\n').find((l) => l.startsWith('[worker 0] trains on cpu'));
    expect(line).toMatch(/40x to 300x slower/);
    expect(line).toContain(`${withoutTf.python} has no tensorflow package`);
    expect(line).toMatch(/pip install tensorflow-cpu==2\.21\.0/);
  }, 300_000);

  it('--tf-backend native where it cannot load is an error naming what is missing', async () => {
    const r = await run(withoutTf.python, '--tf-backend', 'native', '--max-attempts', '2');
    expect(r.exitCode).not.toBe(0);
    // Not retried: another attempt would find the same Python.
    expect(r.stderr).not.toMatch(/attempt 2 of 2/);
    expect(r.stderr).toMatch(
      /TfBackendError: --tf-backend native: tfjs-node cannot load TensorFlow's C libraries \(libtensorflow_cc\.so\.2\)/,
    );
    expect(r.stderr).toContain(`${withoutTf.python} has no tensorflow package`);
  }, 300_000);

  it('a search reports the TensorFlow each trial trained on', async () => {
    const r = await sparkring(
      [
        'launch',
        entry,
        '--grid',
        'x=1,2',
        '--metric',
        'sum',
        '--executors',
        '2',
        '--json',
        '--experiments',
        join(dir, 'experiments'),
      ],
      {},
      dir,
    );
    expect(r.exitCode, r.all).toBe(0);
    const out = JSON.parse(r.stdout) as { trials: Array<{ status: string; backend: string }> };
    expect(out.trials.map((t) => [t.status, t.backend])).toEqual([
      ['done', 'tensorflow 2.21.0 cpu'],
      ['done', 'tensorflow 2.21.0 cpu'],
    ]);
  }, 300_000);

  it('a task given GPUs whose TensorFlow sees none fails with a line that says so', async () => {
    const r = await sparkring(
      [
        'allreduce',
        entry,
        '--workers',
        '2',
        '--gpus-per-worker',
        '1',
        '--experiments',
        join(dir, 'experiments'),
        '--conf',
        `spark.worker.resource.gpu.discoveryScript=${gpuDiscoveryScript(dir)}`,
      ],
      {},
      dir,
    );
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(/Spark gave this task GPU \d .*but TensorFlow 2\.21\.0 .*sees no GPU.*tensorflow\[and-cuda\]/);
  }, 300_000);
});
