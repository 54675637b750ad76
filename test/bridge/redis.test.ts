import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, describe, expect, it } from 'vitest';
import { type AllreduceOptions, type AllreduceResult, allreduce } from '../../src/index.js';
import { freePort, makeTlsFiles, TestRedis } from '../helpers/redis.js';
import { entry, pidOf, sparkring, tempDir, waitForNoLeftovers, writeTable } from '../helpers/spark.js';

const redises: TestRedis[] = [];
afterEach(async () => {
  for (const r of redises.splice(0)) await r.stop();
  expect(await waitForNoLeftovers()).toEqual([]);
});

/** The slow, checkpointing entry of test/fixtures/entries/resumable.ts, 40 steps on 2 workers. */
function resumableRun(prefix: string, extra: Partial<AllreduceOptions>): Promise<AllreduceResult> {
  const dir = tempDir(prefix);
  return allreduce({
    entry: entry('resumable.ts'),
    workers: 2,
    data: writeTable(dir, 'linear', 160),
    experiments: join(dir, 'experiments'),
    hparams: { steps: 40, stepMs: 150 },
    ...extra,
  });
}

const stepOf = (line: string): number | undefined => {
  const m = /^\[worker \d\] step (\d+)/.exec(line);
  return m ? Number(m[1]) : undefined;
};

function killIfAlive(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

describe('run events through Redis', () => {
  it('an unreachable Redis is a clear error before any Spark job starts', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    const started = Date.now();
    const r = await sparkring(['allreduce', entry('linear.ts'), '--redis', url]);
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toMatch(
      new RegExp(`^sparkring: Redis at ${url} is unreachable \\(.*\\); start it or pass another --redis URL$`, 'm'),
    );
    expect(r.stderr).not.toMatch(/submitting/);
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('a Redis with a password restarted in the middle of a run: the run completes and the client follows again', async () => {
    const redis = await TestRedis.start(['--requirepass', 's3cret']);
    redises.push(redis);
    const lines: string[] = [];
    let restarted = -1;
    const run = await resumableRun('redis-restart', {
      redis: `redis://:s3cret@127.0.0.1:${redis.port}`,
      onProgress: (line) => {
        lines.push(line);
        if (restarted < 0 && (stepOf(line) ?? 0) >= 8) {
          restarted = lines.length;
          void redis.crash().then(() => new Promise((r) => setTimeout(r, 1000)).then(() => redis.up()));
        }
      },
    });
    expect(restarted).toBeGreaterThan(0);
    expect((run.result as { steps: number }).steps).toBe(40);
    const after = lines
      .slice(restarted)
      .map(stepOf)
      .filter((s): s is number => s !== undefined);
    expect(Math.max(...after)).toBeGreaterThanOrEqual(30);
    expect(lines.every((l) => !l.includes('s3cret'))).toBe(true);
  }, 240_000);

  it('rediss:// (TLS, private CA) with a password', async () => {
    const dir = tempDir('redis-tls');
    const tls = makeTlsFiles(dir);
    const port = await freePort();
    const redis = await TestRedis.start(
      [
        '--port',
        '0',
        '--tls-port',
        String(port),
        '--tls-cert-file',
        tls.cert,
        '--tls-key-file',
        tls.key,
        '--tls-ca-cert-file',
        tls.ca,
        '--tls-auth-clients',
        'no',
        '--requirepass',
        'pw',
      ],
      port,
    );
    redises.push(redis);
    const lines: string[] = [];
    const run = await allreduce({
      entry: entry('linear.ts'),
      workers: 2,
      data: writeTable(dir, 'linear', 64),
      experiments: join(dir, 'experiments'),
      redis: `rediss://:pw@127.0.0.1:${port}`,
      redisCa: tls.ca,
      onProgress: (l) => lines.push(l),
    });
    expect(run.result).toMatchObject({ rank: 0 });
    expect(lines).toContain('[worker 1] joined the ring');
    expect(lines.some((l) => /^sparkring: Spark application .* started$/.test(l))).toBe(true);
  }, 240_000);

  it('a neighbour on a shared Redis (a forged heartbeat, a forged final error, 500 junk entries) changes nothing', async () => {
    const redis = await TestRedis.start();
    redises.push(redis);
    let forged: Promise<unknown> | undefined;
    const run = await resumableRun('redis-neighbour', {
      redis: `redis://127.0.0.1:${redis.port}`,
      maxAttempts: 2,
      heartbeatTimeoutMs: 4000,
      onProgress: (line) => {
        if (forged || (stepOf(line) ?? 0) < 3) return;
        // redis-cli, as another user of the same Redis: the run's stream is easy to find, and its
        // entries were plain JSON anyone could add to. A heartbeat for rank 99 that then goes silent
        // used to cancel the attempt; an error with a final code used to forbid the retry.
        const cli = (args: string[], input?: string) =>
          execa('redis-cli', ['-p', String(redis.port), ...args], input === undefined ? {} : { input });
        forged = (async () => {
          const key = (await cli(['--scan', '--pattern', 'sparkring:run:*:events'])).stdout.trim();
          const entry = (e: Record<string, unknown>) => [
            'XADD',
            key,
            '*',
            'e',
            JSON.stringify({ source: 'worker-0', at: Date.now(), attempt: 0, ...e }),
          ];
          await cli(entry({ type: 'heartbeat', rank: 99 }));
          await cli([...entry({ type: 'error', rank: 0, message: 'forged', code: 'SR_ENTRY_LOAD' }), 'm', 'f'.repeat(64)]);
          await cli([], Array.from({ length: 500 }, (_, i) => `XADD ${key} * e junk-${i}`).join('\n'));
        })();
      },
    });
    await forged;
    expect(forged).toBeDefined();
    expect(run.attempts).toBe(1);
    expect((run.result as { steps: number }).steps).toBe(40);
  }, 240_000);

  it('a worker without heartbeats for the timeout fails its attempt, and the run resumes in the next', async () => {
    const lines: string[] = [];
    let stopped: number | undefined;
    const run = await resumableRun('heartbeat', {
      maxAttempts: 2,
      heartbeatTimeoutMs: 4000,
      peerTimeoutMs: 120_000,
      onProgress: (line) => {
        lines.push(line);
        if (stopped === undefined && (stepOf(line) ?? 0) >= 8) {
          stopped = pidOf(/node .*runtime\/main\.js/) as number;
          process.kill(stopped, 'SIGSTOP');
        }
        // By then the failed attempt's teardown may have taken it already (--pdeathsig): ESRCH is fine.
        if (stopped !== undefined && /attempt 2 of 2/.test(line)) killIfAlive(stopped);
      },
    });
    expect(run.attempts).toBe(2);
    expect((run.result as { steps: number }).steps).toBe(40);
    expect(
      lines.some((l) =>
        /^sparkring: attempt 1 failed: worker \d sent no heartbeat for \d+ s; retrying from the last checkpoint/.test(l),
      ),
    ).toBe(true);
  }, 240_000);
});
