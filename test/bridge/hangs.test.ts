/**
 * No hang on real Spark: uneven steps end the run at the first mismatch (and are not retried), and
 * a rank stuck in an await between steps ends the attempt on every rank after the collective timeout.
 * Entries are written to temp folders outside the checkout.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sparkring, tempDir, waitForNoLeftovers } from '../helpers/spark.js';

afterEach(async () => {
  expect(await waitForNoLeftovers()).toEqual([]);
});

function userEntry(name: string, text: string): { dir: string; file: string } {
  const dir = tempDir('hang');
  writeFileSync(join(dir, name), text);
  return { dir, file: join(dir, name) };
}

const failureLine = (stderr: string): string | undefined =>
  stderr.split('\n').find((l) => /^sparkring: (worker \d+ failed|attempt)/.test(l));

describe('no hang on Spark', () => {
  it('a rank with one more step ends the run at once, naming uneven steps, without a retry', async () => {
    const { dir, file } = userEntry(
      'uneven.ts',
      `export default async function train(ctx: any) {
  const steps = ctx.rank === 1 ? 4 : 3;
  for (let s = 0; s < steps; s++) { await ctx.allreduce(new Float32Array([1])); ctx.report({ loss: 1 }); }
  return 'done';
}
`,
    );
    const r = await sparkring(['allreduce', file, '--workers', '2', '--max-attempts', '2', '--experiments', dir]);
    expect(r.exitCode).not.toBe(0);
    expect(failureLine(r.stderr)).toMatch(
      /^sparkring: worker \d failed: UnevenStepsError: the ranks took different numbers of steps: rank 0 returned from train\(\) after 3 collectives while rank 1 is in Allreduce #4; every rank must run the same number of collectives/,
    );
    expect(r.stderr).not.toMatch(/retrying from/);
  }, 240_000);

  it('a rank stuck in an await between steps ends the attempt on every rank, named with its last step', async () => {
    const { dir, file } = userEntry(
      'stuck.ts',
      `export default async function train(ctx: any) {
  for (let s = 1; s <= 3; s++) {
    if (ctx.rank === 1 && s === 2) await new Promise(() => {}); // never settles; heartbeats go on
    await ctx.allreduce(new Float32Array([1]));
    ctx.report({ loss: 1 });
  }
  return 'done';
}
`,
    );
    const r = await sparkring(['allreduce', file, '--workers', '2', '--collective-timeout', '3', '--experiments', dir]);
    expect(r.exitCode).not.toBe(0);
    expect(failureLine(r.stderr)).toMatch(
      /^sparkring: worker \d failed: CollectiveTimeoutError: rank 0 waited \d+ s in Allreduce #\d+ \(step 1\) with no progress \(collective timeout 3 s\); ranks that did not arrive: rank 1 \(between collectives, last Allreduce #\d+ at step 1\)/,
    );
  }, 240_000);
});
