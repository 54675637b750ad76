/**
 * The npm package carries every native source: `sparkring setup` on a user's machine builds
 * tfjs-node's binding and the partition addon from the package's own copies, and a source left
 * out of package.json's `files` turns that build into the pure-JS fallback.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ROOT } from '../helpers/spark.js';

it("package.json's files list every native source", () => {
  const files = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[] }).files;
  const sources = readdirSync(join(ROOT, 'native')).filter((f) => f.endsWith('.cc') || f.endsWith('.h'));
  expect(sources.length).toBeGreaterThan(0);
  expect(sources.map((f) => `native/${f}`).filter((f) => !files.includes(f) && !files.includes('native'))).toEqual([]);
});
