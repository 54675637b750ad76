/** Runs a reference program from ../shared/anchors and returns the JSON object it prints. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { packageFile } from '../../src/util/package-file.js';

export function anchorsDir(): string | undefined {
  const root = resolve(packageFile('package.json'), '..');
  const dir = process.env.SPARKRING_ANCHORS ?? join(root, '..', 'shared', 'anchors');
  return existsSync(dir) ? dir : undefined;
}

export async function runAnchor(name: string, args: string[]): Promise<Record<string, unknown> | undefined> {
  const dir = anchorsDir();
  if (!dir) return undefined;
  try {
    const r = await execa('bash', [join(dir, name), ...args], { timeout: 600_000, stderr: 'inherit' });
    const last = r.stdout.trim().split('\n').pop() ?? '';
    return JSON.parse(last) as Record<string, unknown>;
  } catch (err) {
    return { impl: name, error: (err as Error).message.split('\n')[0] };
  }
}
