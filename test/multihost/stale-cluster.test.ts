/**
 * A cluster whose owner was killed (a bench or test run stopped by a signal) is removed by the next
 * removeStaleClusters(): its namespaces, and the processes it adopted in the root namespace (the
 * Spark master), which no namespace holds.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { expect, it } from 'vitest';
import { removeStaleClusters } from '../../cluster/hosts.js';
import { packageFile } from '../../src/util/package-file.js';

/** Whether `pid` runs: not gone, and not a zombie its new parent has yet to reap. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function ended(pid: number): Promise<boolean> {
  for (let i = 0; i < 50 && running(pid); i++) await new Promise((r) => setTimeout(r, 100));
  return !running(pid);
}

it("removes a killed owner's namespaces and the root-namespace processes it adopted", async () => {
  const owner = spawn(process.execPath, [packageFile('test/fixtures/stale-cluster-owner.mjs')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let made: { netns: string; adopted: number } | undefined;
  try {
    const [line] = (await once(createInterface({ input: owner.stdout }), 'line')) as [string];
    made = JSON.parse(line) as { netns: string; adopted: number };
    owner.kill('SIGKILL');
    await once(owner, 'exit');
    expect(running(made.adopted)).toBe(true); // the owner's death left it running

    removeStaleClusters();

    expect(await ended(made.adopted)).toBe(true);
    expect(execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })).not.toContain(made.netns);
  } finally {
    owner.kill('SIGKILL');
    if (made && running(made.adopted)) process.kill(made.adopted, 'SIGKILL');
    removeStaleClusters();
  }
});
