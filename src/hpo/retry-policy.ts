/**
 * The trial retry rules of a search, in one place (as Ray Train keeps its failure policy in one
 * object). The numbers and decisions live here; each rule names where it is enforced.
 *
 * 1. Lease. A running trial is leased to its executor for `leaseMs`. The agent renews the lease
 *    every `renewEveryMs` (hpo/agent.ts). A lease that runs out means the executor is lost: the
 *    trial goes back to the queue. The queue's Lua scripts make this atomic, and refuse a former
 *    owner's late report (hpo/queue.ts REAP and FINISH).
 * 2. Reaping. The client reaps expired leases every `reapEveryMs` (client/jobs/search.ts), and so does
 *    every agent before it claims a trial. The client also marks itself alive for `clientAliveMs`;
 *    without it, the driver stops waiting for trials that lost their executors (search_rounds.py).
 * 3. Fail elsewhere first. An executor skips a trial that failed on it while other trials wait.
 *    It tries that trial again itself only after `leaseMs` with nothing else to run (`retryHere`;
 *    hpo/queue.ts CLAIM).
 * 4. K attempts. A trial that failed or was lost `maxAttempts` times is failed, with its last
 *    error (hpo/queue.ts FINISH and REAP).
 * 5. Exclusion. An executor that failed `excludeAfter` trials in a row leaves the search, while
 *    another completes its own (`excluded`). When every executor fails, it is the trials that fail,
 *    not the executors (hpo/agent.ts).
 * 6. Rounds. The driver runs rounds of one task per executor until every trial has its final
 *    result. A round in which no trial ran for `idleRoundLeases` leases is cancelled. The search
 *    fails after `maxFailedRounds` rounds that Spark failed (spark-plugin/sparkring/driver/search_rounds.py,
 *    told through the search spec).
 * 7. Spark's own retries. A search task lost with its executor runs again elsewhere, and an
 *    executor that keeps failing tasks is excluded by Spark too (`SEARCH_SPARK_CONF`,
 *    client/submission/spark-submit.ts).
 */

export interface TrialRetryPolicy {
  leaseMs: number;
  /** Tries of one trial, the first included. */
  maxAttempts: number;
  /** Trial failures in a row after which an executor leaves the search. */
  excludeAfter: number;
}

/** How often an agent renews the lease of the trial it runs: several times a lease. */
export const renewEveryMs = (p: TrialRetryPolicy): number => Math.max(50, Math.floor(p.leaseMs / 4));

/** How often the client puts trials with expired leases back in the queue. */
export const reapEveryMs = (p: TrialRetryPolicy): number => Math.max(100, Math.floor(p.leaseMs / 2));

/** How long the client's "alive" mark lasts; it renews the mark as often as it reaps. */
export const clientAliveMs = (p: TrialRetryPolicy): number => p.leaseMs * 3;

/**
 * Whether an executor, which found only trials that failed on it since `onlyOwnFailuresSince`,
 * may now run one of them itself (rule 3).
 */
export function retryHere(p: TrialRetryPolicy, onlyOwnFailuresSince: number | undefined, now: number): boolean {
  return onlyOwnFailuresSince !== undefined && now - onlyOwnFailuresSince > p.leaseMs;
}

/**
 * Whether an executor with `failuresInARow` leaves the search (rule 5): only while another
 * executor has completed a trial, so the executor is at fault and not the trials.
 */
export function excluded(p: TrialRetryPolicy, failuresInARow: number, othersCompleted: boolean): boolean {
  return failuresInARow >= p.excludeAfter && othersCompleted;
}

/** Rule 6, as the search spec tells the driver. */
export const SEARCH_ROUNDS = { maxFailedRounds: 3, idleRoundLeases: 2 } as const;

/** Rule 7: Spark's task retries and executor exclusion for a search's tasks. */
export const SEARCH_SPARK_CONF: Readonly<Record<string, string>> = {
  'spark.excludeOnFailure.enabled': 'true',
  // A lost executor's task runs again elsewhere; only repeated failures of one task end the search.
  'spark.task.maxFailures': '8',
};
