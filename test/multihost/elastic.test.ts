/**
 * Elastic training on a Spark standalone cluster of two namespaced hosts with two executors each
 * (cluster/hosts.ts): a full-batch ctx.fit on 4 workers with --min-workers 2 loses one host for good
 * (every process on it killed, its link down) after its third epoch. The run goes on, in the same
 * Spark application, with the 2 workers of the other host from the last checkpoint, ends with the
 * weights of tfjs's model.fit on all the rows in one process, and says 4 -> 2 naming the lost host.
 * With the host back (its link up, its Spark worker started again) the ring grows back to 4 at an
 * epoch's end, and the weights are the same again. A mini-batch run takes every row once in each
 * completed epoch across both changes, and a custom loop grows at its ctx.resizePoint().
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Host, removeStaleClusters } from '../../cluster/hosts.js';
import { hostLossConf, SparkOnHosts } from '../../cluster/spark.js';
import { allreduce } from '../../src/index.js';
import { rowOf } from '../fixtures/entries/linear-model.js';
import { FIT_INITIAL, fullBatchFit } from '../helpers/linear-reference.js';
import { PYTHON, rankOf, tempDir, waitForNoLeftovers, writeTable } from '../helpers/spark.js';
import { readTensorBoard } from '../helpers/tensorboard.js';

const ROWS = 400;
const EPOCHS = 8;
const CLUSTER_SERVERS = /deploy\.master\.Master|deploy\.worker\.Worker/;
let cluster: SparkOnHosts;
let dir: string;

const TRAIN = `import type { TrainContext } from 'sparkring';

export default async function train(ctx: TrainContext) {
  const { tf } = ctx;
  const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [4] })] });
  model.setWeights([tf.tensor2d(${JSON.stringify(FIT_INITIAL.kernel)}, [4, 1]), tf.tensor1d(${JSON.stringify(FIT_INITIAL.bias)})]);
  model.compile({ optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError' });
  const history = await ctx.fit(model, {
    label: 'y',
    features: ['x0', 'x1', 'x2', 'x3'],
    batchSize: Number(ctx.hparams.batch ?? ${ROWS}),
    epochs: Number(ctx.hparams.epochs),
    shuffle: false,
    callbacks: { onEpochEnd: () => new Promise((r) => setTimeout(r, 1500)) },
  });
  const weights = (await Promise.all(model.getWeights().map((w) => w.data()))).flatMap((d) => [...d]);
  return { weights, loss: history.history.loss, worldSize: ctx.worldSize, attempt: ctx.attempt, resized: ctx.resized };
}
`;

const LOOP_STEPS = 20;
/** A custom loop: full-batch gradient descent by hand, a checkpoint and a resize point every step. */
const LOOP = `import type { TrainContext } from 'sparkring';

export default async function train(ctx: TrainContext) {
  const saved = await ctx.checkpoint.load<{ step: number; w: number[] }>();
  const w = Float64Array.from(saved?.w ?? [0, 0, 0, 0, 0]);
  const { xs, ys } = ctx.data.toArrays({ features: ['x0', 'x1', 'x2', 'x3'], label: 'y' });
  for (let s = (saved?.step ?? 0) + 1; s <= ${LOOP_STEPS}; s++) {
    const g = new Float64Array(6);
    for (let i = 0; i < ys.length; i++) {
      let e = w[4] - ys[i];
      for (let j = 0; j < 4; j++) e += w[j] * xs[i * 4 + j];
      for (let j = 0; j < 4; j++) g[j] += e * xs[i * 4 + j];
      g[4] += e;
    }
    g[5] = ys.length;
    const sum = await ctx.allreduce(g, 'sum');
    for (let j = 0; j < 5; j++) w[j] -= (0.05 * sum[j]) / sum[5];
    ctx.report({ bias: w[4] }, s);
    await ctx.checkpoint.save({ step: s, w: Array.from(w) });
    await ctx.resizePoint();
    await new Promise((r) => setTimeout(r, 1500));
  }
  return { w: Array.from(w), worldSize: ctx.worldSize, resized: ctx.resized };
}
`;

/** LOOP's weights in one process over all the rows. */
function loopReference(): number[] {
  const rows = Array.from({ length: ROWS }, (_, i) => rowOf(i));
  const w = [0, 0, 0, 0, 0];
  for (let s = 1; s <= LOOP_STEPS; s++) {
    const g = [0, 0, 0, 0, 0];
    for (const { x, y } of rows) {
      const e = (w[4] as number) - y + x.reduce((a, v, j) => a + (w[j] as number) * v, 0);
      x.forEach((v, j) => {
        g[j] = (g[j] as number) + e * v;
      });
      g[4] = (g[4] as number) + e;
    }
    for (let j = 0; j < 5; j++) w[j] = (w[j] as number) - (0.05 * (g[j] as number)) / ROWS;
  }
  return w;
}

beforeAll(async () => {
  removeStaleClusters();
  cluster = await SparkOnHosts.start({ hosts: 2, coresPerWorker: 2, memoryPerWorker: '1500m', python: PYTHON });
  dir = tempDir('elastic');
  writeFileSync(join(dir, 'train.ts'), TRAIN);
  writeFileSync(join(dir, 'loop.ts'), LOOP);
}, 150_000);

afterAll(async () => {
  const drivers = await waitForNoLeftovers(150_000, CLUSTER_SERVERS);
  let left: string[] = [];
  if (cluster) {
    left = cluster.hosts.leftovers();
    await cluster.stop();
  }
  expect(drivers).toEqual([]);
  expect(left).toEqual([]);
  expect(await waitForNoLeftovers()).toEqual([]);
}, 240_000);

interface ElasticResult {
  weights: number[];
  loss: number[];
  worldSize: number;
  attempt: number;
  resized: { from: number; to: number; why: string } | null;
}

/**
 * A 4-worker full-batch run of `epochs` epochs with --min-workers 2 that loses, after its third
 * epoch, the host rank 0 is not on; `whenShrunk` runs once the run says it shrank.
 */
async function loseAHost(
  epochs: number,
  whenShrunk?: (lost: Host) => void,
  more: Partial<Parameters<typeof allreduce>[0]> = { minWorkers: 2 },
  o: { batch?: number; executorEnv?: Record<string, string>; entry?: string } = {},
) {
  const lines: string[] = [];
  let lost: Host | undefined;
  let shrunk = false;
  const r = await allreduce({
    entry: join(dir, o.entry ?? 'train.ts'),
    workers: 4,
    master: cluster.masterUrl,
    data: writeTable(dir, 'linear', ROWS),
    hparams: { epochs, ...(o.batch ? { batch: o.batch } : {}) },
    experiments: join(dir, 'experiments'),
    peerTimeoutMs: 5000,
    slotWaitSeconds: 60,
    sparkConf: {
      ...hostLossConf(4),
      ...Object.fromEntries(Object.entries(o.executorEnv ?? {}).map(([k, v]) => [`spark.executorEnv.${k}`, v])),
    },
    ...more,
    onProgress: (line) => {
      lines.push(line);
      if (lost && !shrunk && line.startsWith('sparkring: workers 4 -> 2')) {
        shrunk = true;
        whenShrunk?.(lost);
      }
      // One step an epoch: step 3 ends the third epoch.
      const m = /^\[worker 0\] step (\d+)/.exec(line);
      if (lost || !m || Number(m[1]) < 3) return;
      lost = cluster.hosts.hosts.find(
        (h) => !cluster.hosts.processesOn(h, /runtime\/main\.js/).some((p) => rankOf(Number(p.split(' ')[0])) === 0),
      );
      if (lost) cluster.hosts.lose(lost);
    },
  });
  expect(lost).toBeDefined();
  return { r, result: r.result as ElasticResult, lines, lost: lost as Host };
}

it('without --min-workers, a retry that cannot be placed names the lost host and the setting that would let it go on', async () => {
  let lost: Host | undefined;
  try {
    const failed = await loseAHost(EPOCHS, undefined, { maxAttempts: 2, slotWaitSeconds: 10 }).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    lost = cluster.hosts.hosts.find((h) => !cluster.hosts.processesOn(h, /deploy\.worker\.Worker/).length);
    expect(lost).toBeDefined();
    expect(failed?.message).toMatch(
      new RegExp(
        `the cluster offers 2 .*; attempt 1 lost host ${(lost as Host).address.replaceAll('.', '\\.')} \\(rank \\d\\): --min-workers 2 \\(min_workers=2\\) would let the run go on with the 2 workers free`,
      ),
    );
  } finally {
    if (lost) await cluster.bringBack(lost);
  }
}, 400_000);

async function expectFullBatchWeights(result: ElasticResult, epochs: number): Promise<void> {
  expect(result.loss).toHaveLength(epochs);
  const reference = await fullBatchFit(ROWS, epochs);
  result.weights.forEach((w, i) => {
    expect(w).toBeCloseTo(reference.weights[i] as number, 5);
  });
}

it('--min-workers 2: a host lost for good at epoch 3, the run goes on with the other 2 to the full-batch weights', async () => {
  const { r, result, lines, lost } = await loseAHost(EPOCHS);
  try {
    expect(r.workers).toBe(2);
    expect(result.worldSize).toBe(2);
    expect(r.ranks.map((k) => k.host)).not.toContain(lost.address);
    expect(r.resizes).toHaveLength(1);
    expect(r.resizes[0]).toMatchObject({ fromWorkers: 4, toWorkers: 2, lostHost: lost.address });
    expect(lines.some((l) => l.startsWith(`sparkring: workers 4 -> 2: host ${lost.address} (rank `))).toBe(true);
    // The custom-loop view (ctx.resized), and what fit said of its steps.
    expect(result.resized).toMatchObject({
      from: 4,
      to: 2,
      why: expect.stringMatching(`^lost host ${lost.address} \\(rank \\d\\)$`),
    });
    expect(
      lines.some((l) =>
        /^\[worker 0\] fit: the ring went 4 -> 2 ranks \(lost host .*\); each step still takes every row/.test(l),
      ),
    ).toBe(true);
    await expectFullBatchWeights(result, EPOCHS);
  } finally {
    await cluster.bringBack(lost);
  }
}, 400_000);

it('the lost host back while the run trains: the ring grows back to 4 at an epoch end, 4 -> 2 -> 4, the same weights', async () => {
  const epochs = 24;
  let back: Promise<void> | undefined;
  const { r, result, lines, lost } = await loseAHost(epochs, (host) => {
    back = cluster.bringBack(host);
  });
  await back;
  expect(r.resizes.map((x) => [x.fromWorkers, x.toWorkers])).toEqual([
    [4, 2],
    [2, 4],
  ]);
  expect(r.resizes[0]?.lostHost).toBe(lost.address);
  expect(r.workers).toBe(4);
  expect(result.worldSize).toBe(4);
  expect(r.ranks.map((k) => k.host)).toContain(lost.address);
  expect(lines.some((l) => l.startsWith('sparkring: workers 2 -> 4: executors returned'))).toBe(true);
  expect(result.resized).toEqual({ from: 2, to: 4, why: 'executors returned' });
  expect(lines.some((l) => /failed: .*ResizeRequested/.test(l))).toBe(false);
  // TensorBoard: the workers of each stage where it starts, and each change's cause as text.
  const board = readTensorBoard(join(r.dir, 'tensorboard', 'worker-0'));
  expect((board.scalars['sparkring/workers'] ?? []).map(([, w]) => w)).toEqual([4, 2, 4]);
  expect((board.texts['sparkring/resized'] ?? []).map(([, t]) => t)).toEqual([
    expect.stringMatching(`^workers 4 -> 2: lost host ${lost.address} \\(rank \\d\\)$`),
    'workers 2 -> 4: executors returned',
  ]);
  await expectFullBatchWeights(result, epochs);
}, 400_000);

it('mini-batch with a row-id column: every completed epoch took every row id once, across 4 -> 2 -> 4', async () => {
  const epochs = 24;
  const batch = 50;
  const rowsDir = join(dir, 'rows');
  mkdirSync(rowsDir);
  let back: Promise<void> | undefined;
  const { r, lines, lost } = await loseAHost(
    epochs,
    (host) => {
      back = cluster.bringBack(host);
    },
    { minWorkers: 2 },
    { batch, executorEnv: { SPARKRING_TEST_FIT_ROWS: `id:${rowsDir}` } },
  );
  await back;
  expect(r.resizes.map((x) => [x.fromWorkers, x.toWorkers])).toEqual([
    [4, 2],
    [2, 4],
  ]);
  expect(lines).toContainEqual(
    expect.stringMatching(
      `^\\[worker 0\\] fit: the ring went 4 -> 2 ranks \\(lost host ${lost.address} \\(rank \\d\\)\\); a step takes up to 2 x ${batch} rows now, 4 x ${batch} before$`,
    ),
  );
  // The rows each rank took, by attempt and epoch (fit.ts's test hook); an epoch is complete in an
  // attempt where every rank of that attempt's ring recorded it.
  const taken = new Map<string, { worldSize: number; ids: number[][] }>();
  for (const f of readdirSync(rowsDir)) {
    const [, a, e] = /^a(\d+)-e(\d+)-r\d+\.json$/.exec(f) ?? [];
    const rec = JSON.parse(readFileSync(join(rowsDir, f), 'utf8')) as { worldSize: number; ids: number[] };
    const key = `${a}/${e}`;
    const at = taken.get(key) ?? { worldSize: rec.worldSize, ids: [] };
    at.ids.push(rec.ids);
    taken.set(key, at);
  }
  const complete = [...taken].filter(([, t]) => t.ids.length === t.worldSize);
  const allIds = Array.from({ length: ROWS }, (_, i) => i);
  for (const [key, t] of complete) {
    expect({ key, ids: t.ids.flat().sort((x, y) => x - y) }).toEqual({ key, ids: allIds });
  }
  const epochsDone = new Set(complete.map(([key]) => Number(key.split('/')[1])));
  expect([...epochsDone].sort((x, y) => x - y)).toEqual(Array.from({ length: epochs }, (_, i) => i));
  // Epochs ran at both sizes.
  expect(new Set(complete.map(([, t]) => t.worldSize))).toEqual(new Set([2, 4]));
}, 400_000);

it('a custom loop grows back where it calls ctx.resizePoint(), 4 -> 2 -> 4, with the weights of one process', async () => {
  let back: Promise<void> | undefined;
  const { r, lost } = await loseAHost(
    LOOP_STEPS,
    (host) => {
      back = cluster.bringBack(host);
    },
    { minWorkers: 2 },
    { entry: 'loop.ts' },
  );
  await back;
  expect(r.resizes.map((x) => [x.fromWorkers, x.toWorkers])).toEqual([
    [4, 2],
    [2, 4],
  ]);
  expect(r.resizes[0]?.lostHost).toBe(lost.address);
  const result = r.result as { w: number[]; worldSize: number; resized: unknown };
  expect(result.worldSize).toBe(4);
  expect(result.resized).toEqual({ from: 2, to: 4, why: 'executors returned' });
  loopReference().forEach((w, i) => {
    expect(result.w[i]).toBeCloseTo(w, 9);
  });
}, 400_000);
