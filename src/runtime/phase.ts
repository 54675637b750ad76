/**
 * What a worker is doing, for its error: formation (the ring), data (the partition coming in),
 * training (train()), checkpoint (a checkpoint being written), result (the ranks agreeing that they
 * finished), teardown (links and streams closing). The control channel says each change to the
 * task (runtime/control.ts `phase`), so that a worker killed outright is still placed by its task.
 * Phases that could wait without end on something outside the ring (a file system, a stream) run
 * under a deadline here; the ring's own waits have the ring's timeouts.
 */
export type Phase = 'start' | 'formation' | 'data' | 'training' | 'checkpoint' | 'result' | 'teardown';

/** A checkpoint write (a file system that stopped answering) ends the worker after this long. */
export const CHECKPOINT_DEADLINE_MS = 120_000;
/** Closing links and streams once the result is sent: past this, the worker exits regardless. */
export const TEARDOWN_DEADLINE_MS = 10_000;

export class PhaseTimeoutError extends Error {
  readonly code = 'SR_PHASE_TIMEOUT';
  constructor(
    readonly phase: Phase,
    ms: number,
  ) {
    super(`${phase} did not end within its deadline of ${ms / 1000} s; a retry starts from the last checkpoint`);
    this.name = 'PhaseTimeoutError';
  }
}

let current: Phase = 'start';
let onChange: (phase: Phase) => void = () => undefined;

export const phases = {
  get current(): Phase {
    return current;
  },
  /** Called with each new phase (the worker tells its task). */
  follow(listener: (phase: Phase) => void): void {
    onChange = listener;
  },
  enter(phase: Phase): void {
    if (phase === current) return;
    current = phase;
    onChange(phase);
  },
};

/**
 * `work` as phase `phase`, failing with PhaseTimeoutError after `ms` (the work itself cannot be
 * stopped: the worker ends on the error); the phase before it comes back once it settles.
 */
export async function during<T>(phase: Phase, ms: number, work: () => Promise<T>): Promise<T> {
  const before = current;
  phases.enter(phase);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new PhaseTimeoutError(phase, ms)), ms);
        timer.unref();
      }),
    ]);
  } finally {
    clearTimeout(timer);
    phases.enter(before);
  }
}
