import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrialQueue } from '../../src/hpo/queue.js';
import { expandGrid } from '../../src/hpo/space.js';
import { TestRedis } from '../helpers/redis.js';

let server: TestRedis;
let redis: Redis;
let searches = 0;

beforeAll(async () => {
  server = await TestRedis.start();
  redis = new Redis(`redis://127.0.0.1:${server.port}`);
});
afterAll(async () => {
  redis.disconnect();
  await server.stop();
});

const POLICY = { leaseMs: 10_000, maxAttempts: 3, excludeAfter: 2 };

const queueOf = async (n: number, o = POLICY) => {
  const q = new TrialQueue(redis, `s${++searches}`, o);
  await q.enqueue(Array.from({ length: n }, (_, i) => ({ id: String(i), hparams: { i } })));
  return q;
};

describe('the trial queue on Redis', () => {
  it('drops what others put in the queue: an id that is no folder name, hparams that are not an object', async () => {
    const q = await queueOf(1);
    const { pending } = q.keys();
    const prefix = pending.slice(0, -'pending'.length);
    for (const [id, hparams] of [
      ['../../etc', '{}'],
      ['..', '{}'],
      ['bad-hparams', 'not json'],
    ]) {
      await redis.hset(`${prefix}trial:${id}`, { hparams, status: 'pending', attempts: 0, owner: '' });
      await redis.lpush(pending, id as string);
      await redis.sadd(`${prefix}all`, id as string);
    }
    const claimed = await q.claim('exec-1');
    expect(claimed?.id).toBe('0');
    expect(await q.claim('exec-1')).toBeNull();
    expect((await q.trials()).map((t) => t.id)).toEqual(['0', 'bad-hparams']);
  });

  it('hands each trial to one executor and records one final result, even with executors racing', async () => {
    const trials = expandGrid({ lr: [0.1, 0.01, 0.001], layers: [1, 2], act: ['relu', 'tanh'] });
    const q = new TrialQueue(redis, `s${++searches}`, POLICY);
    await q.enqueue(trials.map((hparams, i) => ({ id: String(i), hparams })));
    const seen: string[] = [];
    await Promise.all(
      ['exec-1', 'exec-2', 'exec-3'].map(async (owner) => {
        for (let c = await q.claim(owner); c; c = await q.claim(owner)) {
          seen.push(c.id);
          expect(await q.complete(c.id, owner, { metric: c.hparams.lr })).toBe(true);
        }
      }),
    );
    expect(seen.sort((a, b) => Number(a) - Number(b))).toEqual(trials.map((_, i) => String(i)));
    const all = await q.trials();
    expect(all).toHaveLength(12);
    expect(all.every((t) => t.status === 'done' && t.attempts === 1)).toBe(true);
    expect(await q.drained()).toBe(true);
  });

  it('a lost executor (its lease expires) gives the trial back; its late report is refused', async () => {
    const q = await queueOf(1, { ...POLICY, leaseMs: 200 });
    const first = await q.claim('exec-1');
    expect(first?.attempt).toBe(0);
    await new Promise((r) => setTimeout(r, 400));
    expect(await q.renew('0', 'exec-1')).toBe(false);
    expect(await q.reap()).toEqual(['0']);
    const again = await q.claim('exec-2');
    expect(again).toMatchObject({ id: '0', attempt: 1 });
    expect(await q.complete('0', 'exec-1', 'late')).toBe(false);
    expect(await q.complete('0', 'exec-2', 'final')).toBe(true);
    expect(await q.complete('0', 'exec-2', 'twice')).toBe(false);
    expect((await q.trials())[0]).toMatchObject({ status: 'done', result: 'final', attempts: 2 });
  });

  it('a trial that fails K times is failed with its error; executors that fail are counted', async () => {
    const q = await queueOf(1, { ...POLICY, maxAttempts: 2 });
    const a = await q.claim('exec-1');
    expect(await q.fail(a?.id as string, 'exec-1', 'Error: boom 1')).toBe('requeued');
    const b = await q.claim('exec-2');
    expect(await q.fail(b?.id as string, 'exec-2', 'Error: boom 2')).toBe('failed');
    expect(await q.claim('exec-1')).toBeNull();
    expect((await q.trials())[0]).toMatchObject({ status: 'failed', attempts: 2, error: 'Error: boom 2' });
    expect(await q.failuresByOwner()).toEqual({ 'exec-1': 1, 'exec-2': 1 });
    expect(await q.drained()).toBe(true);
  });

  it('a renewed lease keeps the trial with its executor', async () => {
    const q = await queueOf(1, { ...POLICY, leaseMs: 300 });
    await q.claim('exec-1');
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 150));
      expect(await q.renew('0', 'exec-1')).toBe(true);
    }
    expect(await q.reap()).toEqual([]);
    expect(await q.complete('0', 'exec-1', 1)).toBe(true);
  });

  it('a trial failed on one executor goes to another first; it comes back only when asked', async () => {
    const q = await queueOf(2);
    const a = await q.claim('exec-1');
    expect(await q.fail(a?.id as string, 'exec-1', 'Error: broken here')).toBe('requeued');
    expect((await q.claim('exec-1'))?.id).toBe('1');
    expect(await q.claim('exec-1')).toBeNull();
    expect(await q.pendingCount()).toBe(1);
    expect((await q.claim('exec-1', true))?.id).toBe('0');
  });

  it('excludes an executor that fails trials in a row only while another executor completes them', async () => {
    const q = await queueOf(4);
    for (const id of ['0', '1']) {
      await q.claim('bad');
      expect(await q.fail(id, 'bad', 'Error: broken')).toBe('requeued');
    }
    expect(await q.excluded('bad')).toBe(false); // nobody succeeds: the trials are at fault
    const c = await q.claim('good');
    expect(await q.complete(c?.id as string, 'good', 1)).toBe(true);
    expect(await q.excluded('bad')).toBe(true);
    expect(await q.excluded('good')).toBe(false);
    // The same queue under a policy that allows three failures in a row.
    const lenient = new TrialQueue(redis, `s${searches}`, { ...POLICY, excludeAfter: 3 });
    expect(await lenient.excluded('bad')).toBe(false);
  });

  it('carries stop requests to the executor running the trial', async () => {
    const q = await queueOf(1);
    expect(await q.stopRequested('0')).toBe(false);
    await q.requestStop('0');
    expect(await q.stopRequested('0')).toBe(true);
  });
});
