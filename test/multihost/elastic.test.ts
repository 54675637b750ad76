/**
 * Elastic training on a Spark standalone cluster of two namespaced hosts with two executors each
 * (cluster/hosts.ts): a full-batch ctx.fit on 4 workers with --min-workers 2 loses one host for good
 * (every process on it killed, its link down) after its third epoch. The run goes on, in the same
 * Spark application, with the 2 workers of the other host from the last checkpoint, ends with the
 * weights of tfjs's model.fit on all the rows in one process, and says 4 -> 2 naming the lost host.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type Host, removeStaleClusters } from '../../cluster/hosts.js';
import { SparkOnHosts } from '../../cluster/spark.js';
import { allreduce } from '../../src/index.js';
import { FIT_INITIAL, fullBatchFit } from '../helpers/linear-reference.js';
import { PYTHON, tempDir, waitForNoLeftovers, writeTable } from '../helpers/spark.js';

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
    batchSize: ${ROWS},
    epochs: ${EPOCHS},
    shuffle: false,
    callbacks: { onEpochEnd: () => new Promise((r) => setTimeout(r, 1500)) },
  });
  const weights = (await Promise.all(model.getWeights().map((w) => w.data()))).flatMap((d) => [...d]);
  return { weights, loss: history.history.loss, worldSize: ctx.worldSize, attempt: ctx.attempt };
}
`;

beforeAll(async () => {
  removeStaleClusters();
  cluster = await SparkOnHosts.start({ hosts: 2, coresPerWorker: 2, memoryPerWorker: '1500m', python: PYTHON });
  dir = tempDir('elastic');
  writeFileSync(join(dir, 'train.ts'), TRAIN);
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

it('--min-workers 2: a host lost for good at epoch 3, the run goes on with the other 2 to the full-batch weights', async () => {
  const lines: string[] = [];
  let lost: Host | undefined;
  const r = await allreduce({
    entry: join(dir, 'train.ts'),
    workers: 4,
    minWorkers: 2,
    master: cluster.masterUrl,
    data: writeTable(dir, 'linear', ROWS),
    experiments: join(dir, 'experiments'),
    peerTimeoutMs: 5000,
    slotWaitSeconds: 60,
    sparkConf: {
      'spark.executor.cores': '1',
      'spark.cores.max': '4',
      'spark.executor.memory': '512m',
      // The lost host's executors, removed by the driver, leave Spark's lists once their heartbeats
      // time out: 30 s rather than 120 s, for the release at the end.
      'spark.network.timeout': '30s',
      'spark.network.timeoutInterval': '5s',
      'spark.executor.heartbeatInterval': '3s',
    },
    onProgress: (line) => {
      lines.push(line);
      // One step an epoch: step 3 ends the third epoch. Lose the host rank 0 is not on.
      const m = /^\[worker 0\] step (\d+)/.exec(line);
      if (lost || !m || Number(m[1]) < 3) return;
      lost = cluster.hosts.hosts.find(
        (h) => !cluster.hosts.processesOn(h, /runtime\/main\.js/).some((p) => rankOf(Number(p.split(' ')[0])) === 0),
      );
      if (lost) cluster.hosts.lose(lost);
    },
  });
  expect(lost).toBeDefined();
  const host = (lost as Host).address;
  const result = r.result as { weights: number[]; loss: number[]; worldSize: number; attempt: number };
  expect(r.workers).toBe(2);
  expect(result.worldSize).toBe(2);
  expect(r.ranks.map((k) => k.host)).not.toContain(host);
  expect(r.resizes).toHaveLength(1);
  expect(r.resizes[0]).toMatchObject({ fromWorkers: 4, toWorkers: 2, lostHost: host });
  expect(lines.some((l) => l.startsWith(`sparkring: workers 4 -> 2: host ${host} (rank `))).toBe(true);
  expect(result.loss).toHaveLength(EPOCHS);
  const reference = await fullBatchFit(ROWS, EPOCHS);
  result.weights.forEach((w, i) => {
    expect(w).toBeCloseTo(reference.weights[i] as number, 5);
  });
  cluster.hosts.restore(lost as Host);
}, 400_000);

/** The rank of a Node worker, from its environment (SPARKRING_RANK). */
function rankOf(pid: number): number | undefined {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    const rank = env.find((v) => v.startsWith('SPARKRING_RANK='));
    return rank ? Number(rank.slice('SPARKRING_RANK='.length)) : undefined;
  } catch {
    return undefined;
  }
}
