/**
 * The runtime bundle shipped to a cluster whose nodes lack this checkout (Livy, YARN): one .tgz that
 * Spark unpacks next to every executor (`--archives` / a Livy batch's `archives`). esbuild folds the
 * runtime, the search agent, the trial process and their dependencies into a few files, TensorFlow.js
 * into one package, and the user's entry (with its own imports) into one ES module, so the bundle is
 * a few MB instead of node_modules' hundreds and a .ts entry needs no loader on the executors.
 *
 * Layout, relative to the unpacked archive (the spec names these paths; the plugin resolves them):
 *   runtime/runtime/main.js, runtime/hpo/agent.js, runtime/hpo/trial.js  the Node side
 *   proto/ring.proto                                                         read by the ring at start
 *   native/build/partition_map.node                                          when built here (same platform and Node)
 *   native/build/ring_reduce.node                                            likewise
 *   node_modules/@tensorflow/tfjs(-core)                                      one tfjs for runtime and entry
 *   node_modules/@tensorflow/tfjs-node                                         its JS in one file, and the binding
 *                                                                            built here (scripts/build-tf-binding.mjs),
 *                                                                            which links the executors' TensorFlow
 *   node_modules/@tensorflow/tfjs-backend-wasm                                 its JS and .wasm files
 *   entry/<name>.mjs                                                          the user's entry
 *   bin/node                                                                 with shipNode only
 */

import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { build } from 'esbuild';
import { execa } from 'execa';
import { BINDING_IN_PACKAGE, TF_BINDING_PORTABLE } from '../../runtime/backend.js';
import { MAP_ADDON, REDUCE_ADDON, SEAL_ADDON } from '../../util/addons.js';
import { RunError } from '../errors.js';
import { handOver, removeWhenGone } from '../run/janitor.js';
import { compiledEntryName, compileEntry, REQUIRE_SHIM } from './entry-compile.js';
import { packageRoot, type SparkPaths } from './paths.js';
import { isLoopback, masterHost } from './reachable.js';

/** The directory name Spark unpacks the archive to (the archive URI's #fragment). */
export const BUNDLE_NAME = 'sparkring-runtime';

export interface RuntimeBundle {
  /** The .tgz, with its #fragment: what --archives and Livy's archives take. */
  archive: string;
  name: string;
  /** Paths inside the unpacked bundle; a bare `node` is looked up on the executors' PATH. */
  node: string;
  runtimeMain: string;
  agentMain: string;
  trialMain: string;
  entry: string;
}

const tfExternal = ['@tensorflow/*'];

async function buildRuntime(dir: string, paths: SparkPaths): Promise<void> {
  const outbase = join(packageRoot(), 'dist', 'src');
  await build({
    entryPoints: [paths.runtimeMain, paths.agentMain, paths.trialMain],
    outbase,
    outdir: join(dir, 'runtime'),
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: tfExternal,
    banner: { js: REQUIRE_SHIM },
    logLevel: 'silent',
  });
  await mkdir(join(dir, 'proto'), { recursive: true });
  await copyFile(join(packageRoot(), 'proto', 'ring.proto'), join(dir, 'proto', 'ring.proto'));
  // The small addons, when this machine built them: the executors are assumed to share its platform,
  // as with --ship-node. Without them the workers read their partitions and reduce in JavaScript.
  for (const relative of [MAP_ADDON, REDUCE_ADDON, SEAL_ADDON]) {
    const addon = join(packageRoot(), relative);
    if (!existsSync(addon)) continue;
    await mkdir(dirname(join(dir, relative)), { recursive: true });
    await copyFile(addon, join(dir, relative));
  }
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: BUNDLE_NAME, private: true, type: 'module' }));
}

/**
 * TensorFlow.js as one CommonJS file with an ES module face whose named exports are that file's (so
 * `import *`, `import()` and `require` all get one instance), and tfjs-core as an alias of it.
 */
async function buildTfjs(dir: string): Promise<void> {
  const tfjs = join(dir, 'node_modules', '@tensorflow', 'tfjs');
  const core = join(dir, 'node_modules', '@tensorflow', 'tfjs-core');
  await build({
    stdin: { contents: "export * from '@tensorflow/tfjs';", resolveDir: packageRoot(), loader: 'js' },
    outfile: join(tfjs, 'index.cjs'),
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    logLevel: 'silent',
  });
  // A CommonJS `export *` hides its names from Node's ESM loader, so they are listed here.
  const { stdout } = await execa(process.execPath, [
    '-e',
    `process.stdout.write(JSON.stringify(Object.keys(require(${JSON.stringify(join(tfjs, 'index.cjs'))}))))`,
  ]);
  const names = (JSON.parse(stdout) as string[]).filter((n) => n !== 'default' && n !== '__esModule');
  await writeFile(
    join(tfjs, 'index.mjs'),
    [
      "import tf from './index.cjs';",
      'export default tf;',
      ...names.map((n, i) => `const _${i} = tf[${JSON.stringify(n)}];`),
      `export { ${names.map((n, i) => `_${i} as ${n}`).join(', ')} };`,
    ].join('\n'),
  );
  const face = { import: './index.mjs', require: './index.cjs' };
  await writeFile(
    join(tfjs, 'package.json'),
    JSON.stringify({ name: '@tensorflow/tfjs', main: 'index.cjs', exports: { '.': face } }),
  );
  await mkdir(core, { recursive: true });
  await writeFile(join(core, 'index.cjs'), "module.exports = require('@tensorflow/tfjs');\n");
  await writeFile(join(core, 'index.mjs'), "export * from '@tensorflow/tfjs';\nexport { default } from '@tensorflow/tfjs';\n");
  await writeFile(
    join(core, 'package.json'),
    JSON.stringify({ name: '@tensorflow/tfjs-core', main: 'index.cjs', exports: { '.': face } }),
  );
}

/**
 * tfjs-node's JS as one CommonJS file over the bundle's tfjs, and the binding this machine built
 * against PyPI's TensorFlow. It links libtensorflow_cc.so.2 by soname: on the executors, the task
 * puts their Python's TensorFlow on LD_LIBRARY_PATH (spark-plugin/sparkring/executor/tf_libraries.py). Same
 * platform and Node-API assumption as the partition addon. Without a built binding, nothing is added
 * and the workers say they train on pure-JS tfjs.
 */
async function buildTfjsNode(dir: string): Promise<void> {
  const source = join(packageRoot(), 'node_modules', '@tensorflow', 'tfjs-node');
  const binding = join(packageRoot(), TF_BINDING_PORTABLE);
  if (!existsSync(binding) || !existsSync(join(source, 'package.json'))) return;
  const out = join(dir, 'node_modules', '@tensorflow', 'tfjs-node');
  await build({
    entryPoints: [join(source, 'dist', 'index.js')],
    outfile: join(out, 'dist', 'index.js'),
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    external: ['@tensorflow/tfjs', '@tensorflow/tfjs-core'],
    plugins: [
      {
        // node-pre-gyp only finds the binding's path (lib/napi-v8, as its package.json says).
        name: 'binding-path',
        setup(b) {
          b.onResolve({ filter: /^@mapbox\/node-pre-gyp$/ }, () => ({ path: 'node-pre-gyp', namespace: 'sparkring' }));
          b.onLoad({ filter: /.*/, namespace: 'sparkring' }, () => ({
            contents: `const { dirname, join } = require('node:path');
module.exports = { find: (pkg) => join(dirname(pkg), ${JSON.stringify(BINDING_IN_PACKAGE)}) };`,
            loader: 'js',
          }));
        },
      },
    ],
    logLevel: 'silent',
  });
  const pkg = JSON.parse(await readFile(join(source, 'package.json'), 'utf8')) as { version: string; binary: unknown };
  await writeFile(
    join(out, 'package.json'),
    JSON.stringify({ name: '@tensorflow/tfjs-node', version: pkg.version, main: 'dist/index.js', binary: pkg.binary }),
  );
  await mkdir(dirname(join(out, BINDING_IN_PACKAGE)), { recursive: true });
  await copyFile(binding, join(out, BINDING_IN_PACKAGE));
}

/** The wasm backend (--tf-backend wasm): its Node build over the bundle's tfjs, and its .wasm files. */
async function buildTfjsWasm(dir: string): Promise<void> {
  const source = dirname(createRequire(join(packageRoot(), 'package.json')).resolve('@tensorflow/tfjs-backend-wasm'));
  const out = join(dir, 'node_modules', '@tensorflow', 'tfjs-backend-wasm');
  await build({
    entryPoints: [join(source, 'tf-backend-wasm.node.js')],
    outfile: join(out, 'dist', 'index.js'),
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    external: ['@tensorflow/tfjs-core'],
    logLevel: 'silent',
  });
  for (const f of await readdir(source)) if (f.endsWith('.wasm')) await copyFile(join(source, f), join(out, 'dist', f));
  await writeFile(join(out, 'package.json'), JSON.stringify({ name: '@tensorflow/tfjs-backend-wasm', main: 'dist/index.js' }));
}

async function buildEntry(dir: string, entry: string): Promise<string> {
  const relative = join('entry', compiledEntryName(entry));
  await compileEntry(entry, join(dir, relative), 'bare');
  return relative;
}

/** Builds the bundle for `entry` under `staging` and packs it; about a second, plus the Node binary. */
export async function buildRuntimeBundle(
  entry: string,
  paths: SparkPaths,
  staging: string,
  options: { shipNode?: boolean; name?: string } = {},
): Promise<RuntimeBundle> {
  const name = options.name ?? BUNDLE_NAME;
  const dir = join(staging, name);
  await mkdir(dir, { recursive: true });
  await buildRuntime(dir, paths);
  await buildTfjs(dir);
  await buildTfjsNode(dir);
  await buildTfjsWasm(dir);
  const entryPath = await buildEntry(dir, entry);
  if (options.shipNode) {
    await mkdir(join(dir, 'bin'), { recursive: true });
    await copyFile(process.execPath, join(dir, 'bin', 'node'));
  }
  const archive = join(staging, `${name}.tgz`);
  await execa('tar', ['-czf', archive, '-C', dir, '.']);
  const inside = (p: string): string => join('runtime', p.slice(join(packageRoot(), 'dist', 'src').length + 1));
  return {
    archive: `${archive}#${name}`,
    name,
    node: options.shipNode ? 'bin/node' : 'node',
    runtimeMain: inside(paths.runtimeMain),
    agentMain: inside(paths.agentMain),
    trialMain: inside(paths.trialMain),
    entry: entryPath,
  };
}

/**
 * The bundle of a run when it ships one: when asked (`ship`), or by default whenever the executors
 * may be on other machines (Livy, YARN, a master that is not on this machine's loopback). Otherwise
 * (a local master) the executors run this checkout's files where they are.
 */
export async function shipRuntime(
  o: { entry: string; ship?: boolean; shipNode?: boolean; livy?: string; master?: string },
  paths: SparkPaths,
  staging: string,
  say: (line: string) => void,
  name = BUNDLE_NAME,
): Promise<RuntimeBundle | undefined> {
  if (!(o.ship ?? executorsMayBeElsewhere(o))) return undefined;
  const bundle = await buildRuntimeBundle(o.entry, paths, staging, { shipNode: o.shipNode, name });
  const { size } = await stat(bundle.archive.slice(0, bundle.archive.indexOf('#')));
  const archive = bundle.archive.slice(0, bundle.archive.indexOf('#'));
  say(
    `sparkring: shipping the runtime and ${basename(o.entry)} to the executors (${(size / 2 ** 20).toFixed(1)} MiB, ${archive})`,
  );
  return bundle;
}

function executorsMayBeElsewhere(o: { livy?: string; master?: string }): boolean {
  if (o.livy || o.master?.startsWith('yarn')) return true;
  const host = masterHost(o.master);
  return host !== undefined && !isLoopback(host);
}

export interface Staging {
  dir: string;
  remove(): Promise<void>;
  /** Leaves the directory to its janitor: removed once the processes still using it end. */
  handOver(): void;
}

/**
 * The run's own directory for what the cluster reads (spec, plugin zip, archive), under `stage` or
 * $TMPDIR. `remove()` takes it away; a janitor takes it away if this process dies first (SIGKILL).
 */
export async function stagingDir(stage: string | undefined, prefix: string): Promise<Staging> {
  const parent = resolve(stage ?? tmpdir());
  let dir: string;
  try {
    dir = await mkdtemp(join(parent, prefix));
  } catch (err) {
    throw new RunError('input', `--stage ${parent}: cannot create the run's directory there (${(err as Error).message})`);
  }
  const janitor = removeWhenGone(dir);
  return {
    dir,
    async remove() {
      await rm(dir, { recursive: true, force: true });
      janitor.stop();
    },
    handOver() {
      handOver(dir);
    },
  };
}

/** The entry path the spec gives the workers: inside the shipped bundle, or compiled into `staging`. */
export async function workerEntry(entry: string, bundle: RuntimeBundle | undefined, staging: string): Promise<string> {
  return bundle?.entry ?? (await compileEntry(entry, join(staging, 'entry', compiledEntryName(entry)), 'installed'));
}
