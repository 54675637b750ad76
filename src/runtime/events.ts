/**
 * The worker's side of the run events: metrics, logs and heartbeats appended to the run's Redis
 * stream. Best effort and never awaited by training; while Redis restarts, ioredis queues the
 * entries and sends them once it is back.
 */
import type { Redis } from 'ioredis';
import { connectRedis, type RedisEndpoint } from '../events/redis.js';

const HEARTBEAT_MS = 2000;
const MAX_STREAM_LENGTH = 1_000_000;

export class EventSender {
  private heartbeat: NodeJS.Timeout | undefined;

  private constructor(
    private readonly redis: Redis | undefined,
    private readonly stream: string,
    private readonly source: string,
    private readonly attempt: number,
  ) {}

  /**
   * Every event carries the attempt that sent it: a failed attempt's worker may still be sending as
   * the next attempt's watch starts, and its heartbeats must not stand for the new worker of its rank.
   */
  static async connect(
    endpoint: RedisEndpoint | null | undefined,
    source: string,
    rank: number,
    attempt: number,
  ): Promise<EventSender> {
    if (!endpoint) return new EventSender(undefined, '', source, attempt);
    const redis = connectRedis(endpoint, { maxRetriesPerRequest: null });
    redis.on('error', () => undefined); // reconnects by itself; entries wait in its offline queue
    redis.connect().catch(() => undefined);
    const sender = new EventSender(redis, endpoint.stream, source, attempt);
    sender.heartbeat = setInterval(() => sender.send('heartbeat', { rank }), HEARTBEAT_MS);
    sender.heartbeat.unref();
    sender.send('heartbeat', { rank });
    return sender;
  }

  send(type: string, fields: Record<string, unknown>): void {
    void this.append(type, fields);
  }

  /** Appends one event; settles once Redis has it (or the try failed). */
  private async append(type: string, fields: Record<string, unknown>): Promise<void> {
    if (!this.redis) return;
    const event = JSON.stringify({ type, source: this.source, at: Date.now(), attempt: this.attempt, ...fields });
    await this.redis.xadd(this.stream, 'MAXLEN', '~', MAX_STREAM_LENGTH, '*', 'e', event).catch(() => undefined);
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
        const at = fields.indexOf('e');
        const e = at >= 0 ? (JSON.parse(fields[at + 1] as string) as { type?: string; rank?: number; step?: number }) : {};
        if (e.type === 'metrics' && e.rank === rank && (e.step ?? 0) > afterStep) stale.push(id);
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
    if (!this.redis) return;
    const r = this.redis;
    await Promise.race([r.quit().catch(() => undefined), new Promise((done) => setTimeout(done, 3000).unref())]);
    r.disconnect();
  }
}
