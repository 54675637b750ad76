/** The driver's result reaches the client from its file, or from its last event when the driver ran elsewhere. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDriverResult } from '../../src/client/driver-result.js';
import { TestRedis } from '../helpers/redis.js';
import { tempDir } from '../helpers/spark.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await TestRedis.start();
});
afterAll(async () => {
  await redis?.stop();
});

const event = (e: Record<string, unknown>) => ['e', JSON.stringify({ source: 'driver', at: Date.now(), ...e })];

describe('readDriverResult', () => {
  it('reads the file the driver wrote on this machine', async () => {
    const path = join(tempDir('result'), 'result.json');
    writeFileSync(path, JSON.stringify({ ok: true, from: 'file' }));
    const endpoint = { url: `redis://127.0.0.1:${redis.port}`, stream: 'run:file' };
    expect(await readDriverResult(path, endpoint)).toEqual({ ok: true, from: 'file' });
  });

  it('without the file, takes the result from the driver\'s "done" event on the run\'s stream', async () => {
    const endpoint = { url: `redis://127.0.0.1:${redis.port}`, stream: 'run:remote' };
    const conn = new Redis(endpoint.url);
    await conn.xadd(endpoint.stream, '*', ...event({ type: 'driver', stage: 'started', appId: 'app-1' }));
    await conn.xadd(endpoint.stream, '*', ...event({ type: 'driver', stage: 'done', ok: true, result: { ok: true, dir: '/x' } }));
    await conn.xadd(endpoint.stream, '*', ...event({ type: 'log', rank: 0, line: 'late line' }));
    conn.disconnect();
    const missing = join(tempDir('result'), 'never-written.json');
    expect(await readDriverResult(missing, endpoint)).toEqual({ ok: true, dir: '/x' });
    expect(await readDriverResult(missing, { ...endpoint, stream: 'run:empty' })).toBeUndefined();
  });
});
