/**
 * An entry loads from any folder, as a user writes it: no package.json, a CommonJS one, a module
 * one; .ts/.mts/.js/.mjs/.cjs; relative imports of its own and packages from its own node_modules.
 * The folders are temp folders outside the checkout. The compiled module is loaded by the built
 * runtime's loader in a plain Node process, as a worker loads it.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RunError } from '../../src/client/errors.js';
import { compileEntry } from '../../src/client/submission/entry-compile.js';
import { ROOT, sparkring, tempDir, waitForNoLeftovers } from '../helpers/spark.js';

/** Writes `files` (path -> text) under a fresh temp folder and returns it. */
function userFolder(files: Record<string, string>): string {
  const dir = tempDir('user');
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

/** A package in the user's own node_modules (CommonJS, as most of npm is). */
const ownPackage = {
  'node_modules/tiny-scale/package.json': JSON.stringify({ name: 'tiny-scale', version: '1.0.0', main: 'index.js' }),
  'node_modules/tiny-scale/index.js': 'exports.scale = (x, k) => x * k;\n',
};

/** Loads the compiled entry with the built runtime's loader and calls it with a stand-in context. */
function runCompiled(compiled: string): unknown {
  const loader = join(ROOT, 'dist', 'src', 'runtime', 'entry.js');
  const script = `
    const { loadEntry } = await import(${JSON.stringify(loader)});
    const train = await loadEntry(${JSON.stringify(compiled)});
    try { process.stdout.write(JSON.stringify({ ok: await train({ rank: 3 }) })); }
    catch (e) { process.stdout.write(JSON.stringify({ stack: e.stack })); }`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }));
}

async function compileAndRun(dir: string, entry: string): Promise<unknown> {
  return runCompiled(await compileEntry(join(dir, entry), join(tempDir('compiled'), 'entry.mjs'), 'installed'));
}

const tsEntry = `import type { TrainContext } from 'sparkring';
import { scale } from 'tiny-scale';
import { offset } from './lib/offset';
export default async function train(ctx: TrainContext): Promise<number> {
  return scale(ctx.rank, 10) + offset;
}
`;

describe('an entry loads from any folder', () => {
  it('.ts with no package.json, a relative import and a package of its own', async () => {
    const dir = userFolder({ 'train.ts': tsEntry, 'lib/offset.ts': 'export const offset: number = 2;\n', ...ownPackage });
    expect(await compileAndRun(dir, 'train.ts')).toEqual({ ok: 32 });
  });

  it('.ts and .mts in a folder whose package.json is CommonJS', async () => {
    const dir = userFolder({
      'package.json': JSON.stringify({ name: 'mine', type: 'commonjs' }),
      'train.ts': tsEntry,
      'train.mts': tsEntry,
      'lib/offset.ts': 'export const offset: number = 2;\n',
      ...ownPackage,
    });
    expect(await compileAndRun(dir, 'train.ts')).toEqual({ ok: 32 });
    expect(await compileAndRun(dir, 'train.mts')).toEqual({ ok: 32 });
  });

  it('.js and .cjs written as CommonJS (module.exports, require)', async () => {
    const cjs =
      "const { scale } = require('tiny-scale');\nconst { offset } = require('./offset.js');\nmodule.exports = async function train(ctx) { return scale(ctx.rank, 10) + offset; };\n";
    const dir = userFolder({
      'package.json': JSON.stringify({ name: 'mine' }),
      'train.js': cjs,
      'train.cjs': cjs,
      'offset.js': 'exports.offset = 2;\n',
      ...ownPackage,
    });
    expect(await compileAndRun(dir, 'train.js')).toEqual({ ok: 32 });
    expect(await compileAndRun(dir, 'train.cjs')).toEqual({ ok: 32 });
  });

  it('.js and .mjs in a folder whose package.json is a module', async () => {
    const esm =
      "import { scale } from 'tiny-scale';\nimport { offset } from './offset.js';\nexport default async (ctx) => scale(ctx.rank, 10) + offset;\n";
    const dir = userFolder({
      'package.json': JSON.stringify({ name: 'mine', type: 'module' }),
      'train.js': esm,
      'train.mjs': esm,
      'offset.js': 'export const offset = 2;\n',
      ...ownPackage,
    });
    expect(await compileAndRun(dir, 'train.js')).toEqual({ ok: 32 });
    expect(await compileAndRun(dir, 'train.mjs')).toEqual({ ok: 32 });
  });

  it("imports of @tensorflow/tfjs get sparkring's own tfjs, from a folder without it", async () => {
    const dir = userFolder({
      'train.ts': "import * as tf from '@tensorflow/tfjs';\nexport default async () => tf.tensor1d([1, 2]).sum().arraySync();\n",
    });
    expect(await compileAndRun(dir, 'train.ts')).toEqual({ ok: 3 });
  });

  it("a throw in the user's code names the user's file:line", async () => {
    const dir = userFolder({
      'train.ts': "import { check } from './check';\nexport default async function train() {\n  check();\n}\n",
      'check.ts': 'export function check(): void {\n  const why: string = "bad input";\n  throw new Error(why);\n}\n',
    });
    const { stack } = (await compileAndRun(dir, 'train.ts')) as { stack: string };
    expect(stack).toContain(`${join(dir, 'check.ts')}:3:9`);
    expect(stack).toContain(`${join(dir, 'train.ts')}:3:3`);
  });

  it('an entry that does not compile, or has no default export, is an input error naming file:line', async () => {
    const dir = userFolder({
      'broken.ts': 'export default function train() {\n  return 1 +;\n}\n',
      'none.ts': 'export const x = 1;\n',
    });
    const broken = await compileEntry(join(dir, 'broken.ts'), join(tempDir('compiled'), 'entry.mjs'), 'installed').catch(
      (e: unknown) => e,
    );
    expect(broken).toBeInstanceOf(RunError);
    expect((broken as RunError).kind).toBe('input');
    expect((broken as Error).message).toMatch(/^entry (\/.*)broken\.ts does not compile: \1broken\.ts:2:\d+: Unexpected ";"$/);
    const none = await compileEntry(join(dir, 'none.ts'), join(tempDir('compiled'), 'entry.mjs'), 'installed').catch(
      (e: unknown) => e,
    );
    expect((none as Error).message).toMatch(/^entry .*none\.ts has no default export/);
  });
});

describe('a user runs the CLI in their own folder (CommonJS package.json, real Spark)', () => {
  afterEach(async () => {
    expect(await waitForNoLeftovers()).toEqual([]);
  });

  const files = {
    'package.json': JSON.stringify({ name: 'my-training', type: 'commonjs' }),
    'lib/offset.ts': 'export const offset: number = 2;\n',
    ...ownPackage,
    'train.ts': `import type { TrainContext } from 'sparkring';
import { scale } from 'tiny-scale';
import { offset } from './lib/offset';
export default async function train(ctx: TrainContext) {
  const [sum] = await ctx.allreduce(new Float32Array([scale(ctx.rank + 1, 10)]), 'sum');
  return { sum: (sum as number) + offset, lr: ctx.hparams.lr ?? null };
}
`,
  };

  it('allreduce train.ts --workers 2 trains from the relative path', async () => {
    const dir = userFolder(files);
    const r = await sparkring(['allreduce', 'train.ts', '--workers', '2', '--experiments', 'exp', '--json'], {}, dir);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).result).toEqual({ sum: 32, lr: null });
  }, 240_000);

  it('launch train.ts runs its trials from the same folder', async () => {
    const dir = userFolder(files);
    const r = await sparkring(
      ['launch', 'train.ts', '--grid', 'lr=0.5', '--metric', 'sum', '--executors', '1', '--experiments', 'exp', '--json'],
      {},
      dir,
    );
    expect(r.exitCode, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { trials: Array<{ status: string; metric: number }> };
    expect(out.trials.map((t) => [t.status, t.metric])).toEqual([['done', 12]]);
  }, 240_000);
});
