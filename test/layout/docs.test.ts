/**
 * The docs say where things are, and stay true: every file docs/architecture.md cites exists, and
 * every name it cites in a file ("`name` (file)", "file `name`") is defined there; the README's
 * Layout section names every folder the repository has.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/spark.js';

const ARCHITECTURE = readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8');
/** Where a path in the doc may be relative to: the repository, src/, the Python package and its rooms. */
const BASES = [
  '',
  'src',
  'spark-plugin',
  'spark-plugin/sparkring',
  'spark-plugin/sparkring/driver',
  'spark-plugin/sparkring/executor',
];
const PATH = /(?<![\w/.<-])((?:[\w.-]+\/)*[\w.-]+\.(?:ts|py|cc|mjs|proto|json|md)|(?:[\w.-]+\/)+)(?![\w/])/g;

function resolveCited(path: string): string | undefined {
  for (const base of BASES) {
    const full = join(ROOT, base, path);
    if (existsSync(full)) return full;
  }
  return undefined;
}

/** What a run directory holds (README "Experiments"): named in the doc, but no file of the repository. */
const RUN_FILES = ['spec.json', 'result.json', 'versioned/', 'model/', 'checkpoint/', 'tensorboard/', 'logs/'];

/** Paths cited in the doc (not URLs, placeholders like <run>/model/, or a run directory's files). */
function citedPaths(text: string): string[] {
  const found = new Set<string>();
  for (const m of text.matchAll(PATH)) {
    const path = m[1] as string;
    if (/^(https?:|\/|\.)/.test(path) || path.includes('<') || RUN_FILES.includes(path)) continue;
    found.add(path);
  }
  return [...found];
}

/** (name, file) pairs: "`name` (file ...)", "file `name`", "`name` in file". */
function citedNames(text: string): Array<[string, string]> {
  const file = String.raw`((?:[\w.-]+\/)*[\w.-]+\.(?:ts|py|cc|mjs))`;
  const name = String.raw`\x60([A-Za-z_][\w.]*)\x60`;
  const pairs: Array<[string, string]> = [];
  for (const m of text.matchAll(new RegExp(`${name} \\(${file}`, 'g'))) pairs.push([m[1] as string, m[2] as string]);
  for (const m of text.matchAll(new RegExp(`${file} ${name}`, 'g'))) pairs.push([m[2] as string, m[1] as string]);
  for (const m of text.matchAll(new RegExp(`${name} in ${file}`, 'g'))) pairs.push([m[1] as string, m[2] as string]);
  // A file name in backticks before a file is what that file writes, not a name in it.
  return pairs.filter(([n]) => !/\.(svg|json|jsonl|ts|py|md)$/.test(n));
}

/** Whether `text` defines `name` (an import of it does not count): a declaration, a method, a property, a constant. */
function defines(text: string, name: string): boolean {
  return (
    new RegExp(`\\b(def|class|function|const|let|interface|type|enum)\\s+${name}\\b`).test(text) ||
    new RegExp(`^\\s*(export\\s+)?(async\\s+)?(static\\s+)?(readonly\\s+)?(private\\s+)?${name}\\s*[(:=<]`, 'm').test(text)
  );
}

describe('docs/architecture.md', () => {
  it('cites files that exist', () => {
    const paths = citedPaths(ARCHITECTURE);
    expect(paths.length).toBeGreaterThan(50);
    expect(paths.filter((p) => resolveCited(p) === undefined)).toEqual([]);
  });

  it('cites names that are in the files it names', () => {
    const pairs = citedNames(ARCHITECTURE);
    expect(pairs.length).toBeGreaterThan(15);
    const missing = pairs.filter(([name, path]) => {
      const file = resolveCited(path);
      if (!file || statSync(file).isDirectory()) return true;
      return !defines(readFileSync(file, 'utf8'), name.split('.').at(-1) as string);
    });
    expect(missing.map(([name, path]) => `${name} in ${path}`)).toEqual([]);
  });
});

describe("the README's Layout", () => {
  it('names every folder of the repository', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const layout = readme.slice(readme.indexOf('## Layout'), readme.indexOf('\n## ', readme.indexOf('## Layout') + 1));
    const folders = new Set(
      execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' })
        .split('\n')
        .filter(Boolean)
        .map((f) => dirname(f))
        .filter((d) => d !== '.'),
    );
    const named = (d: string): boolean => layout.includes(`\`${d}\``) || layout.includes(`\`${d}/`);
    expect([...folders].filter((d) => !named(d)).sort()).toEqual([]);
  });
});
