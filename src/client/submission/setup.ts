/**
 * `sparkring setup`: sparkring's private environment, for an installed package (npm pack, npm
 * install -g) where no `make setup` ran. It makes a venv in the user cache (paths.ts privateVenv)
 * with the plugin and its pinned dependencies (pyspark, pyarrow, TensorFlow from PyPI), then builds
 * the two native pieces npm 11 does not build for a global package (its install scripts are skipped):
 * tfjs-node's binding against that TensorFlow and the partition-mapping addon, and the class-data
 * archives of the embedded Spark's JVMs (jvm-archives.ts). Each step is skipped
 * when its result is there already, so a second setup takes a second. The first run of a command that
 * needs Spark makes it too.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { RunError } from '../errors.js';
import { makeJvmArchives } from './jvm-archives.js';
import { findSparkSubmit, isCheckout, packageRoot, privateVenv, SetupError } from './paths.js';

/** The file a finished install leaves in the venv: what it installed, so a new sparkring installs again. */
const STAMP = '.sparkring-installed';

function installedFor(): string {
  const root = packageRoot();
  const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
  return `${version}\n${readFileSync(join(root, 'spark-plugin', 'constraints.txt'), 'utf8')}`;
}

/** Whether the private environment is made (the venv with this sparkring's plugin in it). */
export function isSetUp(venv = privateVenv()): boolean {
  const stamp = join(venv, STAMP);
  return existsSync(join(venv, 'bin', 'python')) && existsSync(stamp) && readFileSync(stamp, 'utf8') === installedFor();
}

/** One step's command, its output relayed line by line; a failure names the step and the fix. */
async function step(what: string, file: string, args: string[], say: (line: string) => void, cwd?: string): Promise<void> {
  const child = execa(file, args, { reject: false, all: true, stdin: 'ignore', cwd });
  for await (const line of child.iterable({ from: 'all' })) if (line.trim()) say(`  ${line.replace(/^sparkring: /, '')}`);
  const r = await child;
  if (r.exitCode !== 0) {
    throw new RunError(
      'setup',
      `${what} failed (${file} exited with ${r.exitCode}); its output is above. Fix that and run \`sparkring setup\` again`,
    );
  }
}

/**
 * tfjs-node's JavaScript and binding sources, which npm drops from an install when the package's own
 * install script (a libtensorflow download) fails: fetched again without that script, beside the
 * package's tfjs so that there is one tfjs-core. npm is there: this is an npm-installed sparkring.
 */
async function restoreTfjsNode(root: string, say: (line: string) => void): Promise<void> {
  if (existsSync(join(root, 'node_modules', '@tensorflow', 'tfjs-node', 'binding', 'tfjs_backend.cc'))) return;
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { optionalDependencies?: Record<string, string> };
  const version = pkg.optionalDependencies?.['@tensorflow/tfjs-node'];
  if (version === undefined) return;
  say(`fetching @tensorflow/tfjs-node@${version}'s sources without its download script (npm dropped it when that script failed)`);
  const npm = join(dirname(process.execPath), 'npm');
  await step(
    'fetching tfjs-node',
    existsSync(npm) ? npm : 'npm',
    [
      'install',
      '--omit=dev',
      '--ignore-scripts',
      '--no-save',
      '--no-package-lock',
      '--no-audit',
      '--no-fund',
      `@tensorflow/tfjs-node@${version}`,
    ],
    say,
    root,
  );
}

export interface SetupResult {
  venv: string;
  python: string;
  sparkSubmit: string;
  sparkFrom: string;
  /** What the tfjs-node binding was built against, or undefined when workers fall back to pure-JS tfjs. */
  tfBinding?: string;
}

/** Makes (or checks) the private environment and the native pieces; says each step. */
export async function setup(say: (line: string) => void): Promise<SetupResult> {
  const root = packageRoot();
  // A checkout's .venv has the plugin installed editable, for its tests: make setup owns it.
  if (isCheckout()) throw new SetupError(`${root} is a checkout: \`make setup\` makes its environment (.venv)`);
  const venv = privateVenv();
  const python = join(venv, 'bin', 'python');
  const installing = !isSetUp(venv);
  if (installing) {
    if (!existsSync(python)) {
      const base = process.env.SPARKRING_PYTHON ?? 'python3';
      say(`making sparkring's Python environment in ${venv} (with ${base})`);
      await mkdir(dirname(venv), { recursive: true });
      await step('making the venv', base, ['-m', 'venv', venv], say).catch((err: unknown) => {
        throw new RunError(
          'setup',
          `${(err as Error).message}; sparkring needs Python 3.10+ with venv (or SPARKRING_PYTHON naming one)`,
        );
      });
    }
    say('installing pyspark, pyarrow and TensorFlow from PyPI into it (a few minutes the first time)');
    await step(
      'installing the Python side',
      join(venv, 'bin', 'pip'),
      [
        'install',
        '--quiet',
        '--disable-pip-version-check',
        '-c',
        join(root, 'spark-plugin', 'constraints.txt'),
        // spark: pyspark itself, which the package leaves to an extra (a Connect client has pyspark-client).
        `${join(root, 'spark-plugin')}[spark,tf,demo]`,
      ],
      say,
    );
    writeFileSync(join(venv, STAMP), installedFor());
  }
  await restoreTfjsNode(root, say);
  // Both scripts skip work already done and never fail: without a compiler they say what is lost.
  await step(
    "building tfjs-node's binding",
    process.execPath,
    [join(root, 'scripts', 'build-tf-binding.mjs'), '--python', python],
    say,
  );
  await step('building the partition-mapping addon', process.execPath, [join(root, 'scripts', 'build-native.mjs')], say);
  const manifest = join(root, 'native', 'build', 'tfjs_binding.json');
  const tfBinding = existsSync(manifest) ? (JSON.parse(readFileSync(manifest, 'utf8')) as { tfDir: string }).tfDir : undefined;
  const spark = findSparkSubmit(venv);
  if (spark === undefined)
    throw new SetupError(`the environment at ${venv} has no spark-submit; remove it and run \`sparkring setup\` again`);
  // Only for sparkring's own pyspark: the archives hold its jars' classes (made anew with them).
  if (!spark.users) await makeJvmArchives(python, spark.path, say, installing);
  return { venv, python, sparkSubmit: spark.path, sparkFrom: spark.from, tfBinding };
}

/**
 * Before a command that submits to Spark: an installed sparkring makes its environment on the first
 * run; a checkout leaves that to `make setup` (sparkPaths says so). Then one line says which Spark and
 * which Python the run uses, when that is not the checkout's own.
 */
export async function prepareEnvironment(say: (line: string) => void, o: { livy?: string } = {}): Promise<void> {
  if (!isCheckout() && !isSetUp()) {
    say(`first run: no environment yet at ${privateVenv()}; making it (\`sparkring setup\` does this alone)`);
    await setup(say);
  }
  if (o.livy) return;
  const spark = findSparkSubmit();
  if (spark === undefined) return; // sparkPaths names what is missing
  if (spark.users || !isCheckout()) {
    say(`using Spark from ${spark.from} (${spark.path}), Python from ${privateVenv()}`);
  }
}
