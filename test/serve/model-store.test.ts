/**
 * The server's model store on a real repository and tfjs: versions load and warm before they serve,
 * a version that does not load is said once and never served, a policy change takes effect on the
 * next scan, and a version the policy drops is disposed only when its last request is released.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelStore } from '../../src/serve/model-store.js';
import { DEFAULT_POLICY, registerModel, writePolicy } from '../../src/serve/repository.js';
import { digitsLikeModel } from '../helpers/serve.js';

let dir: string;
let repo: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sparkring-store-'));
  repo = join(dir, 'models');
  const good = await digitsLikeModel(join(dir, 'a', 'model'), 5);
  const broken = await digitsLikeModel(join(dir, 'b', 'model'), 6);
  writeFileSync(join(broken, 'model.json'), '{ not json');
  await registerModel(good, { name: 'm', repo, experiments: dir });
  await registerModel(broken, { name: 'm', repo, experiments: dir });
  await registerModel(good, { name: 'm', repo, experiments: dir });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ModelStore', () => {
  it('serves what loads, says once what does not, and retires a dropped version after its last request', async () => {
    const said: string[] = [];
    const store = new ModelStore(
      repo,
      tf,
      { maxBatchSize: 8, maxQueueDelayMs: 0 },
      { say: (l) => said.push(l), onBatch: () => {} },
    );
    await writePolicy(repo, 'm', { ...DEFAULT_POLICY, keep_latest: 3 });
    await store.start(60_000);
    try {
      await store.scan();
      await store.scan();
      expect(store.inService('m')).toEqual([1, 3]);
      expect(store.ready).toBe(true);
      expect(said.filter((l) => l.includes('version 2 did not load'))).toHaveLength(1);

      const held = store.acquire('m', undefined, undefined);
      expect(held.target.version).toBe(3);
      const y = await held.target.batcher.submit(new Float32Array(64).fill(1), 1);
      expect(y.y).toHaveLength(10);

      await writePolicy(repo, 'm', { ...DEFAULT_POLICY, routing: { kind: 'only', version: 1 }, keep_latest: 1 });
      await store.scan();
      const only = store.acquire('m', undefined, undefined);
      expect(only.target.version).toBe(1);
      only.release();
      expect(store.inService('m')).toEqual([1, 3]); // the newest stays loaded (keep_latest 1)

      await registerModel(join(dir, 'a', 'model'), { name: 'm', repo, experiments: dir });
      await writePolicy(repo, 'm', { ...DEFAULT_POLICY, keep_latest: 1 });
      await store.scan();
      expect(store.inService('m')).toEqual([4]);
      expect(said.some((l) => l.includes('version 3 unloaded'))).toBe(false); // still answering `held`
      held.release();
      expect(said.some((l) => l.includes('version 3 unloaded'))).toBe(true);
      expect(() => store.acquire('m', '3', undefined)).toThrow(/version 3 of 'm' is not loaded/);
      expect(() => store.acquire('m', '9', undefined)).toThrow(/no version '9'/);
    } finally {
      store.stop();
    }
  });
});
