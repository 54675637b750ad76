import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The absolute path of a file shipped at the package root (proto/, spark-plugin/, ...), found by
 * walking up from this module: the same code runs from src/ (tests) and dist/src/ (builds).
 */
export function packageFile(relative: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, relative);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`sparkring package file ${relative} not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}
