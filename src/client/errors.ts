/** A failed run, with one line that says what and where (and the worker's stack when it has one). */
export type RunErrorKind = 'setup' | 'input' | 'slots' | 'worker' | 'spark' | 'job';

export class RunError extends Error {
  override readonly name = 'RunError';
  constructor(
    readonly kind: RunErrorKind,
    message: string,
    readonly detail: {
      rank?: number;
      workerStack?: string;
      logTail?: string;
      dir?: string;
      /** A retry would fail the same way (the ranks took different numbers of steps). */
      final?: boolean;
    } = {},
  ) {
    super(message);
  }
}
