/** A failed run, with one line that says what and where (and the worker's stack when it has one). */
import type { ErrorCode, ErrorKind } from '../errors/codes.js';

export type RunErrorKind = ErrorKind;

export class RunError extends Error {
  override readonly name = 'RunError';
  constructor(
    readonly kind: RunErrorKind,
    message: string,
    readonly detail: {
      /** The cause's code, where the run got as far as a driver or a worker (src/errors/codes.ts). */
      code?: ErrorCode;
      rank?: number;
      /** The failed worker's host, and what it was doing then (runtime/phase.ts), where known. */
      host?: string;
      phase?: string;
      workerStack?: string;
      logTail?: string;
      dir?: string;
      /** A retry would fail the same way: --max-attempts does not retry it. */
      final?: boolean;
    } = {},
  ) {
    super(message);
  }

  /** The cause's code (detail.code). */
  get code(): ErrorCode | undefined {
    return this.detail.code;
  }
}
