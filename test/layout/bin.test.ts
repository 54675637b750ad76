/**
 * The bin as a newcomer runs it in a checkout after `make demo`: `npx sparkring` executes
 * dist/src/cli/main.js directly, which tsc writes without the executable bit (`npm run build` sets it).
 */
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ROOT } from '../helpers/spark.js';

it('npx sparkring --help runs the built bin in the checkout', () => {
  expect(statSync(join(ROOT, 'dist', 'src', 'cli', 'main.js')).mode & 0o111).not.toBe(0);
  const help = execFileSync('npx', ['--no-install', 'sparkring', '--help'], { cwd: ROOT, encoding: 'utf8' });
  expect(help).toMatch(/Usage: sparkring/);
  expect(help).toMatch(/allreduce/);
  expect(help).toMatch(/predict/);
});
