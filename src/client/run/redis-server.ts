/**
 * The private redis-server of a run without --redis: on the address the executors reach this
 * client at (loopback for a local master), a free port, no persistence. Least privilege:
 * - the default user is off; one ACL user per run, with a random password, may touch only its
 *   run's keys (the events stream, and a search's queue) and no admin or dangerous command
 *   (CONFIG, SHUTDOWN, FLUSHALL, REPLICAOF, MIGRATE, DEBUG, MODULE, FUNCTION...);
 * - a memory cap (`SPARKRING_REDIS_MAXMEMORY`, 512mb by default) with no eviction, so filling it
 *   fails the writer's command instead of the machine;
 * - on an address other than loopback, TLS only, with a certificate made for this run that the
 *   spec pins (run-certificate.ts).
 * Its settings go in on stdin (`redis-server -`), so no command line carries the password; the
 * workers get it inside the spec (mode 0600) and the init message.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { pingRedis, type RedisEndpoint, redactUrl, runStream } from '../../events/redis.js';
import { freePort } from '../../util/net.js';
import { tiedToThisProcess } from '../../util/tied.js';
import { RunError } from '../errors.js';
import { isLoopback } from '../submission/reachable.js';
import { RunCertificate } from './run-certificate.js';

/** The ACL user the run's processes log in as. */
export const RUN_REDIS_USER = 'sparkring';
const DEFAULT_MAXMEMORY = '512mb';

/** The keys a run's processes use (events/redis.ts runStream, hpo/queue.ts): nothing else is theirs. */
export function runKeyPatterns(runId: string): string[] {
  return [runStream(runId), `sparkring:search:${runId}:*`];
}

/**
 * The ACL rule of the run's user. Commands go by category, then the admin and dangerous ones come
 * off (which takes CONFIG, SHUTDOWN, FLUSHALL, REPLICAOF, MIGRATE, DEBUG, MONITOR, ACL, KEYS), then
 * the server-wide script and function stores; INFO comes back for ioredis's ready check.
 */
export function runUserRule(password: string, keyPatterns: readonly string[]): string {
  return [
    `user ${RUN_REDIS_USER} on >${password} resetkeys`,
    ...keyPatterns.map((p) => `~${p}`),
    'resetchannels -@all +@connection +@read +@write +@transaction +@scripting',
    '-@admin -@dangerous -@pubsub -function -fcall -fcall_ro -script|flush -script|kill -move -copy +info',
  ].join(' ');
}

/** redis-server's settings for a run's private server (stdin of `redis-server -`). */
export function privateRedisConfig(o: {
  host: string;
  port: number;
  password: string;
  keyPatterns: readonly string[];
  maxmemory: string;
  major: number;
  tls?: { cert: string; key: string };
}): string {
  const listen = o.tls
    ? ['port 0', `tls-port ${o.port}`, `tls-cert-file ${o.tls.cert}`, `tls-key-file ${o.tls.key}`, 'tls-auth-clients no']
    : [`port ${o.port}`];
  const lockedDown = o.major >= 7 ? ['enable-protected-configs no', 'enable-debug-command no', 'enable-module-command no'] : [];
  return [
    ...listen,
    `bind ${o.host}`,
    'protected-mode yes',
    'save ""',
    'appendonly no',
    `maxmemory ${o.maxmemory}`,
    'maxmemory-policy noeviction',
    ...lockedDown,
    'user default off',
    runUserRule(o.password, o.keyPatterns),
    '',
  ].join('\n');
}

/** The major version of the redis-server on PATH; refuses one without ACLs (before 6). */
function redisServerMajor(): number {
  let text: string;
  try {
    text = execFileSync('redis-server', ['--version'], { encoding: 'utf8' });
  } catch (err) {
    throw new RunError(
      'setup',
      `cannot start redis-server (${(err as Error).message}); install it (apt-get install redis-server) or pass --redis URL`,
    );
  }
  const m = /v=(\d+)\.(\d+)/.exec(text);
  const major = m ? Number(m[1]) : 0;
  if (major < 6) {
    throw new RunError(
      'setup',
      `redis-server ${m ? `${m[1]}.${m[2]}` : '(unknown version)'} has no ACLs, so every holder of the run's password could administer it; install Redis 6.2 or later, or pass --redis URL`,
    );
  }
  return major;
}

export class PrivateRedis {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    /** The run certificate's PEM, which clients pin (TLS only). */
    readonly ca: string | null,
    private readonly certificate: RunCertificate | undefined,
  ) {}

  static async start(runId: string, host = '127.0.0.1'): Promise<PrivateRedis> {
    const major = redisServerMajor();
    const port = await freePort(host);
    const password = randomBytes(24).toString('hex');
    const certificate = isLoopback(host) ? undefined : RunCertificate.create(host);
    const config = privateRedisConfig({
      host,
      port,
      password,
      keyPatterns: runKeyPatterns(runId),
      maxmemory: process.env.SPARKRING_REDIS_MAXMEMORY || DEFAULT_MAXMEMORY,
      major,
      tls: certificate && { cert: certificate.certFile, key: certificate.keyFile },
    });
    // Tied to this process: a client killed with SIGKILL leaves no redis-server behind.
    const child = spawn(...tiedToThisProcess('redis-server', ['-']), { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin?.on('error', () => undefined); // a redis-server that fails to start closes it early
    child.stdin?.end(config);
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
      certificate?.remove();
      throw new RunError('setup', ready);
    }
    child.stdout?.resume();
    child.stderr?.resume();
    const address = host.includes(':') ? `[${host}]` : host;
    const scheme = certificate ? 'rediss' : 'redis';
    return new PrivateRedis(
      child,
      `${scheme}://${RUN_REDIS_USER}:${password}@${address}:${port}`,
      certificate?.pem ?? null,
      certificate,
    );
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      await new Promise<void>((resolve) => {
        this.child.once('exit', () => resolve());
        this.child.kill('SIGTERM');
        setTimeout(() => this.child.kill('SIGKILL'), 3000).unref();
      });
    }
    this.certificate?.remove();
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
  const own = o.redis ? undefined : await PrivateRedis.start(runId, host);
  const endpoint: RedisEndpoint = own
    ? { url: own.url, stream: runStream(runId), ca: own.ca }
    : { url: o.redis as string, stream: runStream(runId), ca: o.redisCa ?? null };
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
