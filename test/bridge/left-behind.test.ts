import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { processes, sparkring, tempDir, waitForNoLeftovers } from '../helpers/spark.js';

afterEach(async () => {
  expect(await waitForNoLeftovers()).toEqual([]);
});

const redisServers = (): string[] =>
  processes()
    .filter((p) => /^redis-server /.test(p.args))
    .map((p) => p.args);

async function eventually(check: () => boolean, timeoutMs = 30_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 200));
  }
  return true;
}

it.each(['SIGINT', 'SIGTERM', 'SIGKILL'] as const)(
  'a CLI stopped with %s mid-run leaves no process, staging file or partition file behind',
  async (signal) => {
    const dir = tempDir('left-behind');
    const tmp = join(dir, 'tmp');
    mkdirSync(tmp);
    writeFileSync(
      join(dir, 'slow.ts'),
      `export default async function train(ctx: any) {
  for (let s = 0; s < 120; s++) { await new Promise((r) => setTimeout(r, 250)); await ctx.barrier(); ctx.report({ s }); }
  return 'ok';
}
`,
    );
    const redisBefore = redisServers().length;
    const child = sparkring(['allreduce', 'slow.ts', '--workers', '2', '--experiments', 'exp'], { TMPDIR: tmp }, dir);
    let out = '';
    child.stderr?.on('data', (b: Buffer) => {
      out += b.toString();
    });
    expect(await eventually(() => /\[worker \d\] step 2/.test(out), 120_000)).toBe(true);
    expect(readdirSync(tmp).length).toBeGreaterThan(0); // the run's staging is there while it runs
    // The run's own partition files are named by its id (another test's run may have its own).
    const staging = readdirSync(tmp).find((d) => d.startsWith('sparkring-train-')) as string;
    const runId = (JSON.parse(readFileSync(join(tmp, staging, 'spec.json'), 'utf8')) as { runId: string }).runId;
    child.kill(signal);
    const ended = await child;
    if (signal !== 'SIGKILL') {
      // An interrupt is its own kind: exit 130, as a shell's, and a line that says so (not bad input's 2).
      expect(ended.exitCode).toBe(130);
      expect(ended.all).toMatch(/sparkring: interrupted; the run was stopped/);
    }
    expect(await eventually(() => redisServers().length === redisBefore)).toBe(true);
    expect(await waitForNoLeftovers(30_000)).toEqual([]);
    expect(await eventually(() => readdirSync(tmp).length === 0)).toBe(true);
    expect(readdirSync('/dev/shm').filter((f) => f.startsWith(`sparkring-${runId}-`))).toEqual([]);
  },
  240_000,
);

it("a run returns on its result; the executors' release comes after, recorded in the run's result.json, and nothing is left behind", async () => {
  const dir = tempDir('returns-on-result');
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  writeFileSync(
    join(dir, 'train.mjs'),
    "export default async (ctx) => (await ctx.allreduce(new Float32Array([ctx.rank + 1]), 'sum'))[0];\n",
  );
  const r = await sparkring(['allreduce', 'train.mjs', '--workers', '2', '--experiments', 'exp', '--json'], { TMPDIR: tmp }, dir);
  expect(r.exitCode, r.all).toBe(0);
  const out = JSON.parse(r.stdout) as { dir: string; result: number; timings: { releaseMs: number | null } };
  expect(out.result).toBe(3);
  // The client did not wait for the release: the driver was still going when it returned.
  expect(out.timings.releaseMs).toBeNull();
  expect(await waitForNoLeftovers(60_000)).toEqual([]);
  const recorded = JSON.parse(readFileSync(join(out.dir, 'result.json'), 'utf8')) as { ok: boolean; releaseMs: number | null };
  expect(recorded).toMatchObject({ ok: true });
  expect(recorded.releaseMs).toBeGreaterThan(0);
  expect(await eventually(() => readdirSync(tmp).length === 0)).toBe(true);
}, 240_000);
