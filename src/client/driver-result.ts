/**
 * The driver's result: the file it wrote on this machine (client mode), or, when the driver ran
 * elsewhere (a Livy batch or YARN in cluster mode), the copy it put in its last event on the run's
 * stream. A copy from the stream counts only when it proves the run's secret (an HMAC of its JSON,
 * spark-plugin/sparkring/events.py signed_result): a Redis shared with others cannot hand the
 * client a result, nor the directory it then writes to.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { parseRunEvent } from '../events/protocol.js';
import { connectRedis, type RedisEndpoint } from '../events/redis.js';

/** The result's JSON when `proof` is its HMAC-SHA256 under `secret`. */
export function provenResult(secret: string, resultJson: unknown, proof: unknown): unknown {
  if (typeof resultJson !== 'string' || typeof proof !== 'string') return undefined;
  const expected = createHmac('sha256', secret).update(resultJson).digest();
  const given = Buffer.from(proof, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  try {
    return JSON.parse(resultJson) as unknown;
  } catch {
    return undefined;
  }
}

export async function readDriverResult<T>(resultPath: string, stream: RedisEndpoint, secret: string): Promise<T | undefined> {
  if (existsSync(resultPath)) return JSON.parse(await readFile(resultPath, 'utf8')) as T;
  const redis = connectRedis(stream, { maxRetriesPerRequest: 2 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    const entries = await redis.xrevrange(stream.stream, '+', '-', 'COUNT', 200);
    for (const [, fields] of entries) {
      const at = fields.indexOf('e');
      const e = at >= 0 ? parseRunEvent(String(fields[at + 1])) : undefined;
      if (e?.type !== 'driver' || e.stage !== 'done') continue;
      const result = provenResult(secret, e.resultJson, e.proof);
      if (typeof result === 'object' && result !== null) return result as T;
    }
    return undefined;
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}
