/**
 * What every kind's driver result holds (spark-plugin/sparkring/driver/envelope.py `job_envelope` writes
 * it): ok, the application, the Spark versions, and on failure the error report. Each kind adds its
 * own fields to a result that is ok (jobs/<kind>.ts), and `driverResultSchema` makes the two shapes
 * one contract: a result that is ok has every field its kind promises, so the client reads it
 * without a cast. `npm run spec-schema` writes each as <kind>-result.schema.json for pytest.
 */
import { z } from 'zod';

/** The `error` of a failed result (spark-plugin/sparkring/failures.py `error_report`). */
export const driverErrorSchema = z.object({
  code: z.string().optional(),
  kind: z.string(),
  message: z.string(),
  /** Set where a worker failed: the message then names it. */
  rank: z.number().int().optional(),
  /** The failed worker's host and what it was doing (runtime/phase.ts), where known. */
  host: z.string().optional(),
  phase: z.string().optional(),
  stack: z.string().optional(),
  logTail: z.string().optional(),
  detail: z.string().optional(),
});

export const versionsSchema = z.object({
  spark: z.string().optional(),
  python: z.string().optional(),
  master: z.string().optional(),
});

const common = {
  appId: z.string(),
  versions: versionsSchema.optional(),
  /** The driver's whole time, from its session to its result. */
  runMs: z.number().optional(),
};

export const failedDriverResultSchema = z.looseObject({
  ok: z.literal(false),
  ...common,
  /** The run directory, where the kind has one and the driver got as far as making it. */
  dir: z.string().optional(),
  error: driverErrorSchema.optional(),
});

export interface DriverResultBase {
  ok: boolean;
  appId: string;
  dir?: string;
  versions?: z.infer<typeof versionsSchema>;
  error?: z.infer<typeof driverErrorSchema>;
}

/** A kind's driver result: `okFields` when it is ok, the common failed shape when it is not. */
export function driverResultSchema<F extends z.ZodRawShape>(okFields: F) {
  return z.discriminatedUnion('ok', [z.looseObject({ ok: z.literal(true), ...common, ...okFields }), failedDriverResultSchema]);
}
