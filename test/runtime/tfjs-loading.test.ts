/**
 * Which TensorFlow.js a worker gets: a native backend installed on the node (beside the runtime,
 * in $SPARKRING_NODE_MODULES or npm's global folder) before pure-JS tfjs. Fake native packages here:
 * tfjs-node(-gpu) cannot be installed on this machine.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadTf, loadTfSync } from '../../src/runtime/tfjs.js';
import { tempDir } from '../helpers/spark.js';

function fakePackage(root: string, name: string, body: string): void {
  const dir = join(root, '@tensorflow', name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `@tensorflow/${name}`, main: 'index.js' }));
  writeFileSync(join(dir, 'index.js'), body);
}

afterEach(() => {
  delete process.env.SPARKRING_NODE_MODULES;
});

describe('loading TensorFlow.js in a worker', () => {
  it('without a native backend: pure-JS tfjs on the cpu backend', async () => {
    process.env.SPARKRING_NODE_MODULES = tempDir('no-natives');
    expect(loadTfSync(['0']).flavour).toBe('tfjs-cpu');
    const { tf, flavour } = await loadTf([]);
    expect(flavour).toBe('tfjs-cpu');
    expect(tf.getBackend()).toBe('cpu');
  });

  it('finds tfjs-node and tfjs-node-gpu installed on the node, the GPU one only for a task with GPUs', async () => {
    const modules = join(tempDir('natives'), 'node_modules');
    fakePackage(modules, 'tfjs-node', "module.exports = { which: 'node' };");
    fakePackage(modules, 'tfjs-node-gpu', "module.exports = { which: 'gpu' };");
    process.env.SPARKRING_NODE_MODULES = modules;
    expect(loadTfSync([]).flavour).toBe('tfjs-node');
    const gpu = await loadTf(['1']);
    expect(gpu.flavour).toBe('tfjs-node-gpu');
    expect((gpu.tf as unknown as { which: string }).which).toBe('gpu');
  });

  it('a native backend that is installed but fails to load is an error, not a quiet fallback to the CPU', () => {
    const modules = join(tempDir('broken-native'), 'node_modules');
    fakePackage(modules, 'tfjs-node-gpu', "throw new Error('libcudart.so.11.0: cannot open shared object file');");
    process.env.SPARKRING_NODE_MODULES = modules;
    expect(() => loadTfSync(['0'])).toThrow(/libcudart\.so\.11\.0/);
  });
});
