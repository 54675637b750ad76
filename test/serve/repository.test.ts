/** The model repository: versions numbered whole and in order, even when registered at once; policies checked. */
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_POLICY,
  listModels,
  ModelRepoError,
  readPolicy,
  registerModel,
  versionsOf,
  writePolicy,
} from '../../src/serve/repository.js';
import { digitsLikeModel } from '../helpers/serve.js';

let dir: string;
let model: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sparkring-repo-'));
  model = await digitsLikeModel(join(dir, 'run', 'model'), 3);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the model repository', () => {
  it('numbers versions 1, 2, 3... even when registered at the same time, and leaves no staging folder', async () => {
    const repo = join(dir, 'repo-a');
    const got = await Promise.all(
      Array.from({ length: 6 }, () => registerModel(model, { name: 'digits', repo, experiments: dir })),
    );
    expect(got.map((g) => g.version).sort()).toEqual([1, 2, 3, 4, 5, 6]);
    expect(versionsOf(repo, 'digits')).toEqual([1, 2, 3, 4, 5, 6]);
    expect(readdirSync(join(repo, 'digits')).filter((d) => d.startsWith('.'))).toEqual([]);
    const [listed] = listModels(repo);
    expect(listed?.versions[0]).toMatchObject({ version: 1, run: null, metrics: {} });
  });

  it('refuses a bad name, a folder with no model, and a policy naming a version that is not there', async () => {
    const repo = join(dir, 'repo-b');
    await expect(registerModel(model, { name: '../x', repo, experiments: dir })).rejects.toThrow(/model name "..\/x"/);
    await expect(registerModel(join(dir, 'nothing'), { name: 'm', repo, experiments: dir })).rejects.toBeInstanceOf(
      ModelRepoError,
    );
    await registerModel(model, { name: 'm', repo, experiments: dir });
    await expect(writePolicy(repo, 'm', { ...DEFAULT_POLICY, routing: { kind: 'only', version: 7 } })).rejects.toThrow(
      'model m has no version 7 (it has 1)',
    );
    expect(readPolicy(repo, 'm')).toEqual(DEFAULT_POLICY);
    expect(existsSync(join(repo, 'm', 'policy.json'))).toBe(false);
  });
});
