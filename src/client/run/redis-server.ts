/**
 * The private redis-server of a run without --redis: on the address the executors reach this
 * client at (loopback for a local master), a free port, no persistence, and a random password per run. Its settings go in on stdin (`redis-server -`), so no command line carries
 * the password; the workers get it inside the spec (mode 0600) and the init message.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { pingRedis, type RedisEndpoint, redactUrl, runStream } from '../../events/redis.js';
import { freePort } from '../../util/net.js';
import { tiedToThisProcess } from '../../util/tied.js';
import { RunError } from '../errors.js';

export class PrivateRedis {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
  ) {}

  static async start(host = '127.0.0.1'): Promise<PrivateRedis> {
    const port = await freePort(host);
    const password = randomBytes(24).toString('hex');
    // Tied to this process: a client killed with SIGKILL leaves no redis-server behind.
    const child = spawn(...tiedToThisProcess('redis-server', ['-']), { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin?.on('error', () => undefined); // a redis-server that fails to start closes it early
    child.stdin?.end([`port ${port}`, `bind ${host}`, 'save ""', 'appendonly no', `requirepass ${password}`, ''].join('\n'));
    const ready = await new Promise<string | undefined>((resolve) => {
      let out = '';
      const onData = (b: Buffer): void => {
        out += b.toString();
        if (out.includes('Ready to accept connections')) resolve(undefined);
      };
      child.stdout?.on('data', onData);
      child.on('error', (err) =>
        resolve(`cannot start redis-server (${err.message}); install it (apt-get install redis-server) or pass --redis URL`),
      );
      child.on('exit', (code) => resolve(`redis-server exited (${code}) at start: ${out.trim().split('\n').at(-1) ?? ''}`));
      setTimeout(() => resolve('redis-server did not become ready in 10 s'), 10_000).unref();
    });
    if (ready) {
      child.kill('SIGKILL');
      throw new RunError('setup', ready);
    }
    child.stdout?.resume();
    child.stderr?.resume();
    return new PrivateRedis(child, `redis://:${password}@${host.includes(':') ? `[${host}]` : host}:${port}`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      this.child.once('exit', () => resolve());
      this.child.kill('SIGTERM');
      setTimeout(() => this.child.kill('SIGKILL'), 3000).unref();
    });
  }
}

/**
 * The run's Redis: the one given (checked before anything is submitted), or a private one on
 * `host`, the address the executors reach this client at (client/submission/reachable.ts).
 */
export async function openRunRedis(
  o: { redis?: string; redisCa?: string },
  runId: string,
  host = '127.0.0.1',
): Promise<{ endpoint: RedisEndpoint; stop(): Promise<void> }> {
  const own = o.redis ? undefined : await PrivateRedis.start(host);
  const endpoint: RedisEndpoint = { url: o.redis ?? (own as PrivateRedis).url, stream: runStream(runId), ca: o.redisCa ?? null };
  try {
    await pingRedis(endpoint);
  } catch (err) {
    await own?.stop();
    throw new RunError(
      'setup',
      `Redis at ${redactUrl(endpoint.url)} is unreachable (${(err as Error).message}); start it or pass another --redis URL`,
    );
  }
  return { endpoint, stop: async () => own?.stop() };
}
