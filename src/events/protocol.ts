/** Run events: what the driver and the workers append to the run's Redis stream (see redis.ts). */
import { z } from 'zod';
import { macMatches } from './keys.js';

// Every event read from Redis is checked before use: a Redis shared with others (--redis) may hold
// anything under the run's key; an event that does not fit its type is dropped, never acted on.

const rank = z.number().int().nonnegative();
const base = { source: z.string().optional(), at: z.number().optional() };

/** Trial ids name folders (trial-<id>): letters, digits, '.', '_' and '-', and not only dots. */
export const TRIAL_ID = /^(?!\.+$)[A-Za-z0-9._-]{1,64}$/;
const trialId = z.string().regex(TRIAL_ID);

const runEventSchema = z.discriminatedUnion('type', [
  z.looseObject({ ...base, type: z.literal('driver'), stage: z.string() }),
  z.object({ ...base, type: z.literal('heartbeat'), rank, busyMs: z.number().nonnegative().max(600_000).optional() }),
  z.object({ ...base, type: z.literal('done'), rank }),
  z.object({ ...base, type: z.literal('log'), rank, line: z.string(), trial: trialId.optional() }),
  z.object({
    ...base,
    type: z.literal('metrics'),
    rank,
    step: z.number(),
    // JSON has no NaN: a NaN metric arrives as null.
    metrics: z.record(z.string(), z.number().nullable()),
    samplesPerSec: z.number().nullish(),
    trial: trialId.optional(),
    attempt: z.number().optional(),
  }),
  z.object({
    ...base,
    type: z.literal('trial'),
    stage: z.enum(['started', 'done', 'requeued', 'failed', 'lost', 'excluded']),
    id: trialId.optional(),
    attempt: z.number().nullish(),
    executor: z.string(),
    hparams: z.record(z.string(), z.unknown()).optional(),
    metric: z.number().nullish(),
    steps: z.number().nullish(),
    stoppedEarly: z.boolean().optional(),
    error: z.string().nullish(),
    /** A failed try's stack, where the trial threw. */
    stack: z.string().nullish(),
    after: z.number().nullish(),
  }),
  z.object({ ...base, type: z.literal('ring'), rank, formedAt: z.number() }),
  // The ranks' rendezvous before the ring forms (spark-plugin/sparkring/executor/rendezvous.py):
  // read by the ranks alone; kept here so that a reader does not take them for junk and delete them.
  z.object({ ...base, type: z.literal('rendezvous'), rank, note: z.string() }),
  z.object({ ...base, type: z.literal('rendezvous-ack'), rank, tids: z.array(z.number().int()) }),
  z.object({
    ...base,
    type: z.literal('backend'),
    rank,
    backend: z.string(),
    flavour: z.string().optional(),
    threads: z.number().nullish(),
    library: z.string().nullish(),
    fallback: z.string().nullish(),
  }),
  z.object({
    ...base,
    type: z.literal('error'),
    rank,
    message: z.string(),
    stack: z.string().nullish(),
    name: z.string().nullish(),
    code: z.string().nullish(),
    /** What the worker was doing (runtime/phase.ts). */
    phase: z.string().nullish(),
  }),
]);

/** One run event, as read back from the stream: the type is the schema's (one declaration). */
export type RunEvent = z.infer<typeof runEventSchema>;
export type RunEventType = RunEvent['type'];

/** What a sender gives for an event of `type`: its fields, without those every event carries. */
export type RunEventFields<T extends RunEventType> = Omit<Extract<RunEvent, { type: T }>, 'type' | 'source' | 'at'>;

/** The event in a stream entry's JSON, or undefined when it is not one (malformed, forged, unknown). */
export function parseRunEvent(json: string): RunEvent | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return undefined;
  }
  const parsed = runEventSchema.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}

/**
 * The event in a stream entry's fields (`e`, and `m` its MAC under the run's events key, keys.ts),
 * or undefined when it is unsigned, forged or malformed.
 */
export function signedEvent(key: Buffer, fields: string[]): RunEvent | undefined {
  const at = fields.indexOf('e');
  const signedAt = fields.indexOf('m');
  if (at < 0 || signedAt < 0) return undefined;
  const text = String(fields[at + 1]);
  return macMatches(key, text, fields[signedAt + 1]) ? parseRunEvent(text) : undefined;
}
