/**
 * sparkring on a Spark standalone cluster whose workers sit on three hosts (network namespaces
 * with their own addresses, /dev/shm and local disk: cluster/hosts.ts). The client, the driver and
 * the master run in the root namespace, as on a gateway machine. Temp folders under /tmp are
 * shared by every host, as a shared mount would be; `cluster.hosts.localDir` is private to each.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Host, removeStaleClusters } from '../../cluster/hosts.js';
import { SparkOnHosts } from '../../cluster/spark.js';
import { launch } from '../../src/client/jobs/search.js';
import { type AllreduceResult, allreduce } from '../../src/index.js';
import { type LinearResult, singleWorkerReference } from '../helpers/linear-reference.js';
import { entry, PYTHON, rankOf, tempDir, waitForNoLeftovers, writeTable } from '../helpers/spark.js';

const BATCH = 8;
let cluster: SparkOnHosts;
let dir: string;
/** The cluster's own processes, which stay up across the file's tests. */
const CLUSTER_SERVERS = /deploy\.master\.Master|deploy\.worker\.Worker/;

beforeAll(async () => {
  removeStaleClusters(); // what a killed earlier run left
  // Spark's own worker timeout (60 s): a cut host's worker stays listed long after its ring peers
  // gave it up (the peer timeout, 5 s here), and after the driver's host watch ended the attempt.
  cluster = await SparkOnHosts.start({ hosts: 3, python: PYTHON });
  dir = tempDir('multihost');
}, 150_000);

afterAll(async () => {
  let left: string[] = [];
  // A client returns on its run's result; its driver then releases the executors and stops the
  // application (a cut host's executor is dropped only after spark.network.timeout). It does that
  // against a live master: stopped under it, the driver waited on the master for longer than the
  // leftover check below.
  const drivers = await waitForNoLeftovers(150_000, CLUSTER_SERVERS);
  if (cluster) {
    // A cut host's worker notices its lost peer within the peer timeout, then ends.
    const clean = async (): Promise<boolean> => {
      left = cluster.hosts.leftovers();
      return left.length === 0;
    };
    await cluster.waitFor(clean, 30_000, 'the hosts to be clean').catch(() => undefined);
    await cluster.stop();
  }
  expect(drivers).toEqual([]);
  expect(left).toEqual([]);
  expect(await waitForNoLeftovers()).toEqual([]);
  expect(existsSync(cluster.hosts.root)).toBe(false);
}, 240_000);

const hostOf = (address: string): Host => cluster.hosts.hosts.find((h) => h.address === address) as Host;

async function linearOn(workers: number): Promise<{ run: AllreduceResult; ranks: LinearResult[]; rows: number }> {
  const rows = workers * BATCH * 6;
  const run = await allreduce({
    entry: entry('linear.ts'),
    workers,
    master: cluster.masterUrl,
    data: writeTable(tempDir('multihost-data'), 'linear', rows),
    hparams: { batchSize: BATCH },
    experiments: join(dir, 'experiments'),
    onProgress: () => undefined,
  });
  return { run, ranks: run.ranks.map((r) => r.result as LinearResult), rows };
}

describe('training across hosts', () => {
  for (const workers of [2, 3]) {
    it(`on ${workers} hosts, one worker each, ends with the weights of one worker on the same rows, every row once`, async () => {
      const { run, ranks, rows } = await linearOn(workers);
      expect(new Set(run.ranks.map((r) => r.host)).size).toBe(workers);
      for (const r of run.ranks) expect(hostOf(r.host), `rank ${r.rank} on ${r.host}`).toBeDefined();
      // Each host has its own /dev/shm: no rank could map its successor's region, all stayed on TCP.
      expect(run.ranks.map((r) => r.ringDataPath)).toEqual(run.ranks.map(() => 'tcp'));
      expect(ranks.flatMap((r) => r.batches.flat()).sort((a, b) => a - b)).toEqual(Array.from({ length: rows }, (_, i) => i));
      for (const r of ranks) expect(r.weights).toEqual((ranks[0] as LinearResult).weights);
      const reference = await singleWorkerReference(ranks);
      for (const [i, v] of (ranks[0] as LinearResult).weights.entries()) expect(v).toBeCloseTo(reference[i] as number, 5);
      // Every host's files are in the run's directory: its log and its TensorBoard events.
      expect(readdirSync(join(run.dir, 'logs')).sort()).toEqual(Array.from({ length: workers }, (_, i) => `worker-${i}.log`));
      expect(readdirSync(join(run.dir, 'tensorboard')).filter((d) => d.startsWith('worker-')).length).toBe(workers);
    }, 240_000);
  }

  it('a search runs every trial once across the hosts and finds the best', async () => {
    const r = await launch({
      entry: entry('quadratic.ts'),
      grid: { x: [0, 1, 2, 3, 4, 5] },
      executors: 3,
      master: cluster.masterUrl,
      experiments: join(dir, 'experiments'),
      onProgress: () => undefined,
    });
    // The default lease: a shorter one can run out on a loaded 2-core machine, and its trial then
    // runs again (as it should), which is not what this test is about.
    expect(
      r.trials.map((t) => [t.id, t.status, t.attempts]),
      JSON.stringify(r.trials),
    ).toEqual(Array.from({ length: 6 }, (_, i) => [String(i), 'done', 1]));
    expect(r.best).toMatchObject({ hparams: { x: 3 } });
  }, 240_000);
});

describe('what a multi-host cluster must refuse, and say why', () => {
  it('an experiment root the hosts do not share: stops before training, naming the hosts and the fix', async () => {
    const lines: string[] = [];
    const run = allreduce({
      entry: entry('linear.ts'),
      workers: 2,
      master: cluster.masterUrl,
      maxAttempts: 2,
      // The client's own local disk: each host has another one at the same path.
      experiments: join(cluster.hosts.localDir, 'experiments'),
      onProgress: (l) => lines.push(l),
    });
    await expect(run).rejects.toMatchObject({
      kind: 'setup',
      message: expect.stringMatching(
        /^the experiment directory is not shared: hosts 10\.213\.\d+\.1\d, 10\.213\.\d+\.1\d cannot see .*; .*Put --experiments on a mount every executor host shares/,
      ),
    });
    // Not retried, and nothing written for a worker.
    expect(lines.filter((l) => l.includes('submitting'))).toHaveLength(1);
    const runs = join(cluster.hosts.localDir, 'experiments');
    const app = readdirSync(runs)[0] as string;
    expect(existsSync(join(runs, app, 'run.1', 'linear', 'logs'))).toBe(false);
  }, 180_000);

  it('--data that only the client can read: one line naming the executor host that cannot', async () => {
    const data = writeTable(cluster.hosts.localDir, 'linear', 32);
    await expect(
      allreduce({
        entry: entry('linear.ts'),
        workers: 2,
        master: cluster.masterUrl,
        data,
        experiments: join(dir, 'experiments'),
        onProgress: () => undefined,
      }),
    ).rejects.toMatchObject({
      kind: 'input',
      message: expect.stringMatching(
        new RegExp(`^cannot read --data ${data}: the executor on host 10\\.213\\.\\d+\\.1\\d cannot open it .*shared mount`),
      ),
    });
  }, 180_000);

  it('--ring-interface that the other hosts cannot reach: the formation error names rank, host, address, interface and flag', async () => {
    const started = Date.now();
    await expect(
      allreduce({
        entry: entry('linear.ts'),
        workers: 2,
        master: cluster.masterUrl,
        ringInterface: 'lo',
        formationTimeoutMs: 5000,
        experiments: join(dir, 'experiments'),
        onProgress: () => undefined,
      }),
    ).rejects.toMatchObject({
      kind: 'worker',
      message: expect.stringMatching(
        /RingFormationTimeoutError: rank \d: ring not formed after 5000 ms; missing: rank \d on host 10\.213\.\d+\.1\d at 127\.0\.0\.1:\d+ \(predecessor not reached: .*; ranks listen on --ring-interface lo \(here 127\.0\.0\.1\); set --ring-interface NAME\|CIDR/,
      ),
    });
    expect(Date.now() - started).toBeLessThan(120_000);
  }, 180_000);

  it('a host the others cannot reach before the ring forms: the formation error names it', async () => {
    const target = cluster.hosts.hosts[2] as Host;
    cluster.hosts.isolateFromPeers(target);
    try {
      await expect(
        allreduce({
          entry: entry('linear.ts'),
          workers: 3,
          master: cluster.masterUrl,
          formationTimeoutMs: 5000,
          // Shuffle blocks on a fixed port, which the isolation leaves open: only the ring is cut.
          sparkConf: { 'spark.blockManager.port': '7100' },
          experiments: join(dir, 'experiments'),
          onProgress: () => undefined,
        }),
      ).rejects.toMatchObject({
        kind: 'worker',
        message: expect.stringMatching(
          // Whichever rank reports first names it: as the peer it cannot reach, or as its own address.
          new RegExp(
            `RingFormationTimeoutError: rank \\d: ring not formed after 5000 ms; missing: .*${target.address.replaceAll('.', '\\.')}`,
          ),
        ),
      });
    } finally {
      cluster.hosts.rejoin(target);
    }
  }, 180_000);
});

describe('a host cut off mid-training', () => {
  const resumable = (more: Partial<Parameters<typeof allreduce>[0]>) =>
    allreduce({
      entry: entry('resumable.ts'),
      workers: 2,
      master: cluster.masterUrl,
      data: writeTable(tempDir('multihost-data'), 'linear', 64),
      hparams: { steps: 30, stepMs: 150 },
      experiments: join(dir, 'experiments'),
      peerTimeoutMs: 5000,
      slotWaitSeconds: 60,
      ...more,
    });

  it("a cut host: the driver's host watch ends the attempt in seconds naming it, and with a spare host the retry ends with the unbroken weights", async () => {
    const unbroken = await resumable({ onProgress: () => undefined });
    const lines: string[] = [];
    let cut: Host | undefined;
    try {
      const r = await resumable({
        maxAttempts: 2,
        // The driver drops the cut host's executor 30 s after its last heartbeat (every 3 s) rather
        // than 120: releasing the executors and stopping the application wait for that (60 s and
        // more).
        sparkConf: {
          'spark.network.timeout': '30s',
          'spark.network.timeoutInterval': '5s',
          'spark.executor.heartbeatInterval': '3s',
        },
        onProgress: (line) => {
          lines.push(line);
          const m = /^\[worker \d\] step (\d+)/.exec(line);
          if (cut || !m || Number(m[1]) < 12) return;
          // Rank 0's host: the retry's rank 0 then runs elsewhere, from the checkpoint.
          cut = cluster.hosts.hosts.find((h) =>
            cluster.hosts.processesOn(h, /runtime\/main\.js/).some((p) => rankOf(Number(p.split(' ')[0])) === 0),
          );
          if (cut) cluster.hosts.cut(cut);
        },
      });
      expect(cut).toBeDefined();
      const host = cut as Host;
      expect(r.attempts).toBe(2);
      // A cut host closes no connection: the driver's host watch finds it (two connection tries of
      // 1.5 s to its executor) before the ring's peer timeout (5 s) and the peers' report end.
      const failed = lines.find((l) => l.includes('attempt 1 failed'));
      expect(failed).toMatch(
        new RegExp(
          `attempt 1 failed: host ${host.address.replaceAll('.', '\\.')} \\(rank 0\\) stopped answering: none of its executors`,
        ),
      );
      expect(r.ranks.map((x) => x.host)).not.toContain(host.address);
      const weights = (x: AllreduceResult) => (x.result as { weights: number[] }).weights;
      expect(weights(r)).toEqual(weights(unbroken));
      expect((r.result as { resumedFrom: number }).resumedFrom).toBeGreaterThan(0);
    } finally {
      if (cut) cluster.hosts.restore(cut);
    }
  }, 400_000);
});
