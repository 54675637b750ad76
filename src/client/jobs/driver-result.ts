/**
 * The driver's result: the file it wrote on this machine (client mode), or, when the driver ran
 * elsewhere (a Livy batch or YARN in cluster mode), the copy it put in its last event on the run's
 * stream. A copy from the stream counts only when it proves the run's secret (an HMAC of its JSON,
 * spark-plugin/sparkring/driver/driver_events.py signed_result): a Redis shared with others cannot hand the
 * client a result, nor the directory it then writes to.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { parseRunEvent } from '../../events/protocol.js';
import { connectRedis, type RedisEndpoint } from '../../events/redis.js';
import { RunError } from '../errors.js';

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

/**
 * The driver's result, checked against its kind's contract (jobs/driver-result-base.ts): a result
 * that breaks it is a sparkring bug between the two sides, and says which field.
 */
export async function readDriverResult<T>(
  schema: z.ZodType<T>,
  resultPath: string,
  stream: RedisEndpoint,
  secret: string,
): Promise<T | undefined> {
  const raw = await readRawResult(resultPath, stream, secret);
  if (raw === undefined) return undefined;
  const parsed = schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  throw new RunError(
    'spark',
    `the driver's result breaks its contract, a sparkring bug: ${z.prettifyError(parsed.error).replaceAll('\n', '; ')}`,
    { code: 'SR_SPARK' },
  );
}

async function readRawResult(resultPath: string, stream: RedisEndpoint, secret: string): Promise<unknown> {
  if (existsSync(resultPath)) return JSON.parse(await readFile(resultPath, 'utf8')) as unknown;
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
      if (typeof result === 'object' && result !== null) return result;
    }
    return undefined;
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}
