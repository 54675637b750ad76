/**
 * `--wire-precision fp16` on real Spark, as the README's demo trains: the digits MLP with ctx.fit
 * on 2 workers, its gradients on the ring in fp16 with error feedback, ends within half a point of
 * the float32 run's held-out accuracy, and says that its gradients went in fp16. The entry and the
 * data live in a temp folder, as a user's do.
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, expect, it } from 'vitest';
import { PYTHON, ROOT, sparkring, tempDir, waitForNoLeftovers } from '../helpers/spark.js';

afterEach(async () => {
  expect(await waitForNoLeftovers()).toEqual([]);
});

it('the digits demo with fp16 gradients on the wire: held-out accuracy within 0.5 points of fp32', async () => {
  const dir = tempDir('wire-precision');
  const entry = join(dir, 'train.ts');
  copyFileSync(join(ROOT, 'examples', 'digits', 'train.ts'), entry);
  const data = join(dir, 'digits.parquet');
  await execa(PYTHON, ['-m', 'sparkring.datasets', 'digits', data]);
  const train = async (precision: 'fp32' | 'fp16') => {
    const r = await sparkring([
      'allreduce',
      entry,
      '--workers',
      '2',
      '--data',
      data,
      '--experiments',
      join(dir, 'experiments'),
      '--hp',
      'epochs=30',
      '--hp',
      'batchSize=32',
      '--hp',
      'lr=0.05',
      '--wire-precision',
      precision,
      '--json',
    ]);
    expect(r.exitCode, r.all).toBe(0);
    const out = JSON.parse(r.stdout) as { result: { heldOutAccuracy: number; epochs: number } };
    return { ...out.result, log: String(r.stderr) };
  };
  const full = await train('fp32');
  const half = await train('fp16');
  expect(half.epochs).toBe(30);
  expect(half.log).toContain('[worker 0] fit: gradients went on the ring in fp16, with error feedback');
  expect(full.log).not.toContain('gradients went on the ring');
  expect(full.heldOutAccuracy).toBeGreaterThan(0.9);
  expect(Math.abs(half.heldOutAccuracy - full.heldOutAccuracy)).toBeLessThanOrEqual(0.005);
}, 300_000);
