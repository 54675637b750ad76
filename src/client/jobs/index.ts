/** The job kinds, by the name a spec, a session message and a run's spec.json give them. */
import { z } from 'zod';
import type { AnyJobKind } from './kind.js';
import { predictJob } from './predict.js';
import { searchJob } from './search.js';
import { trainJob } from './train.js';

export const JOB_KINDS = { train: trainJob, search: searchJob, predict: predictJob } as const satisfies Record<
  string,
  AnyJobKind
>;
export type JobKindName = keyof typeof JOB_KINDS;

/** The driver results' JSON Schemas, as spark-plugin/sparkring/<kind>-result.schema.json holds them (pytest checks the drivers against them). */
export function resultJsonSchemas(): Record<string, Record<string, unknown>> {
  return Object.fromEntries(
    Object.values(JOB_KINDS).map((k) => [
      `${k.kind}-result`,
      z.toJSONSchema(k.result, { io: 'input' }) as Record<string, unknown>,
    ]),
  );
}
