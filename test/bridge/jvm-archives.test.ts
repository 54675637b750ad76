/**
 * The embedded default's JVMs start from the class-data archives that setup made
 * (src/client/submission/jvm-archives.ts): while a run trains, its driver maps driver.jsa and each
 * executor maps executor.jsa. A JVM that rejected its archive (stale jars, another Java) would
 * have unmapped it.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { archiveDir } from '../../src/client/submission/jvm-archives.js';
import { sparkPaths } from '../../src/client/submission/paths.js';
import { processes, sparkring, tempDir, waitForNoLeftovers, writeTable } from '../helpers/spark.js';

afterEach(async () => {
  expect(await waitForNoLeftovers()).toEqual([]);
});

/** The archives of `dir` each JVM of the run has mapped, by the JVM's kind (Java's own base archive aside). */
function mappedArchives(dir: string): { driver: string[]; executor: string[] } {
  const mapped = (pid: number): string[] => {
    try {
      const maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
      return [...new Set([...maps.matchAll(/\S+\.jsa$/gm)].map((m) => m[0]))].filter((f) => f.startsWith(dir));
    } catch {
      return []; // gone
    }
  };
  const all = processes();
  return {
    driver: all.filter((p) => /deploy\.SparkSubmit/.test(p.args)).flatMap((p) => mapped(p.pid)),
    executor: all.filter((p) => /CoarseGrainedExecutorBackend/.test(p.args)).flatMap((p) => mapped(p.pid)),
  };
}

it("the embedded Spark's driver and executors map the class-data archives setup made", async () => {
  const archives = archiveDir(sparkPaths().sparkSubmit);
  expect(existsSync(join(archives, 'driver.jsa')) && existsSync(join(archives, 'executor.jsa'))).toBe(true);
  const dir = tempDir('jvm-archives');
  const go = join(dir, 'go');
  writeFileSync(
    join(dir, 'train.mjs'),
    `import { existsSync } from 'node:fs';
export default async function train(ctx) {
  for (let i = 0; i < 1200 && !existsSync(${JSON.stringify(go)}); i++) await new Promise((r) => setTimeout(r, 100));
  return { rank: ctx.rank };
}
`,
  );
  const run = sparkring([
    'allreduce',
    join(dir, 'train.mjs'),
    '--workers',
    '2',
    '--data',
    writeTable(dir, 'linear', 100),
    '--experiments',
    dir,
  ]);
  let seen = { driver: [] as string[], executor: [] as string[] };
  for (let i = 0; i < 1200 && run.exitCode === null; i++) {
    await new Promise((r) => setTimeout(r, 100));
    if (processes().filter((p) => /runtime\/main\.js/.test(p.args)).length < 2) continue;
    seen = mappedArchives(archives);
    break;
  }
  writeFileSync(go, '');
  const r = await run;
  expect(r.exitCode, r.all).toBe(0);
  expect(seen).toEqual({
    driver: [join(archives, 'driver.jsa')],
    executor: [join(archives, 'executor.jsa'), join(archives, 'executor.jsa')],
  });
}, 240_000);
