/**
 * The one typed sender of run events (protocol.ts `RunEvent`), for every Node process that appends
 * to the run's Redis stream: a training worker (metrics, logs, heartbeats; runtime/main.ts), a
 * search agent (trials, and its trials' metrics and logs; hpo/agent.ts). Best effort and never
 * awaited by training; while Redis restarts, ioredis queues the entries and sends them once it is back.
 */
import type { Redis } from 'ioredis';
import { mac, runKey } from './keys.js';
import { type RunEventFields, type RunEventType, signedEvent } from './protocol.js';
import { connectRedis, type RedisEndpoint } from './redis.js';

const HEARTBEAT_MS = 2000;
const MAX_STREAM_LENGTH = 1_000_000;

export class EventSender {
  private heartbeat: NodeJS.Timeout | undefined;

  private constructor(
    private readonly redis: Redis | undefined,
    /** The run's events key (keys.ts): every entry carries its MAC, which readers check. */
    private readonly key: Buffer,
    private readonly stream: string,
    private readonly source: string,
    private readonly attempt: number | undefined,
    /** Whether close() ends the connection: not one the caller lent (`over`). */
    private readonly owns: boolean,
  ) {}

  /** A sender over the caller's own connection (a search agent's, shared with its trial queue); no heartbeat. */
  static over(redis: Redis, key: Buffer, stream: string, source: string): EventSender {
    return new EventSender(redis, key, stream, source, undefined, false);
  }

  /**
   * Every event carries the attempt that sent it: a failed attempt's worker may still be sending as
   * the next attempt's watch starts, and its heartbeats must not stand for the new worker of its rank.
   */
  static async connect(
    endpoint: RedisEndpoint | null | undefined,
    secret: string,
    source: string,
    rank: number,
    attempt: number,
  ): Promise<EventSender> {
    const key = runKey(secret, 'events');
    if (!endpoint) return new EventSender(undefined, key, '', source, attempt, true);
    const redis = connectRedis(endpoint, { maxRetriesPerRequest: null });
    redis.on('error', () => undefined); // reconnects by itself; entries wait in its offline queue
    redis.connect().catch(() => undefined);
    const sender = new EventSender(redis, key, endpoint.stream, source, attempt, true);
    sender.heartbeat = setInterval(() => sender.send('heartbeat', { rank }), HEARTBEAT_MS);
    sender.heartbeat.unref();
    sender.send('heartbeat', { rank });
    return sender;
  }

  send<T extends RunEventType>(type: T, fields: RunEventFields<T>): void {
    void this.append(type, fields);
  }

  /** Appends one event; settles once Redis has it (or the try failed). */
  private async append<T extends RunEventType>(type: T, fields: RunEventFields<T>): Promise<void> {
    if (!this.redis) return;
    const event = JSON.stringify({ type, source: this.source, at: Date.now(), attempt: this.attempt, ...fields });
    await this.redis
      .xadd(this.stream, 'MAXLEN', '~', MAX_STREAM_LENGTH, '*', 'e', event, 'm', mac(this.key, event))
      .catch(() => undefined);
  }

  /**
   * Says, and waits (at most `waitMs`) until Redis has it, that this worker is about to block its
   * event loop for up to `busyMs` (loading TensorFlow: mapping and initialising its 790 MB library
   * took seconds on a cold, busy machine), so that no heartbeat timeout shorter than that fails it.
   */
  async busy(rank: number, busyMs: number, waitMs = 2000): Promise<void> {
    await Promise.race([this.append('heartbeat', { rank, busyMs }), new Promise((done) => setTimeout(done, waitMs).unref())]);
  }

  /**
   * Takes this rank's metrics after `afterStep` out of the stream: a retried attempt resumes from
   * the checkpoint taken at that step and reports those steps again, so each stays once.
   */
  async retractMetrics(rank: number, afterStep: number): Promise<number> {
    if (!this.redis) return 0;
    const stale: string[] = [];
    let start = '-';
    for (;;) {
      const page = (await this.redis.xrange(this.stream, start, '+', 'COUNT', 1000)) as Array<[string, string[]]>;
      for (const [id, fields] of page) {
        // The run's own signed entries only: a shared Redis's others are not ours to read or delete.
        const e = signedEvent(this.key, fields);
        if (e?.type === 'metrics' && e.rank === rank && e.step > afterStep) stale.push(id);
      }
      if (page.length < 1000) break;
      start = `(${(page.at(-1) as [string, string[]])[0]}`;
    }
    if (stale.length > 0) await this.redis.xdel(this.stream, ...stale);
    return stale.length;
  }

  /** Stops the heartbeat and waits (a little) for queued entries to reach Redis. */
  async close(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (!this.redis || !this.owns) return;
    const r = this.redis;
    await Promise.race([r.quit().catch(() => undefined), new Promise((done) => setTimeout(done, 3000).unref())]);
    r.disconnect();
  }
}
