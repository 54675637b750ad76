/**
 * What a worker does with the CPU around its partition: it rehearses Arrow's reader while Spark's
 * allGather keeps it waiting (runtime/warm-up.ts), and parses the partition itself with TurboFan
 * off, which is back on for training (runtime/tiering.ts).
 */
import * as arrow from 'apache-arrow';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { warmArrowReader } from '../../src/runtime/warm-up.js';
import { packageFile } from '../../src/util/package-file.js';

type Arrow = typeof arrow;

/** Arrow whose RecordBatchReader.from counts its calls. */
function countingArrow(): { module: Promise<Arrow>; readers: () => number } {
  let readers = 0;
  const RecordBatchReader = {
    from: (source: Parameters<typeof arrow.RecordBatchReader.from>[0]) => {
      readers += 1;
      return arrow.RecordBatchReader.from(source as unknown as Uint8Array[]);
    },
  };
  return { module: Promise.resolve({ ...arrow, RecordBatchReader } as unknown as Arrow), readers: () => readers };
}

const rehearsal = arrow.tableToIPC(arrow.tableFromArrays({ x: new Float32Array(1024), y: new Float64Array(1024) }), 'stream');

describe("the worker's rehearsal of Arrow's reader", () => {
  it('parses the rehearsal over and over while nothing has come', async () => {
    const a = countingArrow();
    await warmArrowReader(a.module, rehearsal, new Promise(() => undefined));
    expect(a.readers()).toBeGreaterThan(10);
  });

  it('stops as soon as the peers come, or the wait for them fails', async () => {
    const came = countingArrow();
    await warmArrowReader(came.module, rehearsal, Promise.resolve({ peers: [] }));
    expect(came.readers()).toBe(0);
    const failed = countingArrow();
    const wait = Promise.reject(new Error('the task is gone'));
    wait.catch(() => undefined);
    await warmArrowReader(failed.module, rehearsal, wait);
    expect(failed.readers()).toBe(0);
  });

  it('never fails the worker: bytes that are no Arrow stream only leave the reader cold', async () => {
    const a = countingArrow();
    await expect(warmArrowReader(a.module, new Uint8Array(64).fill(7), new Promise(() => undefined))).resolves.toBeUndefined();
  });
});

describe('TurboFan while the partition is parsed', () => {
  // V8 reports a function's tier only to code compiled with --allow-natives-syntax: a child process.
  const probe = `
    const { withoutTurbofan } = await import(${JSON.stringify(`file://${packageFile('dist/src/runtime/tiering.js')}`)});
    const hot = (a) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * 1.5; return s; };
    const values = new Float64Array(100000).fill(1);
    const optimized = () => (%GetOptimizationStatus(hot) & 16) !== 0;
    const during = await withoutTurbofan(async () => { for (let k = 0; k < 300; k++) hot(values); return optimized(); });
    for (let k = 0; k < 300; k++) hot(values);
    let failed = '';
    await withoutTurbofan(async () => { throw new Error('parse failed'); }).catch((e) => { failed = e.message; });
    console.log(JSON.stringify({ during, after: optimized(), failed }));
  `;
  const run = (flags: string[]) =>
    execa(process.execPath, [
      '--allow-natives-syntax',
      '--no-concurrent-recompilation',
      ...flags,
      '--input-type=module',
      '-e',
      probe,
    ]);

  it('is off while the work runs and back for training after it, whether the work ends or fails', async () => {
    const { stdout } = await run([]);
    expect(JSON.parse(stdout)).toEqual({ during: false, after: true, failed: 'parse failed' });
  });

  it('is switched all the same when Node was only told to trace its tiers (--trace-opt)', async () => {
    const { stdout } = await run(['--trace-opt']);
    expect(JSON.parse(stdout.trim().split('\n').at(-1) as string)).toEqual({
      during: false,
      after: true,
      failed: 'parse failed',
    });
  });

  it("stays as the user set it on Node's command line", async () => {
    const { stdout } = await run(['--no-turbofan']);
    expect(JSON.parse(stdout)).toMatchObject({ during: false, after: false });
  });
});
