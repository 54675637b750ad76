/** The runtime bundle shipped to executors (src/client/submission/bundle.ts), unpacked and run outside this checkout. */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunError } from '../../src/client/errors.js';
import { buildRuntimeBundle } from '../../src/client/submission/bundle.js';
import { sparkPaths } from '../../src/client/submission/paths.js';
import { entry, tempDir } from '../helpers/spark.js';

function unpack(archive: string): string {
  const dir = tempDir('unpacked');
  execFileSync('tar', ['-xzf', archive.slice(0, archive.indexOf('#')), '-C', dir]);
  return dir;
}

describe('runtime bundle', () => {
  it('holds the runtime, one tfjs and the entry with its own imports, all loadable from anywhere', async () => {
    const b = await buildRuntimeBundle(entry('linear.ts'), sparkPaths(), tempDir('bundle'));
    expect(b.archive).toMatch(/sparkring-runtime\.tgz#sparkring-runtime$/);
    expect(b).toMatchObject({
      name: 'sparkring-runtime',
      node: 'node',
      runtimeMain: 'runtime/runtime/main.js',
      agentMain: 'runtime/hpo/agent.js',
      trialMain: 'runtime/hpo/trial.js',
      entry: 'entry/linear.mjs',
    });
    const dir = unpack(b.archive);
    for (const f of [b.runtimeMain, b.agentMain, b.trialMain, b.entry, 'proto/ring.proto', 'native/build/partition_map.node'])
      expect(existsSync(join(dir, f)), f).toBe(true);
    // linear.ts imports ./linear-model.ts, which is folded into the one module; the probe runs
    // from the unpacked bundle with no sparkring checkout above it.
    const probe = `
      import { createRequire } from 'node:module';
      import * as tf from '@tensorflow/tfjs';
      import * as core from '@tensorflow/tfjs-core';
      const entry = await import(${JSON.stringify(join(dir, b.entry))});
      const required = createRequire(import.meta.url)('@tensorflow/tfjs');
      const { mapRange } = createRequire(import.meta.url)('./native/build/partition_map.node');
      console.log(JSON.stringify({
        mapped: Array.from(mapRange(${JSON.stringify(join(dir, 'proto', 'ring.proto'))}, 0, 6)),
        train: typeof entry.default,
        one: tf.tensor === required.tensor && core.tensor === tf.tensor,
        version: tf.version.tfjs,
      }));`;
    writeFileSync(join(dir, 'probe.mjs'), probe);
    const out = JSON.parse(execFileSync(process.execPath, [join(dir, 'probe.mjs')], { cwd: '/', encoding: 'utf8' }));
    const proto = readFileSync(join(dir, 'proto', 'ring.proto')).subarray(0, 6);
    expect(out).toEqual({ mapped: Array.from(proto), train: 'function', one: true, version: expect.stringMatching(/^4\./) });
  }, 60_000);

  it('ships the Node binary when asked', async () => {
    const b = await buildRuntimeBundle(entry('quadratic.ts'), sparkPaths(), tempDir('bundle'), { shipNode: true });
    expect(b.node).toBe('bin/node');
    const dir = unpack(b.archive);
    expect(execFileSync(join(dir, 'bin', 'node'), ['--version'], { encoding: 'utf8' }).trim()).toBe(process.version);
  }, 60_000);

  it('an entry that does not compile is refused before anything is submitted, naming file and line', async () => {
    const src = tempDir('broken');
    writeFileSync(join(src, 'train.ts'), "import { x } from './lib/missing.js';\nexport default () => x;\n");
    const err = await buildRuntimeBundle(join(src, 'train.ts'), sparkPaths(), tempDir('bundle')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunError);
    expect((err as RunError).kind).toBe('input');
    expect((err as Error).message).toMatch(
      /^entry .*train\.ts does not compile: .*train\.ts:1:\d+: Could not resolve "\.\/lib\/missing\.js"$/,
    );
  }, 60_000);
});
