#!/usr/bin/env node
/**
 * Builds the sparkring wheel PySpark users install (`make wheel`): the Python package with the Node
 * runtime as package data, so that a node needs Node 20 and nothing from npm at run time.
 *
 *   node scripts/build-wheel.mjs [--python PY] [--out DIR]
 *     PY: the venv that builds it (default .venv/bin/python); DIR: where the wheel goes (default
 *     dist-wheel/; its staging goes beside it, so two builds into different folders do not meet)
 *
 * Inside the wheel, sparkring/_runtime/node_modules holds the npm package (`npm pack` of this
 * checkout's build) and its production dependencies in npm's own layout, esbuild included (it
 * compiles a user's .ts entry), without source maps and type declarations. tfjs-node's binding is
 * the portable one `make setup` built (no RUNPATH): a worker's task puts the TensorFlow of its own
 * Python on LD_LIBRARY_PATH (sparkring/tf_libraries.py), so the wheel carries no TensorFlow; its
 * `tf` extra installs the pinned one. The binaries make it a Linux x86_64 wheel, tagged so.
 *
 * Output: DIR/sparkring-<version>-py3-none-linux_x86_64.whl
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const pyFlag = process.argv.indexOf('--python');
const python = resolve(pyFlag >= 0 ? process.argv[pyFlag + 1] : join(root, '.venv', 'bin', 'python'));
const outFlag = process.argv.indexOf('--out');
const out = resolve(outFlag >= 0 ? process.argv[outFlag + 1] : join(root, 'dist-wheel'));
const staging = outFlag >= 0 ? `${out}.staging` : join(root, '.cache', 'wheel');
const say = (line) => console.log(`sparkring: ${line}`);
const run = (file, args, cwd = root) => execFileSync(file, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });

for (const need of ['dist/src/cli/main.js', 'native/build/tfjs_binding.portable.node']) {
  if (!existsSync(join(root, need))) {
    console.error(`sparkring: ${need} is not built; run \`make setup\` first`);
    process.exit(1);
  }
}

rmSync(staging, { recursive: true, force: true });
const source = join(staging, 'src');
mkdirSync(source, { recursive: true });
for (const f of ['pyproject.toml', 'sparkring']) {
  cpSync(join(root, 'spark-plugin', f), join(source, f), { recursive: true, filter: (p) => !p.includes('__pycache__') });
}

say('packing the npm package and installing its production dependencies (no install scripts)');
const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', staging]));
const runtime = join(source, 'sparkring', '_runtime');
run('npm', [
  'install',
  '--prefix',
  runtime,
  '--omit=dev',
  '--ignore-scripts',
  '--no-package-lock',
  '--no-audit',
  '--no-fund',
  '--prefer-offline',
  join(staging, packed[0].filename),
]);
rmSync(join(runtime, 'package.json'), { force: true });

/** Files Node never reads at run time: source maps, type declarations, bundle reports. */
function prune(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) prune(path);
    else if (/\.(map|d\.ts|d\.mts|d\.cts|html)$/.test(entry.name)) rmSync(path);
  }
}
const modules = join(runtime, 'node_modules');
prune(modules);

// The native parts, as built here for this platform.
const home = join(modules, 'sparkring');
const tfjsNode = join(modules, '@tensorflow', 'tfjs-node');
if (!existsSync(join(tfjsNode, 'package.json'))) {
  console.error('sparkring: npm did not install @tensorflow/tfjs-node beside the package');
  process.exit(1);
}
mkdirSync(join(tfjsNode, 'lib', 'napi-v8'), { recursive: true });
copyFileSync(join(root, 'native', 'build', 'tfjs_binding.portable.node'), join(tfjsNode, 'lib', 'napi-v8', 'tfjs_binding.node'));
mkdirSync(join(home, 'native', 'build'), { recursive: true });
for (const f of ['tfjs_binding.portable.node', 'partition_map.node', 'ring_reduce.node']) {
  const built = join(root, 'native', 'build', f);
  if (existsSync(built)) copyFileSync(built, join(home, 'native', 'build', f));
}

say('building the wheel');
rmSync(out, { recursive: true, force: true });
run(python, ['-m', 'pip', 'wheel', '--quiet', '--disable-pip-version-check', '--no-deps', '-w', out, source]);
const wheel = readdirSync(out).find((f) => f.endsWith('.whl'));
// setuptools calls a package with only package data pure (py3-none-any); its binaries say otherwise.
run(python, ['-m', 'wheel', 'tags', '--remove', '--platform-tag', 'linux_x86_64', join(out, wheel)]);
const tagged = readdirSync(out).find((f) => f.endsWith('.whl'));
const mb = (statSync(join(out, tagged)).size / 2 ** 20).toFixed(0);
say(`built ${join(out, tagged)} (${mb} MB) from ${JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version}`);
