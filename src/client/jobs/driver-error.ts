/**
 * The client's reading of a failed driver result: the error's code decides its kind and whether
 * another attempt can help (src/errors/codes.ts), never its message text. A driver error without a
 * known code is a sparkring bug and says so.
 */
import { ERROR_CODES, type ErrorCode, isErrorCode } from '../../errors/codes.js';
import { RunError } from '../errors.js';

/** The `error` of a driver's result (spark-plugin/sparkring/failures.py `error_report`). */
export interface DriverError {
  code?: string;
  kind: string;
  message: string;
  /** Set where a worker failed: the message then names it. */
  rank?: number;
  host?: string;
  phase?: string;
  stack?: string;
  logTail?: string;
  detail?: string;
}

/** A worker's `error` event, as the client heard it (client/run/progress.ts). */
export interface HeardError {
  rank: number;
  message: string;
  stack?: string;
  code?: string;
  phase?: string;
}

/** ` (on host H, during training)`, where known. */
function where(host: string | undefined, phase: string | undefined): string {
  const parts = [host ? `on host ${host}` : '', phase ? `during ${phase}` : ''].filter(Boolean);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

export function driverError(e: DriverError, heard: readonly HeardError[], dir?: string): RunError {
  if (!isErrorCode(e.code)) {
    return new RunError(
      'spark',
      `the driver reported an error without a known code (${e.code ?? 'none'}), a sparkring bug: ${e.message}`,
      { dir },
    );
  }
  const finalHeard = heard.some((x) => isErrorCode(x.code) && ERROR_CODES[x.code].final);
  if (e.rank === undefined || e.code === 'SR_WORKER_SILENT' || e.code === 'SR_HOST_LOST') {
    // A silent worker's or a lost host's line names it already; the others' errors came after.
    const rule = ERROR_CODES[e.code];
    return new RunError(rule.kind, e.message, {
      dir,
      code: e.code,
      final: rule.final || finalHeard,
      rank: e.rank,
      host: e.host,
      phase: e.phase,
    });
  }
  // Prefer the worker that failed first over the ones that lost it as a peer.
  const root = heard.find((x) => x.code !== 'SR_PEER_LOST');
  const code: ErrorCode = root && isErrorCode(root.code) ? root.code : e.code;
  const rule = ERROR_CODES[code];
  const rank = root?.rank ?? e.rank;
  // The driver's host and phase are of its rank's failure; a root heard from another rank has its own phase.
  const host = rank === e.rank ? e.host : undefined;
  const phase = rank === e.rank ? (e.phase ?? root?.phase) : root?.phase;
  return new RunError(rule.kind, `worker ${rank} failed: ${root?.message ?? e.message}${where(host, phase)}`, {
    code,
    final: rule.final || finalHeard,
    rank,
    host,
    phase,
    workerStack: root?.stack ?? e.stack,
    logTail: e.logTail,
    dir,
  });
}
