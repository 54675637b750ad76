/**
 * The client's side of a run whose Spark driver is the caller's own Python process (the Python
 * API, spark-plugin/sparkring/api.py): the one envelope of every job kind (client/jobs/run-job.ts)
 * up to its spec; the caller's process is the driver. Protocol: JSON lines, Python's on stdin, ours on stdout.
 *
 *   python → node   {"type":"options", "job": "train" | "search" | ..., "options": {...the kind's options}}
 *   node → python   {"type":"line", "line"} (progress and worker logs), {"type":"event", "event"}
 *                   (metrics and driver events, for a notebook's table)
 *   node → python   {"type":"spec", "path", "archive"}: the job spec the caller's driver runs (lifecycle.py),
 *                   and the runtime archive (path#name) it adds to its session when the run ships one
 *                   (options.ship: the executors are not on this machine), else null
 *   python → node   {"type":"ran"} once its run_job returned (or {"type":"abandoned"})
 *   node → python   {"type":"result", "result"} or {"type":"error", "error": {kind, code, message, ...}}
 *
 * A closed stdin before "ran" abandons the run: its Redis and staging are cleaned up all the same.
 * A closed stdin before "options" ends a session quietly: the caller's spare, not needed.
 */
import { createInterface } from 'node:readline';
import { z } from 'zod';
import type { RunEvent } from '../../events/protocol.js';
import { RunError } from '../errors.js';
import { JOB_KINDS, type JobKindName } from './index.js';
import type { AnyJobKind } from './kind.js';
import { openJob } from './run-job.js';

const fromCaller = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('options'),
    job: z.enum(Object.keys(JOB_KINDS) as [JobKindName, ...JobKindName[]]).default('train'),
    options: z.record(z.string(), z.unknown()),
  }),
  z.object({ type: z.literal('ran') }),
  z.object({ type: z.literal('abandoned') }),
]);
type FromCaller = z.infer<typeof fromCaller>;

/** Options the caller may not set: its own driver reads the data and is already running. */
const NOT_FROM_CALLER = ['data', 'livy', 'queue'] as const;

export async function runSession(input: NodeJS.ReadableStream, output: NodeJS.WritableStream): Promise<number> {
  const send = (message: Record<string, unknown>): void => {
    output.write(`${JSON.stringify(message)}\n`);
  };
  const lines = createInterface({ input })[Symbol.asyncIterator]();
  const next = async (): Promise<FromCaller | undefined> => {
    const line = await lines.next();
    if (line.done) return undefined;
    return fromCaller.parse(JSON.parse(line.value));
  };
  try {
    const first = await next();
    if (first === undefined) return 0; // a spare the caller did not need (api.py keeps one ready)
    if (first.type !== 'options') throw new RunError('input', 'the session needs its options first');
    const options = { ...first.options } as Record<string, unknown>;
    for (const key of NOT_FROM_CALLER) delete options[key];
    const relayed = {
      ...options,
      ship: options.ship === true,
      onProgress: (line: string) => send({ type: 'line', line }),
      onEvent: (event: RunEvent) => {
        if (event.type === 'metrics' || event.type === 'driver' || event.type === 'trial') send({ type: 'event', event });
      },
    };
    const job = await openJob(JOB_KINDS[first.job] as AnyJobKind, relayed, false);
    try {
      const startedAt = Date.now();
      send({ type: 'spec', path: job.specPath, archive: job.run.bundle?.archive ?? null });
      const ran = await next();
      if (ran?.type !== 'ran') throw new RunError('input', 'the caller abandoned the run before its driver finished');
      send({ type: 'result', result: await job.finish(startedAt) });
    } finally {
      await job.close();
    }
    return 0;
  } catch (err) {
    send({ type: 'error', error: errorMessage(err) });
    return 1;
  }
}

function errorMessage(err: unknown): Record<string, unknown> {
  if (err instanceof RunError) {
    const d = err.detail;
    return {
      kind: err.kind,
      message: err.message,
      code: d.code,
      rank: d.rank,
      stack: d.workerStack,
      logTail: d.logTail,
      dir: d.dir,
    };
  }
  if (err instanceof z.ZodError) return { kind: 'input', message: `bad session message: ${z.prettifyError(err)}` };
  return { kind: 'spark', message: err instanceof Error ? err.message : String(err) };
}
