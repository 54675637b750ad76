import { availableParallelism } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { entry, sparkring, tempDir, waitForNoLeftovers, writeTable } from '../helpers/spark.js';

/** The one line that says what went wrong: the first stderr line after the progress lines. */
const failureLine = (stderr: string): string | undefined =>
  stderr.split('\n').find((l) => l.startsWith('sparkring: ') && !/submitting|started|slots ready|released/.test(l));

afterEach(async () => {
  expect(await waitForNoLeftovers()).toEqual([]);
});

/** Bad input exits with 2 wherever it is found (flags, options, the entry, the data); other failures with 1. */
const INPUT = 2;
const FAILED = 1;

describe('bad inputs end with a status other than 0 and one clear line', () => {
  it('a missing entry file', async () => {
    const r = await sparkring(['allreduce', entry('nope.ts'), '--workers', '2']);
    expect(r.exitCode).toBe(INPUT);
    expect(failureLine(r.stderr)).toMatch(/^sparkring: entry file .*nope\.ts does not exist$/);
  });

  it.each(['.', '..'])('--name %s is refused before anything runs', async (name) => {
    for (const command of ['allreduce', 'launch']) {
      const args = [command, entry('linear.ts'), '--name', name, ...(command === 'launch' ? ['--grid', 'x=1'] : [])];
      const r = await sparkring(args);
      expect(r.exitCode).toBe(INPUT);
      expect(failureLine(r.stderr)).toMatch(
        /^sparkring: invalid option name: ".*": a name made only of dots is not a folder name/,
      );
      expect(r.stderr).not.toMatch(/submitting|searching/);
    }
  });

  it('a missing data path', async () => {
    const r = await sparkring(['allreduce', entry('linear.ts'), '--data', '/no/such/table.parquet']);
    expect(r.exitCode).toBe(INPUT);
    expect(failureLine(r.stderr)).toBe('sparkring: --data /no/such/table.parquet does not exist');
  });

  it('an entry that throws: the line names the worker, the stack is shown', async () => {
    const dir = tempDir('throws');
    const r = await sparkring(['allreduce', entry('throws.ts'), '--workers', '2', '--experiments', dir]);
    expect(r.exitCode).toBe(FAILED);
    expect(failureLine(r.stderr)).toMatch(
      /^sparkring: worker 1 failed: Error: boom from rank 1 \(on host \S+, during training\)$/,
    );
    expect(r.stderr).toMatch(/at deepInside \(.*throws\.ts:\d+/);
  }, 180_000);

  it('an entry without a default export is refused before anything is submitted', async () => {
    const dir = tempDir('nodefault');
    const r = await sparkring(['allreduce', entry('no-default.ts'), '--workers', '2', '--experiments', dir]);
    expect(r.exitCode).toBe(INPUT);
    expect(failureLine(r.stderr)).toMatch(/^sparkring: entry .*no-default\.ts has no default export; write `export default/);
    expect(r.stderr).not.toMatch(/submitting/);
  }, 180_000);

  it('a non-numeric feature column: the line names the column and the row batch', async () => {
    const dir = tempDir('text');
    const r = await sparkring([
      'allreduce',
      entry('features.ts'),
      '--workers',
      '2',
      '--data',
      writeTable(dir, 'text'),
      '--experiments',
      dir,
    ]);
    expect(r.exitCode).toBe(INPUT);
    expect(failureLine(r.stderr)).toMatch(
      /^sparkring: worker \d failed: DataColumnError: data column "name" in row batch 0: type Utf8 is not numeric/,
    );
  }, 180_000);

  it('more workers than this machine can run on the embedded default is refused at once, starting nothing', async () => {
    const cores = availableParallelism();
    for (const [command, flag] of [
      ['allreduce', '--workers'],
      ['launch', '--executors'],
    ] as const) {
      const args = [command, entry('linear.ts'), flag, '64', ...(command === 'launch' ? ['--grid', 'x=1'] : [])];
      const r = await sparkring(args);
      expect(r.exitCode).toBe(FAILED);
      expect(failureLine(r.stderr)).toMatch(
        new RegExp(
          `^sparkring: ${flag} 64 is more than the embedded local Spark can run on this machine: .* ${cores} cores .* lower ${flag} to \\d+ or pass --master`,
        ),
      );
      expect(r.stderr).not.toMatch(/submitting|searching|started/);
    }
  });

  it('more workers than task slots fails in seconds, naming what is free and what was asked', async () => {
    const dir = tempDir('slots');
    const started = Date.now();
    const r = await sparkring([
      'allreduce',
      entry('linear.ts'),
      '--workers',
      '3',
      '--master',
      'local-cluster[2,1,1024]',
      '--experiments',
      dir,
    ]);
    expect(r.exitCode).toBe(FAILED);
    expect(failureLine(r.stderr)).toBe(
      'sparkring: the job needs 3 barrier task slots (3 workers x 1 CPU each), but local-cluster[2,1,1024] can only ever offer 2 (2 executors x 1 core); lower --workers to 2 or use a bigger cluster',
    );
    expect(Date.now() - started).toBeLessThan(60_000);
  }, 120_000);
});
