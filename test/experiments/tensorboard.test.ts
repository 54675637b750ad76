import { describe, expect, it } from 'vitest';
import { crc32c, EventWriter } from '../../src/experiments/tensorboard.js';
import { tempDir } from '../helpers/spark.js';
import { readTensorBoard } from '../helpers/tensorboard.js';

describe('TensorBoard event files', () => {
  it('computes CRC-32C as the standard check value says', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it("are read by TensorBoard's own EventAccumulator: every scalar at its step, and the hparams", () => {
    const dir = tempDir('tb');
    const w = new EventWriter(dir);
    w.hparams({ lr: 0.05, optimizer: 'sgd', shuffle: true, ignored: { nested: 1 } });
    for (let step = 1; step <= 50; step++) w.scalars({ loss: 1 / step, accuracy: step / 50 }, step);
    w.scalars({ 'eval/accuracy': 0.75 }, 50);
    w.close();
    const got = readTensorBoard(dir);
    expect(got.scalars.loss).toHaveLength(50);
    for (const [i, [step, value]] of (got.scalars.loss ?? []).entries()) {
      expect(step).toBe(i + 1);
      expect(value).toBeCloseTo(1 / (i + 1), 6);
    }
    expect(got.scalars['eval/accuracy']).toEqual([[50, 0.75]]);
    expect(got.hparams).toEqual({ lr: 0.05, optimizer: 'sgd', shuffle: true });
  });

  it('text summaries are read back by the text plugin at their steps', () => {
    const dir = tempDir('tb-text');
    const w = new EventWriter(dir);
    w.text('sparkring/resized', 'workers 4 -> 2: lost host 10.0.0.2 (rank 2)', 30);
    w.text('sparkring/resized', 'workers 2 -> 4: executors returned ✓', 60);
    w.close();
    expect(readTensorBoard(dir).texts).toEqual({
      'sparkring/resized': [
        [30, 'workers 4 -> 2: lost host 10.0.0.2 (rank 2)'],
        [60, 'workers 2 -> 4: executors returned ✓'],
      ],
    });
  });

  it('a resumed attempt replaces the steps the failed one wrote past its checkpoint', async () => {
    const dir = tempDir('tb-resume');
    const failed = new EventWriter(dir, '.attempt-0');
    for (let step = 1; step <= 13; step++) failed.scalars({ loss: step }, step);
    failed.close();
    const resumed = new EventWriter(dir, '.attempt-1');
    resumed.sessionStart(11);
    for (let step = 11; step <= 15; step++) resumed.scalars({ loss: 100 + step }, step);
    resumed.close();
    const loss = readTensorBoard(dir).scalars.loss ?? [];
    expect(loss.map(([step]) => step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]);
    expect(loss.at(-1)).toEqual([15, 115]);
  });
});
