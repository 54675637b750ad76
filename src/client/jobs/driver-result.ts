/**
 * The driver's result: the file it wrote on this machine (client mode), or, when the driver ran
 * elsewhere (a Livy batch or YARN in cluster mode), the copy it put in its last event on the run's
 * stream. A copy from the stream counts only when its entry is signed with the run's events key and
 * the result proves the run's result key (an HMAC of its JSON, spark-plugin/sparkring/driver/driver_events.py
 * signed_result): a Redis shared with others cannot hand the client a result, nor the directory it
 * then writes to, nor bury the real one under entries of its own.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { macMatches, runKey } from '../../events/keys.js';
import { signedEvent } from '../../events/protocol.js';
import { connectRedis, type RedisEndpoint } from '../../events/redis.js';
import { RunError } from '../errors.js';

/** The result's JSON when `proof` is its HMAC-SHA256 under the run's result key (events/keys.ts). */
export function provenResult(secret: string, resultJson: unknown, proof: unknown): unknown {
  if (typeof resultJson !== 'string' || !macMatches(runKey(secret, 'result'), resultJson, proof)) return undefined;
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

const PAGE = 1000;

async function readRawResult(resultPath: string, stream: RedisEndpoint, secret: string): Promise<unknown> {
  if (existsSync(resultPath)) return JSON.parse(await readFile(resultPath, 'utf8')) as unknown;
  const redis = connectRedis(stream, { maxRetriesPerRequest: 2 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    // From the newest entry back, a page at a time, however many entries follow the driver's last.
    const events = runKey(secret, 'events');
    let end = '+';
    for (;;) {
      const page = await redis.xrevrange(stream.stream, end, '-', 'COUNT', PAGE);
      for (const [, fields] of page) {
        const e = signedEvent(events, fields);
        if (e?.type !== 'driver' || e.stage !== 'done') continue;
        const result = provenResult(secret, e.resultJson, e.proof);
        if (typeof result === 'object' && result !== null) return result;
      }
      if (page.length < PAGE) return undefined;
      end = `(${(page.at(-1) as [string, string[]])[0]}`;
    }
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}
