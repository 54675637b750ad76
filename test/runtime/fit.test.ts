/**
 * ctx.fit over an in-process ring: equal steps and every row once on uneven partitions, full-batch
 * equivalence with tfjs's own model.fit on all rows in one process, and resuming from a checkpoint.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Table, vectorFromArray } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ring } from '../../src/collective/index.js';
import { Checkpoints } from '../../src/runtime/checkpoint.js';
import { PartitionData } from '../../src/runtime/data.js';
import { type FitCallback, type FitOptions, fit as fitModel, type History } from '../../src/runtime/fit/fit.js';
import { epochOrder, stepRange, stepsPerEpoch } from '../../src/runtime/fit/plan.js';
import { FEATURES, rowOf } from '../fixtures/entries/linear-model.js';
import { ringInProcess } from '../helpers/ring.js';
import { tempDir } from '../helpers/spark.js';

const UNEVEN = [9, 700, 1300];

/** Rows first..first+n of the linear fixture, with an id column. */
function partition(first: number, n: number): PartitionData {
  const ids = Array.from({ length: n }, (_, i) => first + i);
  const rows = ids.map(rowOf);
  const columns: Record<string, ReturnType<typeof vectorFromArray>> = {
    id: vectorFromArray(Float32Array.from(ids)),
  };
  FEATURES.forEach((f, j) => {
    columns[f] = vectorFromArray(Float32Array.from(rows, (r) => r.x[j] as number));
  });
  columns.y = vectorFromArray(Float32Array.from(rows, (r) => r.y));
  const table = new Table(columns);
  return new PartitionData(table.batches, table.schema);
}

function partitions(sizes: number[]): PartitionData[] {
  let first = 0;
  return sizes.map((n) => {
    const p = partition(first, n);
    first += n;
    return p;
  });
}

function linearModel(optimizer: 'sgd' | 'adam' = 'sgd'): tf.LayersModel {
  const model = tf.sequential({
    layers: [tf.layers.dense({ units: 1, inputShape: [FEATURES.length], kernelInitializer: 'glorotUniform' })],
  });
  model.compile({
    optimizer: optimizer === 'sgd' ? tf.train.sgd(0.05) : tf.train.adam(0.01),
    loss: 'meanSquaredError',
    metrics: ['mae'],
  });
  return model;
}

/** Models for `ranks` ranks, each call new ones, all starting from the same weights. */
function sameStart(ranks: number, optimizer: 'sgd' | 'adam'): () => tf.LayersModel[] {
  const initial = linearModel().getWeights();
  return () =>
    Array.from({ length: ranks }, () => {
      const m = linearModel(optimizer);
      m.setWeights(initial);
      return m;
    });
}

async function weightsOf(model: tf.LayersModel): Promise<number[]> {
  return (await Promise.all(model.getWeights().map((w) => w.data()))).flatMap((d) => [...d]);
}

/** A callback that throws `message` on every rank at the end of step `step` of epoch `epoch` (0-based). */
function diesAfter(epoch: number, step: number, message: string): FitCallback {
  let now = 0;
  return {
    onEpochBegin: (e: number) => {
      now = e;
    },
    onBatchEnd: (k: number) => {
      if (now === epoch && k === step) throw new Error(message);
    },
  };
}

/** fit on every rank of `rings` at once, each with its own model, data and checkpoints. */
async function fitAll(
  rings: Ring[],
  data: PartitionData[],
  o: { runDir: string; attempt?: number; models: tf.LayersModel[]; options: Omit<FitOptions, 'label'> },
): Promise<{ histories: History[]; batches: Array<Array<number>>; counted: number[]; logs: string[] }> {
  const batches = rings.map(() => [] as number[]);
  const logs: string[] = [];
  const counted = rings.map(() => 0);
  const histories = await Promise.all(
    rings.map((ring, rank) =>
      fitModel(
        {
          tf,
          ring,
          data: data[rank] as PartitionData,
          attempt: o.attempt ?? 0,
          checkpoints: new Checkpoints(o.runDir, rank),
          report: () => undefined,
          countRows: (n) => {
            counted[rank] = (counted[rank] as number) + n;
          },
          step: () => 0,
          fitIndex: 0,
          log: (line) => logs.push(line),
        },
        o.models[rank] as tf.LayersModel,
        {
          label: 'y',
          features: FEATURES,
          ...o.options,
          callbacks: [
            ...[o.options.callbacks ?? []].flat(),
            { onBatchEnd: (_k, logs) => void (batches[rank] as number[]).push(logs?.size as number) },
          ],
        },
      ),
    ),
  );
  return { histories, batches, counted, logs };
}

describe('fit plan', () => {
  it('gives every rank the same steps and every row exactly once', () => {
    for (const batchSize of [1, 7, 32, 128, 5000]) {
      const steps = stepsPerEpoch(UNEVEN, batchSize);
      expect(steps).toBe(Math.ceil(1300 / batchSize));
      for (const rows of UNEVEN) {
        const order = epochOrder(rows, { shuffle: true, seed: 3, epoch: 1, rank: 2 });
        expect([...order].sort((a, b) => a - b)).toEqual(Array.from({ length: rows }, (_, i) => i));
        const taken: number[] = [];
        for (let k = 0; k < steps; k++) {
          const [from, to] = stepRange(rows, steps, k);
          expect(to - from).toBeLessThanOrEqual(batchSize);
          taken.push(...order.subarray(from, to));
        }
        expect(taken.sort((a, b) => a - b)).toEqual(Array.from({ length: rows }, (_, i) => i));
      }
    }
  });

  it('shuffles differently each epoch and rank, the same for the same seed', () => {
    const a = epochOrder(50, { shuffle: true, seed: 1, epoch: 0, rank: 0 });
    expect(epochOrder(50, { shuffle: true, seed: 1, epoch: 0, rank: 0 })).toEqual(a);
    expect(epochOrder(50, { shuffle: true, seed: 1, epoch: 1, rank: 0 })).not.toEqual(a);
    expect(epochOrder(50, { shuffle: true, seed: 1, epoch: 0, rank: 1 })).not.toEqual(a);
    expect([...epochOrder(5, { shuffle: false, seed: 1, epoch: 0, rank: 0 })]).toEqual([0, 1, 2, 3, 4]);
  });
});

describe('fit over a ring', () => {
  let rings: Ring[];
  beforeAll(async () => {
    await tf.setBackend('cpu');
    rings = await ringInProcess(3);
  });
  afterAll(async () => {
    await Promise.all(rings.map((r) => r.close()));
  });

  it('takes equal steps on partitions of 9, 700 and 1300 rows and uses every row once an epoch', async () => {
    const models = rings.map(() => linearModel());
    const { histories, batches, counted } = await fitAll(rings, partitions(UNEVEN), {
      runDir: tempDir('fit'),
      models,
      options: { batchSize: 64, epochs: 2 },
    });
    const steps = Math.ceil(1300 / 64);
    for (const [rank, sizes] of batches.entries()) {
      expect(sizes).toHaveLength(2 * steps);
      expect(sizes.slice(0, steps).reduce((a, b) => a + b, 0)).toBe(UNEVEN[rank]);
      expect(counted[rank]).toBe(2 * (UNEVEN[rank] as number));
    }
    expect(histories[0]?.params).toMatchObject({ steps, rows: 2009, epochs: 2 });
    expect(histories[0]?.history.loss).toHaveLength(2);
    expect(histories[1]?.history).toEqual(histories[0]?.history);
    // Rank 0's initial weights were broadcast, and every step was the same on every rank.
    const w0 = await weightsOf(models[0] as tf.LayersModel);
    for (const m of models.slice(1)) expect(await weightsOf(m)).toEqual(w0);
  });

  it('full-batch fit equals model.fit on all the rows in one process', async () => {
    const models = rings.map(() => linearModel());
    const reference = linearModel();
    reference.setWeights((models[0] as tf.LayersModel).getWeights());
    const { histories } = await fitAll(rings, partitions(UNEVEN), {
      runDir: tempDir('fit'),
      models,
      options: { batchSize: 1300, epochs: 3, shuffle: false },
    });
    const all = partition(0, 2009);
    const a = all.toArrays({ features: FEATURES, label: 'y' });
    const xs = tf.tensor2d(a.xs, [a.rows, FEATURES.length]);
    const ys = tf.tensor2d(a.ys, [a.rows, 1]);
    const expected = await reference.fit(xs, ys, { batchSize: 2009, epochs: 3, shuffle: false });
    const got = await weightsOf(models[1] as tf.LayersModel);
    const want = await weightsOf(reference);
    got.forEach((v, i) => {
      expect(v).toBeCloseTo(want[i] as number, 5);
    });
    (expected.history.loss as number[]).forEach((loss, i) => {
      expect(histories[0]?.history.loss?.[i]).toBeCloseTo(loss, 4);
    });
    tf.dispose([xs, ys]);
  });

  it('resumes a retried attempt from the last epoch, weights and Adam state, to the same result', async () => {
    const data = partitions(UNEVEN);
    const fresh = sameStart(rings.length, 'adam');
    const options = { batchSize: 100, shuffle: true, seed: 7 };
    const unbroken = fresh();
    await fitAll(rings, data, { runDir: tempDir('fit'), models: unbroken, options: { ...options, epochs: 4 } });

    const runDir = tempDir('fit');
    // The first attempt gets 2 epochs in and dies; the retry starts from fresh models.
    await fitAll(rings, data, { runDir, models: fresh(), options: { ...options, epochs: 2 } });
    const retried = fresh();
    const { histories, batches } = await fitAll(rings, data, {
      runDir,
      attempt: 1,
      models: retried,
      options: { ...options, epochs: 4 },
    });
    expect(histories[0]?.params.resumedFromEpoch).toBe(2);
    expect(histories[0]?.epoch).toEqual([0, 1, 2, 3]);
    expect(histories[0]?.history.loss).toHaveLength(4);
    expect(batches[0]).toHaveLength(2 * 13); // only the epochs left
    expect(await weightsOf(retried[2] as tf.LayersModel)).toEqual(await weightsOf(unbroken[2] as tf.LayersModel));
  });

  it('goes on from a checkpoint inside an epoch (checkpointEverySteps) on the same rows, to the unbroken run', async () => {
    const data = partitions(UNEVEN);
    const fresh = sameStart(rings.length, 'adam');
    const options = { batchSize: 100, shuffle: true, seed: 3, epochs: 3, checkpointEverySteps: 4 };
    const unbroken = fresh();
    const whole = await fitAll(rings, data, { runDir: tempDir('fit'), models: unbroken, options });

    const runDir = tempDir('fit');
    // Every rank dies after step 10 of epoch 2 (13 steps an epoch): the last checkpoint is after its step 8.
    await expect(
      fitAll(rings, data, {
        runDir,
        models: fresh(),
        options: { ...options, callbacks: diesAfter(1, 9, 'the attempt dies here') },
      }),
    ).rejects.toThrow('the attempt dies here');
    const retried = fresh();
    const { histories, batches } = await fitAll(rings, data, { runDir, attempt: 1, models: retried, options });
    expect(histories[0]?.params.resumedFromEpoch).toBe(1);
    expect(histories[0]?.params.resumedFromStep).toBe(8);
    expect(batches[0]).toHaveLength(13 - 8 + 13);
    // The epoch's loss sums went on from the checkpoint: the history is the unbroken run's.
    expect(histories[0]?.history.loss).toEqual(whole.histories[0]?.history.loss);
    expect(await weightsOf(retried[2] as tf.LayersModel)).toEqual(await weightsOf(unbroken[2] as tf.LayersModel));
    // The checkpoints inside epochs, and the epochs' starts they kept, are gone with the last epoch's.
    expect(readdirSync(join(runDir, 'checkpoint')).sort()).toEqual(['fit-0-epoch-3.bin', 'state.json']);
  });

  it('resumes from the start of the epoch when the rows were dealt again over other ranks', async () => {
    const two = await ringInProcess(2);
    try {
      const redealt = [partition(0, 1009), partition(1009, 1000)]; // the same 2009 rows, over 2 ranks
      const start = sameStart(3, 'sgd');
      const fresh = (ranks: number) => start().slice(0, ranks);
      const options = { batchSize: 100, shuffle: false, epochs: 3, checkpointEverySteps: 4 };
      // The reference: epoch 1 on 3 ranks, then epochs 2 and 3 on 2.
      const refDir = tempDir('fit');
      await fitAll(rings, partitions(UNEVEN), { runDir: refDir, models: fresh(3), options: { ...options, epochs: 1 } });
      const reference = fresh(2);
      await fitAll(two, redealt, { runDir: refDir, attempt: 1, models: reference, options });

      const runDir = tempDir('fit');
      const dies = diesAfter(1, 9, 'the host is lost here');
      await expect(
        fitAll(rings, partitions(UNEVEN), { runDir, models: fresh(3), options: { ...options, callbacks: dies } }),
      ).rejects.toThrow('the host is lost here');
      const resized = fresh(2);
      const { histories, batches, logs } = await fitAll(two, redealt, { runDir, attempt: 1, models: resized, options });
      expect(histories[0]?.params.resumedFromEpoch).toBe(1);
      expect(histories[0]?.params.resumedFromStep).toBeUndefined();
      expect(batches[0]).toHaveLength(2 * 11); // 1009 rows a rank at 100 a step: 11 steps, both epochs whole
      expect(logs).toContain(
        'fit: resumed from the start of epoch 2, not from its step 8: the rows were dealt again over 2 ranks (a checkpoint inside an epoch holds only for the ranks that wrote it)',
      );
      expect(await weightsOf(resized[0] as tf.LayersModel)).toEqual(await weightsOf(reference[0] as tf.LayersModel));
    } finally {
      await Promise.all(two.map((r) => r.close()));
    }
  });

  it('refuses a checkpointEverySteps that is not a positive integer', async () => {
    await expect(
      fitAll(rings, partitions(UNEVEN), {
        runDir: tempDir('fit'),
        models: rings.map(() => linearModel()),
        options: { batchSize: 100, checkpointEverySteps: 0 },
      }),
    ).rejects.toThrow('fit: checkpointEverySteps must be a positive integer (steps), not 0');
  });

  it('stops every rank when a callback stops one, and a retry stays stopped', async () => {
    const runDir = tempDir('fit');
    const models = rings.map(() => linearModel());
    const stopAtFirstEpoch = {
      onEpochEnd: () => {
        (models[1] as tf.LayersModel).stopTraining = true;
      },
    };
    const { histories } = await fitAll(rings, partitions(UNEVEN), {
      runDir,
      models,
      options: { batchSize: 500, epochs: 5, callbacks: stopAtFirstEpoch },
    });
    for (const h of histories) expect(h.epoch).toEqual([0]);
    const again = await fitAll(rings, partitions(UNEVEN), {
      runDir,
      attempt: 1,
      models: rings.map(() => linearModel()),
      options: { batchSize: 500, epochs: 5 },
    });
    expect(again.batches[0]).toHaveLength(0);
    expect(again.histories[0]?.epoch).toEqual([0]);
  });

  it('names the width that does not fit the model input', async () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [3] })] });
    model.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    const solo = await ringInProcess(1);
    await expect(
      fitModel(
        {
          tf,
          ring: solo[0] as Ring,
          data: partition(0, 10),
          attempt: 0,
          checkpoints: new Checkpoints(tempDir('fit'), 0),
          report: () => undefined,
          countRows: () => undefined,
          step: () => 0,
          fitIndex: 0,
        },
        model,
        { label: 'y', features: FEATURES },
      ),
    ).rejects.toThrow(/4 values a row; the model's input \[3\] takes 3/);
    await solo[0]?.close();
  });
});
