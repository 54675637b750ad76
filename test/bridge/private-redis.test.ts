/**
 * The embedded default's private redis-server: a password per run that no command line carries,
 * and NOAUTH for a client without it; the run itself (driver, tasks, workers) still gets through.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { TestRedis } from '../helpers/redis.js';
import { sparkring, tempDir, waitForNoLeftovers } from '../helpers/spark.js';

afterEach(async () => {
  expect(await waitForNoLeftovers()).toEqual([]);
});

const commandLines = (): string[] => execFileSync('ps', ['-eo', 'args='], { encoding: 'utf8' }).split('\n');

it('the private redis-server wants a password that no command line carries', async () => {
  const dir = tempDir('private-redis');
  const file = join(dir, 'slow.ts');
  writeFileSync(
    file,
    `export default async function train(ctx: any) {
  for (let s = 0; s < 8; s++) { await new Promise((r) => setTimeout(r, 500)); ctx.report({ loss: s }); await ctx.barrier(); }
  return 'trained';
}
`,
  );
  const run = sparkring(['allreduce', file, '--workers', '2', '--experiments', dir, '--json']);
  try {
    await probeWhileRunning();
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

async function probeWhileRunning(): Promise<void> {
  let port: number | undefined;
  let seenLines: string[] = [];
  for (let i = 0; i < 600 && port === undefined; i++) {
    seenLines = commandLines();
    const line = seenLines.find((l) => /^redis-server /.test(l));
    const m = line ? /:(\d+)/.exec(line) : null;
    if (m) port = Number(m[1]);
    else await new Promise((r) => setTimeout(r, 50));
  }
  expect(port).toBeDefined();
  expect(await ping(port as number)).toMatch(/^-NOAUTH/);
  // While the run is going, no process shows a password: not redis-server, not spark-submit, not a task or worker.
  for (let i = 0; i < 20; i++) {
    for (const l of commandLines()) expect(l).not.toMatch(/requirepass|redis:\/\/:[^@\s]+@/);
    await new Promise((r) => setTimeout(r, 100));
  }
}

it('a Redis password from a file named in $SPARKRING_REDIS reaches no command line and no spec.json', async () => {
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
      for (const l of lines) expect(l).not.toContain(password);
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
