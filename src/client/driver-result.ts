/**
 * The driver's result: the file it wrote on this machine (client mode), or, when the driver ran
 * elsewhere (a Livy batch or YARN in cluster mode), the copy it put in its last event on the run's stream.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { RunEvent } from '../events/protocol.js';
import { connectRedis, type RedisEndpoint } from '../events/redis.js';

export async function readDriverResult<T>(resultPath: string, stream: RedisEndpoint): Promise<T | undefined> {
  if (existsSync(resultPath)) return JSON.parse(await readFile(resultPath, 'utf8')) as T;
  const redis = connectRedis(stream, { maxRetriesPerRequest: 2 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    const entries = await redis.xrevrange(stream.stream, '+', '-', 'COUNT', 200);
    for (const [, fields] of entries) {
      const at = fields.indexOf('e');
      if (at < 0) continue;
      const e = JSON.parse(fields[at + 1] as string) as RunEvent;
      if (e.type === 'driver' && e.stage === 'done' && typeof e.result === 'object' && e.result !== null) return e.result as T;
    }
    return undefined;
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}
