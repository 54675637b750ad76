/**
 * The one envelope runs a kind it has never seen: a toy kind written through the descriptor alone
 * (test/fixtures/kinds/row-count.ts, its Python middle inside it) counts a table's rows on real
 * Spark, and gets what every kind gets by construction: its typed result, the driver's error as a
 * typed RunError, and an interrupt that stops the job and leaves nothing behind.
 */
import { afterEach, expect, it } from 'vitest';
import { RunError } from '../../src/client/errors.js';
import { rowCount } from '../fixtures/kinds/row-count.js';
import { tempDir, waitForNoLeftovers, writeTable } from '../helpers/spark.js';

afterEach(async () => {
  expect(await waitForNoLeftovers()).toEqual([]);
});

it('a toy kind counts the rows of a table on Spark through the envelope, with its typed result', async () => {
  const data = writeTable(tempDir('kinds'), 'linear', 1234);
  const lines: string[] = [];
  const r = await rowCount({ data, onProgress: (l) => lines.push(l) });
  expect(r).toEqual({ rows: 1234, columns: ['id', 'x0', 'x1', 'x2', 'x3', 'y'] });
  expect(lines).toContain(`sparkring: counting the rows of ${data}`);
}, 120_000);

it("the toy kind's failure comes back typed, with Spark's own cause", async () => {
  const missing = `${tempDir('kinds')}/missing.parquet`;
  const err = await rowCount({ data: missing, onProgress: () => undefined }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(RunError);
  expect((err as RunError).code).toBe('SR_SPARK');
  expect((err as RunError).message).toContain('missing.parquet');
}, 120_000);

it('an interrupt stops the toy kind as any kind: its own error kind, and no process left', async () => {
  const data = writeTable(tempDir('kinds'), 'linear', 10);
  const interrupt = new AbortController();
  const err = await rowCount({
    data,
    signal: interrupt.signal,
    onProgress: (l) => {
      if (l.startsWith('sparkring: counting')) setTimeout(() => interrupt.abort(), 500);
    },
  }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(RunError);
  expect((err as RunError).kind).toBe('interrupted');
  expect((err as RunError).message).toBe('interrupted; the count was stopped');
}, 120_000);
