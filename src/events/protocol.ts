/** Run events: what the driver and the workers append to the run's Redis stream (see redis.ts). */
import { z } from 'zod';

interface Base {
  source: string;
  at: number;
}

export type RunEvent =
  | (Base & { type: 'driver'; stage: string; [k: string]: unknown })
  | (Base & {
      type: 'heartbeat';
      rank: number;
      /** The worker is about to block its event loop (loading TensorFlow): the next one may be this late. */
      busyMs?: number;
    })
  | (Base & { type: 'done'; rank: number })
  | (Base & { type: 'log'; rank: number; line: string; trial?: string })
  | (Base & {
      type: 'metrics';
      rank: number;
      step: number;
      metrics: Record<string, number>;
      samplesPerSec?: number;
      /** Set in a search: the trial that reported (rank is then 0). */
      trial?: string;
      attempt?: number;
    })
  | (Base & {
      type: 'trial';
      stage: 'started' | 'done' | 'requeued' | 'failed' | 'lost' | 'excluded';
      id?: string;
      /** 0 for the trial's first try. */
      attempt?: number;
      executor: string;
      hparams?: Record<string, unknown>;
      metric?: number | null;
      steps?: number;
      stoppedEarly?: boolean;
      error?: string;
      after?: number;
    })
  | (Base & { type: 'ring'; rank: number; formedAt: number })
  | (Base & {
      type: 'backend';
      rank: number;
      /** `tensorflow 2.21.0 cpu`, `tensorflow 2.21.0 gpu`, `wasm` or `cpu` (runtime/backend.ts). */
      backend: string;
      flavour?: string;
      threads?: number | null;
      library?: string | null;
      /** Why a native backend was not used, and what that costs (--tf-backend auto). */
      fallback?: string | null;
    })
  | (Base & {
      type: 'error';
      rank: number;
      message: string;
      stack?: string;
      /** The error's name (UnevenStepsError, PeerFailedError...), for people. */
      name?: string;
      /** Its code (src/errors/codes.ts): the client decides by it, not by the message. */
      code?: string;
    });

// ---- validation: every event read from Redis is checked before use ---------------------------
// A Redis shared with others (--redis) may hold anything under the run's key; an event that does
// not fit its type is dropped, never acted on.

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
    after: z.number().nullish(),
  }),
  z.object({ ...base, type: z.literal('ring'), rank, formedAt: z.number() }),
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
  }),
]);

/** The event in a stream entry's JSON, or undefined when it is not one (malformed, forged, unknown). */
export function parseRunEvent(json: string): RunEvent | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return undefined;
  }
  const parsed = runEventSchema.safeParse(raw);
  return parsed.success ? (parsed.data as RunEvent) : undefined;
}
