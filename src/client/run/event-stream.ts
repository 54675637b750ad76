/**
 * Follows a run's Redis stream (XREAD BLOCK from the last id seen), surviving Redis restarts. Only
 * entries signed with the run's events key (events/keys.ts) count: a Redis shared with others may
 * hold anything under the run's key. The others are deleted as they are read, so whoever filled the
 * run's stream (and with it a private Redis's memory cap) does not keep the run's own events out.
 */
import type { Redis } from 'ioredis';
import { type RunEvent, signedEvent } from '../../events/protocol.js';
import { connectRedis, type RedisEndpoint } from '../../events/redis.js';

export class EventFollower {
  private stopped = false;
  private lastId = '0-0';
  private readonly redis: Redis;
  private readonly loop: Promise<void>;
  private toldMalformed = false;
  /** An event that was not one (malformed or forged), said once. */
  onIgnored: ((message: string) => void) | undefined;
  /** Connection problems while following, for the client to show once. */
  onTrouble: ((message: string) => void) | undefined;

  constructor(
    private readonly endpoint: RedisEndpoint,
    private readonly key: Buffer,
    private readonly onEvent: (e: RunEvent) => void,
  ) {
    this.redis = connectRedis(endpoint, { maxRetriesPerRequest: null });
    this.redis.on('error', (err: Error) => this.onTrouble?.(err.message));
    this.loop = this.follow();
  }

  private async follow(): Promise<void> {
    await this.redis.connect().catch(() => undefined);
    while (!this.stopped) {
      try {
        const res = (await this.redis.xread('COUNT', 1000, 'BLOCK', 500, 'STREAMS', this.endpoint.stream, this.lastId)) as Array<
          [string, Array<[string, string[]]>]
        > | null;
        const forged: string[] = [];
        for (const [, entries] of res ?? []) {
          for (const [id, fields] of entries) {
            this.lastId = id;
            const e = signedEvent(this.key, fields);
            if (e) this.onEvent(e);
            else forged.push(id);
          }
        }
        if (forged.length > 0) await this.dropForged(forged);
      } catch {
        if (!this.stopped) await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  private async dropForged(ids: string[]): Promise<void> {
    if (!this.toldMalformed) {
      this.toldMalformed = true;
      this.onIgnored?.(
        `ignored an unsigned or malformed event (${ids[0]}) on the run's stream, and deleted it; later ones are deleted silently`,
      );
    }
    await this.redis.xdel(this.endpoint.stream, ...ids).catch(() => undefined);
  }

  /**
   * Reads what is left in the stream, then stops. `lastRead`: the driver's last event was read
   * already, so nothing is left to wait for: it stops at once.
   */
  async stop(lastRead = false): Promise<void> {
    if (!lastRead) await new Promise((r) => setTimeout(r, 600));
    this.stopped = true;
    if (lastRead) this.redis.disconnect(); // ends the pending XREAD BLOCK now
    await this.loop;
    this.redis.disconnect();
  }
}
