/** The driver's result reaches the client from its file, or from its last event when the driver ran elsewhere. */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { readDriverResult } from '../../src/client/jobs/driver-result.js';
import { mac, runKey } from '../../src/events/keys.js';
import { TestRedis } from '../helpers/redis.js';
import { PYTHON, tempDir } from '../helpers/spark.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await TestRedis.start();
});
afterAll(async () => {
  await redis?.stop();
});

const SECRET = 'the-run-secret';
/** Any result with an `ok`: the file and stream paths are under test here, each kind's contract in jobs/. */
const ANY = z.looseObject({ ok: z.boolean() });

/** What the Python driver's signed_result puts on its last event (spark-plugin/sparkring/driver/driver_events.py). */
function signedByDriver(result: unknown, secret = SECRET): { resultJson: string; proof: string } {
  const script =
    'import json, sys; from sparkring.driver.driver_events import signed_result; print(json.dumps(signed_result(sys.argv[1], json.loads(sys.argv[2]))))';
  return JSON.parse(execFileSync(PYTHON, ['-c', script, secret, JSON.stringify(result)], { encoding: 'utf8' }));
}

/** A stream entry as the driver adds it: the event and its MAC under the run's events key. */
function event(e: Record<string, unknown>, secret = SECRET): string[] {
  const text = JSON.stringify({ source: 'driver', at: Date.now(), ...e });
  return ['e', text, 'm', mac(runKey(secret, 'events'), text)];
}

describe('readDriverResult', () => {
  it('reads the file the driver wrote on this machine', async () => {
    const path = join(tempDir('result'), 'result.json');
    writeFileSync(path, JSON.stringify({ ok: true, from: 'file' }));
    const endpoint = { url: `redis://127.0.0.1:${redis.port}`, stream: 'run:file' };
    expect(await readDriverResult(ANY, path, endpoint, SECRET)).toEqual({ ok: true, from: 'file' });
  });

  it('without the file, takes the result from the driver\'s "done" event on the run\'s stream, signed by the driver', async () => {
    const endpoint = { url: `redis://127.0.0.1:${redis.port}`, stream: 'run:remote' };
    const conn = new Redis(endpoint.url);
    await conn.xadd(endpoint.stream, '*', ...event({ type: 'driver', stage: 'started', appId: 'app-1' }));
    await conn.xadd(
      endpoint.stream,
      '*',
      ...event({ type: 'driver', stage: 'done', ok: true, ...signedByDriver({ ok: true, dir: '/x' }) }),
    );
    await conn.xadd(endpoint.stream, '*', ...event({ type: 'log', rank: 0, line: 'late line' }));
    conn.disconnect();
    const missing = join(tempDir('result'), 'never-written.json');
    expect(await readDriverResult(ANY, missing, endpoint, SECRET)).toEqual({ ok: true, dir: '/x' });
    expect(await readDriverResult(ANY, missing, { ...endpoint, stream: 'run:empty' }, SECRET)).toBeUndefined();
  });

  it('ignores forged and malformed results: no proof, a wrong proof, not JSON', async () => {
    const endpoint = { url: `redis://127.0.0.1:${redis.port}`, stream: 'run:forged' };
    const conn = new Redis(endpoint.url);
    await conn.xadd(
      endpoint.stream,
      '*',
      ...event({ type: 'driver', stage: 'done', ok: true, ...signedByDriver({ ok: true, dir: '/real' }) }),
    );
    await conn.xadd(
      endpoint.stream,
      '*',
      ...event({ type: 'driver', stage: 'done', ok: true, result: { ok: true, dir: '/etc' } }),
    );
    const wrong = signedByDriver({ ok: true, dir: '/etc' }, 'not-the-secret');
    await conn.xadd(endpoint.stream, '*', ...event({ type: 'driver', stage: 'done', ok: true, ...wrong }));
    await conn.xadd(endpoint.stream, '*', 'e', '{"type": "driver", "stage": "done", "resultJson": ');
    await conn.xadd(
      endpoint.stream,
      '*',
      'e',
      JSON.stringify({ type: 'driver', stage: 'done', resultJson: 'nope', proof: 'zz' }),
    );
    conn.disconnect();
    const missing = join(tempDir('result'), 'never-written.json');
    expect(await readDriverResult(ANY, missing, endpoint, SECRET)).toEqual({ ok: true, dir: '/real' });
  });

  it('finds the result under any number of entries after it, and takes no unsigned entry for it', async () => {
    const endpoint = { url: `redis://127.0.0.1:${redis.port}`, stream: 'run:buried' };
    const conn = new Redis(endpoint.url);
    await conn.xadd(
      endpoint.stream,
      '*',
      ...event({ type: 'driver', stage: 'done', ok: true, ...signedByDriver({ ok: true, dir: '/real' }) }),
    );
    // A neighbour on a shared Redis: 2,500 junk entries, then the real result's fields without the
    // entry's signature, and an entry signed with another run's key.
    const junk = conn.pipeline();
    for (let i = 0; i < 2500; i++) junk.xadd(endpoint.stream, '*', 'e', `junk ${i}`);
    await junk.exec();
    const real = signedByDriver({ ok: true, dir: '/etc' });
    await conn.xadd(endpoint.stream, '*', 'e', JSON.stringify({ type: 'driver', stage: 'done', ok: true, ...real }));
    await conn.xadd(endpoint.stream, '*', ...event({ type: 'driver', stage: 'done', ok: true, ...real }, 'another-run'));
    conn.disconnect();
    const missing = join(tempDir('result'), 'never-written.json');
    expect(await readDriverResult(ANY, missing, endpoint, SECRET)).toEqual({ ok: true, dir: '/real' });
  });

  it("refuses a result that breaks its kind's contract, naming the field", async () => {
    const path = join(tempDir('result'), 'result.json');
    writeFileSync(path, JSON.stringify({ ok: true, appId: 'app-1' }));
    const endpoint = { url: `redis://127.0.0.1:${redis.port}`, stream: 'run:contract' };
    const schema = z.discriminatedUnion('ok', [
      z.object({ ok: z.literal(true), appId: z.string(), rows: z.number() }),
      z.object({ ok: z.literal(false), appId: z.string() }),
    ]);
    await expect(readDriverResult(schema, path, endpoint, SECRET)).rejects.toThrow(/breaks its contract.*rows/);
  });
});
