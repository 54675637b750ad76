/**
 * No import cycles between modules, in TypeScript (src, cluster) or Python (spark-plugin/sparkring),
 * type-only and dynamic (`import()`) imports included: a cycle is two modules that cannot be
 * understood, or changed, apart. The graph is read from the import statements (relative ones; the
 * packages' own are outside it).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/spark.js';

function files(dir: string, ext: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const path = join(dir, d.name);
    if (d.isDirectory()) return d.name === '__pycache__' ? [] : files(path, ext);
    return d.name.endsWith(ext) ? [path] : [];
  });
}

function tsGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of [...files(join(ROOT, 'src'), '.ts'), ...files(join(ROOT, 'cluster'), '.ts')]) {
    const text = readFileSync(file, 'utf8');
    // Static imports and re-exports, and import('...') too: a dynamic import is an edge all the same.
    const specifiers = [
      ...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'(\.[^']+)\.js'/g),
      ...text.matchAll(/\bimport\(\s*'(\.[^']+)\.js'\s*\)/g),
    ];
    const targets = specifiers.map((m) => relative(ROOT, resolve(dirname(file), `${m[1]}.ts`)));
    graph.set(relative(ROOT, file), targets);
  }
  return graph;
}

function pyGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const base = join(ROOT, 'spark-plugin');
  /** The module file a dotted name is, if any: sparkring.driver.lifecycle -> sparkring/driver/lifecycle.py. */
  const moduleFile = (dotted: string): string | undefined => {
    const path = dotted.replaceAll('.', '/');
    for (const candidate of [`${path}.py`, `${path}/__init__.py`]) if (existsSync(join(base, candidate))) return candidate;
    return undefined;
  };
  for (const file of files(join(base, 'sparkring'), '.py')) {
    const text = readFileSync(file, 'utf8');
    const targets = new Set<string>();
    for (const m of text.matchAll(/^\s*from (sparkring(?:\.\w+)*) import ([\w, ]+)/gm)) {
      // `from sparkring.driver import lifecycle, stage` names modules; `from sparkring.driver.stage import x` names stage.
      const from = m[1] as string;
      for (const name of (m[2] ?? '').split(',').map((n) => n.trim())) {
        const target = moduleFile(`${from}.${name}`) ?? moduleFile(from);
        if (target && !target.endsWith('__init__.py')) targets.add(target);
      }
    }
    for (const m of text.matchAll(/^\s*import (sparkring(?:\.\w+)+)/gm)) {
      const target = moduleFile(m[1] as string);
      if (target) targets.add(target);
    }
    // A module's own name in its docstring's example is no edge.
    graph.set(
      relative(base, file),
      [...targets].filter((t) => t !== relative(base, file)),
    );
  }
  return graph;
}

/** Every cycle, each once, as the modules around it. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found = new Map<string, string[]>();
  const visit = (node: string, path: string[]): void => {
    const at = path.indexOf(node);
    if (at >= 0) {
      const cycle = path.slice(at);
      const key = [...cycle].sort().join(' ');
      if (!found.has(key)) found.set(key, [...cycle, node]);
      return;
    }
    if (path.length > 40) return;
    for (const next of graph.get(node) ?? []) visit(next, [...path, node]);
  };
  const done = new Set<string>();
  for (const node of graph.keys()) {
    visit(node, []);
    done.add(node);
  }
  return [...found.values()];
}

describe('imports', () => {
  it('the TypeScript modules import one another without a cycle', () => {
    const graph = tsGraph();
    expect(graph.size).toBeGreaterThan(50);
    expect(cycles(graph).map((c) => c.join(' -> '))).toEqual([]);
  });

  it('the Python modules import one another without a cycle', () => {
    const graph = pyGraph();
    expect(graph.get('sparkring/driver/submit.py')).toEqual(
      expect.arrayContaining([
        'sparkring/driver/train_job.py',
        'sparkring/driver/search_rounds.py',
        'sparkring/driver/envelope.py',
      ]),
    );
    expect(cycles(graph).map((c) => c.join(' -> '))).toEqual([]);
  });
});
