/**
 * Run events on Redis: one stream per run (XADD by the driver and the workers, XREAD by the
 * client), so progress reaches the client however it reaches the cluster (Livy included).
 */
import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';

export interface RedisEndpoint {
  /** redis://[:password@]host:port[/db] or rediss:// (TLS). */
  url: string;
  /** The run's stream key. */
  stream: string;
  /**
   * The CA that signed the server's certificate (rediss:// with a private CA): a PEM file's path,
   * or the PEM itself (a private Redis's own run certificate, which the spec carries).
   */
  ca?: string | null;
}

export const runStream = (runId: string): string => `sparkring:run:${runId}:events`;

/** Shows a Redis URL without its password. */
export const redactUrl = (url: string): string =>
  url.replace(/\/\/([^@/]*)@/, (_m, auth: string) => `//${auth.includes(':') ? `${auth.split(':')[0]}:***` : '***'}@`);

const isPem = (ca: string): boolean => ca.startsWith('-----BEGIN');

export function connectRedis(e: { url: string; ca?: string | null }, extra: RedisOptions = {}): Redis {
  const tls = e.url.startsWith('rediss://') ? { tls: e.ca ? { ca: isPem(e.ca) ? e.ca : readFileSync(e.ca) } : {} } : {};
  // disconnect() half-closes and waits up to disconnectTimeout for the socket's close, with a
  // timer that holds a process that is otherwise done (2 s by default): nothing is left to read then.
  return new Redis(e.url, { lazyConnect: true, disconnectTimeout: 50, ...tls, ...extra });
}

/** Resolves when Redis answers PING; rejects with the reason otherwise (no retries). */
export async function pingRedis(e: { url: string; ca?: string | null }, timeoutMs = 5000): Promise<void> {
  const r = connectRedis(e, {
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: timeoutMs,
    enableOfflineQueue: false,
  });
  r.on('error', () => undefined);
  try {
    await r.connect();
    await r.ping();
  } finally {
    r.disconnect();
  }
}
