/**
 * The user's entry, compiled once on the client into one ES module that every worker and trial
 * imports: the one loading path for local and shipped runs. esbuild folds the entry's own imports
 * (relative files, packages from the entry's folder's node_modules, .ts/.mts/.js/.mjs/.cjs) into
 * that module, so the folder's package.json (none, CommonJS or module) no longer decides how Node
 * reads the file, and a .ts entry needs no loader in the executors. The module carries an inline
 * source map: stacks name the user's file:line.
 *
 * TensorFlow.js stays outside the module, so the entry and the runtime share one tfjs: a local run
 * points its imports at this installation's packages; a shipped one at the bundle's node_modules.
 * A value import of `sparkring` itself resolves to this installation.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { type BuildFailure, build, type Plugin } from 'esbuild';
import { RunError } from '../errors.js';
import { packageRoot } from './paths.js';

export const ENTRY_EXTENSIONS = ['.ts', '.mts', '.cts', '.tsx', '.js', '.mjs', '.cjs', '.jsx'] as const;

/** Packages the runtime provides: never folded into the entry. */
const TF_PACKAGE = /^@tensorflow\//;

// Chunks that esbuild turns from CommonJS into ES modules still call require().
export const REQUIRE_SHIM =
  "import { createRequire as __sparkringRequire } from 'node:module'; const require = __sparkringRequire(import.meta.url);";

export type TfImports =
  /** Imports of @tensorflow/* stay bare: the shipped bundle has them in its own node_modules. */
  | 'bare'
  /** Imports of @tensorflow/* point at this installation's files (local runs). */
  | 'installed';

/** Where `specifier` resolves for this installation's own modules, or undefined when it has no such package. */
function installedUrl(specifier: string): string | undefined {
  try {
    return import.meta.resolve(specifier);
  } catch {
    return undefined;
  }
}

function runtimePackages(tfImports: TfImports): Plugin {
  return {
    name: 'sparkring-runtime-packages',
    setup(b) {
      b.onResolve({ filter: TF_PACKAGE }, (args) => {
        if (tfImports === 'bare') return { path: args.path, external: true };
        return { path: installedUrl(args.path) ?? args.path, external: true };
      });
      b.onResolve({ filter: /^sparkring$/ }, () => ({ path: join(packageRoot(), 'dist', 'src', 'index.js') }));
    },
  };
}

/** The compiled module's file name for `entry`, under `outDir`. */
export const compiledEntryName = (entry: string): string => `${basename(entry, extname(entry))}.mjs`;

/**
 * Compiles `entry` into the ES module `outfile` and returns its path. A file that does not compile
 * is an input error naming file:line:column.
 */
export async function compileEntry(entry: string, outfile: string, tfImports: TfImports): Promise<string> {
  if (!(ENTRY_EXTENSIONS as readonly string[]).includes(extname(entry))) {
    throw new RunError(
      'input',
      `entry ${entry}: sparkring runs ${ENTRY_EXTENSIONS.join(', ')} files; rename it or wrap it in one`,
    );
  }
  await mkdir(dirname(outfile), { recursive: true });
  // An entry compiled before (versioned/'s, for a rerun) declares the shim already, and any
  // CommonJS inside it was wrapped then: a second shim would declare `require` twice.
  const compiledBefore = (await readFile(entry, 'utf8')).startsWith(REQUIRE_SHIM);
  let exports: string[];
  try {
    const { metafile } = await build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      sourcemap: 'inline',
      metafile: true,
      plugins: [runtimePackages(tfImports)],
      banner: compiledBefore ? {} : { js: REQUIRE_SHIM },
      logLevel: 'silent',
    });
    exports = Object.values(metafile?.outputs ?? {})[0]?.exports ?? [];
  } catch (err) {
    const first = (err as BuildFailure).errors?.[0];
    if (!first) throw err;
    const at = first.location ? `${resolve(first.location.file)}:${first.location.line}:${first.location.column}: ` : '';
    throw new RunError('input', `entry ${entry} does not compile: ${at}${first.text}`);
  }
  if (!exports.includes('default')) {
    throw new RunError(
      'input',
      `entry ${entry} has no default export; write \`export default async function train(ctx) { ... }\` (or \`module.exports = async function train(ctx) { ... }\`)`,
    );
  }
  return outfile;
}
