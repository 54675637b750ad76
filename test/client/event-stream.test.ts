/**
 * The client follows a run's stream without trusting it: what is not an event of the run's, signed
 * with its events key, is dropped, never acted on. The keys are the same on both sides.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { EventFollower } from '../../src/client/run/event-stream.js';
import { mac, runKey } from '../../src/events/keys.js';
import type { RunEvent } from '../../src/events/protocol.js';
import { TestRedis } from '../helpers/redis.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await TestRedis.start();
});
afterAll(async () => {
  await redis?.stop();
});

const KEY = runKey('the-run-secret', 'events');

it("derives the run's keys as the Python side does (HKDF-SHA256; spark-plugin/tests/test_pure.py has the same vector)", () => {
  expect(runKey('ab12', 'events').toString('hex')).toBe('33303ac2a0b3ee1e70963a160264e9a7c5c05a5f04ff1540447fb031778f9d51');
  expect(runKey('ab12', 'result').equals(runKey('ab12', 'events'))).toBe(false);
});

it('delivers valid events and drops malformed, unsigned or forged ones, saying so once', async () => {
  const endpoint = { url: `redis://127.0.0.1:${redis.port}`, stream: 'run:mixed' };
  const conn = new Redis(endpoint.url);
  const add = (e: string, key = KEY) => conn.xadd(endpoint.stream, '*', 'e', e, 'm', mac(key, e));
  await add(JSON.stringify({ type: 'metrics', source: 'worker-0', at: 1, rank: 0, step: 1, metrics: { loss: 0.5 } }));
  await add('{not json');
  await add(JSON.stringify({ type: 'metrics', rank: 0, step: 'two', metrics: { loss: 0.4 } }));
  await add(JSON.stringify({ type: 'error', message: 'no rank' }));
  await add(JSON.stringify({ type: 'trial', stage: 'started', id: '../../etc', executor: 'x' }));
  await add(JSON.stringify({ type: 'unheard-of' }));
  await conn.xadd(endpoint.stream, '*', 'other', 'field');
  const metrics = JSON.stringify({ type: 'metrics', rank: 0, step: 9, metrics: { loss: 0 } });
  await conn.xadd(endpoint.stream, '*', 'e', metrics);
  await add(metrics, runKey('another-run', 'events'));
  await add(JSON.stringify({ type: 'metrics', rank: 1, step: 2, metrics: { loss: null } }));
  conn.disconnect();
  const seen: RunEvent[] = [];
  const told: string[] = [];
  const follower = new EventFollower(endpoint, KEY, (e) => seen.push(e));
  follower.onIgnored = (m) => told.push(m);
  await new Promise((r) => setTimeout(r, 1000));
  await follower.stop();
  expect(seen.map((e) => [e.type, (e as { rank?: number }).rank])).toEqual([
    ['metrics', 0],
    ['metrics', 1],
  ]);
  expect(told).toHaveLength(1);
  expect(told[0]).toMatch(/^ignored an unsigned or malformed event \(\d+-\d+\) on the run's stream/);
});
