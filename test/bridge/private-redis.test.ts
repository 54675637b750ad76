/**
 * The embedded default's private redis-server: a password per run that no command line carries,
 * and NOAUTH for a client without it; the run itself (driver, tasks, workers) still gets through.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, expect, it } from 'vitest';
import { TestRedis } from '../helpers/redis.js';
import { sparkring, tempDir, waitForNoLeftovers } from '../helpers/spark.js';

afterEach(async () => {
  expect(await waitForNoLeftovers()).toEqual([]);
});

const commandLines = (): string[] => execFileSync('ps', ['-eo', 'args='], { encoding: 'utf8' }).split('\n');

it('the private redis-server wants a password that no command line carries', async () => {
  const dir = tempDir('private-redis');
  const stage = tempDir('private-redis-stage');
  const file = join(dir, 'slow.ts');
  writeFileSync(
    file,
    `export default async function train(ctx: any) {
  for (let s = 0; s < 8; s++) { await new Promise((r) => setTimeout(r, 500)); ctx.report({ loss: s }); await ctx.barrier(); }
  return 'trained';
}
`,
  );
  const run = sparkring(['allreduce', file, '--workers', '2', '--experiments', dir, '--stage', stage, '--json']);
  try {
    // This run's own server (other tests' servers may be running beside it): its port from the staged spec.
    const spec = await stagedSpec(stage, run);
    expect(await ping(Number(new URL(spec.redis.url).port))).toMatch(/^-NOAUTH/);
    // While the run is going, no process shows a password: not redis-server, not spark-submit, not a task or worker.
    for (let i = 0; i < 20; i++) {
      for (const l of commandLines()) expect(l).not.toMatch(/requirepass|>[0-9a-f]{48}|rediss?:\/\/[^:/\s]*:[^@\s]+@/);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await run;
  }
  const r = await run;
  expect(r.exitCode, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout).result).toBe('trained');
}, 240_000);

/** A plain client's PING, answered by the server at `port`. */
function ping(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
    socket.once('data', (b) => {
      resolve(b.toString().trim());
      socket.destroy();
    });
    socket.once('error', reject);
  });
}

it('a Redis password from a file named in $SPARKRING_REDIS, and a --conf secret, reach no command line and no spec.json', async () => {
  const password = 'pw-from-a-file-0123456789';
  const redis = await TestRedis.start(['--requirepass', password]);
  try {
    const dir = tempDir('redis-file');
    writeFileSync(join(dir, 'redis-url'), `redis://:${password}@127.0.0.1:${redis.port}\n`);
    writeFileSync(join(dir, 'train.ts'), "export default async () => 'ok';\n");
    const run = sparkring(
      [
        'allreduce',
        'train.ts',
        '--workers',
        '1',
        '--experiments',
        'exp',
        '--conf',
        'spark.hadoop.fs.s3a.secret.key=abc',
        '--json',
      ],
      { SPARKRING_REDIS: `@${join(dir, 'redis-url')}` },
      dir,
    );
    let seen = false;
    while (!seen && run.exitCode === null) {
      const lines = commandLines();
      for (const l of lines) {
        expect(l).not.toContain(password);
        // --conf values go to spark-submit in a mode-0600 properties file, not on its command line
        // (or the driver JVM's), where every user of the machine sees them.
        if (/spark-submit|SparkSubmit/.test(l)) expect(l).not.toContain('secret.key=abc');
      }
      seen = lines.some((l) => l.includes('sparkring_submit.py'));
      await new Promise((r) => setTimeout(r, 100));
    }
    const r = await run;
    expect(r.exitCode, r.stderr).toBe(0);
    const spec = readFileSync(join(JSON.parse(r.stdout).dir, 'spec.json'), 'utf8');
    expect(spec).not.toContain(password);
    expect(JSON.parse(spec).sparkConf).toEqual({ 'spark.hadoop.fs.s3a.secret.key': '*********(redacted)' });
    expect(r.all).not.toContain(password);
  } finally {
    await redis.stop();
  }
}, 240_000);

/** The spec of the run staged under `stage`, once it is there: what a same-uid neighbour can read. */
async function stagedSpec(
  stage: string,
  running: { exitCode: number | null },
): Promise<{ redis: { url: string; stream: string } }> {
  while (running.exitCode === null) {
    for (const d of readdirSync(stage)) {
      const file = join(stage, d, 'spec.json');
      if (existsSync(file)) {
        try {
          return JSON.parse(readFileSync(file, 'utf8'));
        } catch {
          // still being written
        }
      }
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the run ended before its spec was staged');
}

it("with the run's own Redis credentials a neighbour can administer nothing, read no other key, and filling the memory cap fails its writes, not the run", async () => {
  const dir = tempDir('redis-attacker');
  const stage = tempDir('redis-attacker-stage');
  writeFileSync(
    join(dir, 'slow.ts'),
    `export default async function train(ctx: any) {
  for (let s = 0; s < 12; s++) { await new Promise((r) => setTimeout(r, 500)); ctx.report({ loss: s }); await ctx.barrier(); }
  return 'trained';
}
`,
  );
  const run = sparkring(['allreduce', join(dir, 'slow.ts'), '--workers', '2', '--experiments', dir, '--stage', stage, '--json'], {
    SPARKRING_REDIS_MAXMEMORY: '48mb',
  });
  const spec = await stagedSpec(stage, run);
  const attacker = new Redis(spec.redis.url, { maxRetriesPerRequest: 0 });
  const refusal = (cmd: string[]): Promise<string> =>
    attacker.call(cmd[0] as string, ...cmd.slice(1)).then(
      (ok) => `accepted: ${String(ok)}`,
      (err: Error) => err.message,
    );
  try {
    expect(await refusal(['CONFIG', 'SET', 'requirepass', 'locked-out'])).toMatch(/NOPERM/);
    expect(await refusal(['CONFIG', 'SET', 'dir', '/tmp'])).toMatch(/NOPERM/);
    expect(await refusal(['FLUSHALL'])).toMatch(/NOPERM/);
    expect(await refusal(['REPLICAOF', '127.0.0.1', '1'])).toMatch(/NOPERM/);
    expect(await refusal(['MIGRATE', '127.0.0.1', '1', spec.redis.stream, '0', '1000'])).toMatch(/NOPERM/);
    expect(await refusal(['SHUTDOWN', 'NOSAVE'])).toMatch(/NOPERM/);
    expect(await refusal(['GET', 'sparkring:run:another-run:events'])).toMatch(/NOPERM/);
    expect(await refusal(['XRANGE', 'sparkring:run:another-run:events', '-', '+'])).toMatch(/NOPERM/);
    expect(await refusal(['EVAL', "return redis.call('GET', 'elsewhere')", '0'])).toMatch(/can't access|NOPERM/);
    // Fill the run's own stream, 64 entries of 1 MB at a time, until Redis refuses one: the cap
    // stops the attacker. (The client deletes unsigned entries as it reads them, so one at a time
    // the attacker might never get ahead of it.)
    const junk = 'x'.repeat(1 << 20);
    let oom = '';
    for (let batch = 0; batch < 30 && !oom; batch++) {
      const pipeline = attacker.pipeline();
      for (let i = 0; i < 64; i++) pipeline.xadd(spec.redis.stream, '*', 'junk', junk);
      const replies = (await pipeline.exec()) ?? [];
      oom = replies.map(([err]) => err?.message ?? '').find((m) => m) ?? '';
    }
    expect(oom).toMatch(/OOM/);
  } finally {
    attacker.disconnect();
    await run;
  }
  const r = await run;
  expect(r.exitCode, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout).result).toBe('trained');
}, 240_000);
