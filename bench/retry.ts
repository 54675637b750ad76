/**
 * Retry: the time from a failed attempt to the next attempt's ring, now that the driver retries in
 * the same Spark application, beside what the client's resubmission cost before (a new
 * spark-submit, measured in the same run as a fresh submission's submit-to-ring plus the failed
 * application's teardown, from its driver's last event to spark-submit's exit).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunError } from '../src/client/errors.js';
import { allreduce } from '../src/client/jobs/train.js';
import type { RunEvent } from '../src/events/protocol.js';
import { packageFile } from '../src/util/package-file.js';
import { median, noopEntry } from './lib/spark.js';

const failOnce = (): string => packageFile('bench/entries/fail-once.mjs');

/** ms from the driver's `retry` event (the failure) to the last rank joining the next attempt's ring. */
async function sameApplicationRetry(workers: number, experiments: string): Promise<number> {
  let failedAt: number | undefined;
  let retried = false;
  const joined: number[] = [];
  const run = await allreduce({
    entry: failOnce(),
    workers,
    experiments,
    name: 'retry',
    maxAttempts: 2,
    onProgress: () => undefined,
    onEvent: (e: RunEvent) => {
      if (e.type === 'driver' && e.stage === 'retry') {
        failedAt = Number(e.failedAt);
        retried = true;
      } else if (e.type === 'ring' && retried) joined.push(e.formedAt);
    },
  });
  if (run.attempts !== 2 || failedAt === undefined || joined.length < workers)
    throw new Error(`the retry bench run made ${run.attempts} attempts; it needs 2`);
  return Math.max(...joined) - failedAt;
}

/** What a resubmission took: the failed application's teardown, then a new one's submit to ring. */
async function resubmission(workers: number, experiments: string): Promise<{ teardownMs: number; submitToRingMs: number }> {
  let doneAt: number | undefined;
  const started = Date.now();
  try {
    await allreduce({
      entry: failOnce(),
      workers,
      experiments,
      name: 'fail',
      onProgress: () => undefined,
      onEvent: (e: RunEvent) => {
        if (e.type === 'driver' && e.stage === 'done') doneAt = e.at ?? Date.now();
      },
    });
    throw new Error('the failing run succeeded');
  } catch (err) {
    if (!(err instanceof RunError)) throw err;
  }
  const teardownMs = Date.now() - (doneAt ?? started);
  const fresh = await allreduce({ entry: noopEntry(), workers, experiments, name: 'fresh', onProgress: () => undefined });
  return { teardownMs, submitToRingMs: fresh.timings.submitToRingMs };
}

export async function retryBench(o: { workers: number; rounds: number }, progress: (l: string) => void) {
  const experiments = await mkdtemp(join(tmpdir(), 'sparkring-retry-'));
  const same: number[] = [];
  const resubmit: number[] = [];
  for (let round = 0; round < o.rounds; round++) {
    same.push(await sameApplicationRetry(o.workers, experiments));
    const r = await resubmission(o.workers, experiments);
    resubmit.push(r.teardownMs + r.submitToRingMs);
    progress(
      `round ${round + 1}: retry in the same application ${same.at(-1)} ms; resubmission ${resubmit.at(-1)} ms (teardown ${r.teardownMs} + submit to ring ${r.submitToRingMs})`,
    );
  }
  const sameMs = median(same);
  const resubmitMs = median(resubmit);
  return {
    bench: 'retry',
    workers: o.workers,
    master: `local-cluster[${o.workers},1,1024]`,
    rounds: o.rounds,
    same_application_ms: sameMs,
    resubmission_ms: resubmitMs,
    saved_ms: resubmitMs - sameMs,
    samples: { same_application: same, resubmission: resubmit },
  };
}
