/**
 * Errors of the ring. Each names the peer (rank and address) it concerns and carries its code
 * (src/errors/codes.ts), which the abort frame passes around the ring with it.
 */
import type { ErrorCode } from '../errors/codes.js';
import { type FrameHeader, FrameKind } from './frames.js';

export class RingError extends Error {
  override readonly name: string = 'RingError';
  readonly code: ErrorCode = 'SR_RING';
}

export type HandshakeField = 'secret' | 'job_id' | 'world_size' | 'attempt' | 'rank' | 'transport' | 'session';

/** A peer refused us, or we refused a peer, during the handshake. */
export class RingHandshakeError extends RingError {
  override readonly name = 'RingHandshakeError';
  override readonly code: ErrorCode = 'SR_RING_HANDSHAKE';
  constructor(
    readonly field: HandshakeField,
    readonly peerAddress: string,
    reason: string,
  ) {
    super(`ring handshake with ${peerAddress} refused (${field}): ${reason}`);
  }
}

/** A link of the ring that did not come up: the peer's rank, host (as Spark names it) and address. */
export interface MissingLink {
  rank: number;
  host?: string;
  address: string;
  why: string;
}

/** "rank 1 on host h2 at 10.0.0.12:4000", the host left out where it is unknown or is the address's own. */
export function describePeer(rank: number, address: string, host?: string): string {
  const shown = host && !address.startsWith(`${host}:`) && !address.startsWith(`[${host}]:`) ? ` on host ${host}` : '';
  return `rank ${rank}${shown} at ${address}`;
}

/**
 * The ring did not form in time; names the links that are missing and, when given, how this
 * rank chose the address it listens on (`addressNote`: the interface, and the flag that changes it).
 */
export class RingFormationTimeoutError extends RingError {
  override readonly name = 'RingFormationTimeoutError';
  override readonly code: ErrorCode = 'SR_RING_FORMATION';
  constructor(
    readonly rank: number,
    readonly missing: readonly MissingLink[],
    timeoutMs: number,
    addressNote?: string,
  ) {
    super(
      `rank ${rank}: ring not formed after ${timeoutMs} ms; missing: ${missing
        .map((m) => `${describePeer(m.rank, m.address, m.host)} (${m.why})`)
        .join('; ')}${addressNote ? `; ${addressNote}` : ''}`,
    );
  }
}

export type PeerFailure = 'lost' | 'stalled' | 'closed';

/** A peer died, stalled or left while the ring was in use. Every live rank gets this error. */
export class PeerFailedError extends RingError {
  override readonly name = 'PeerFailedError';
  override readonly code: ErrorCode = 'SR_PEER_LOST';
  constructor(
    readonly peerRank: number,
    readonly peerAddress: string,
    readonly failure: PeerFailure,
    readonly detectedBy: number,
    readonly detail: string,
    readonly peerHost?: string,
  ) {
    super(
      `ring peer ${describePeer(peerRank, peerAddress, peerHost)} ${
        failure === 'lost' ? 'was lost' : failure === 'stalled' ? 'stalled' : 'left the ring'
      } (seen by rank ${detectedBy}): ${detail}`,
    );
  }
}

/** A peer sent a frame longer than its kind may be: refused before a buffer was allocated for it. */
export class FrameRefusedError extends RingError {
  override readonly name = 'FrameRefusedError';
  override readonly code: ErrorCode = 'SR_FRAME_REFUSED';
  constructor(
    readonly peerRank: number,
    readonly peerAddress: string,
    readonly problem: string,
  ) {
    super(`rank ${peerRank} at ${peerAddress} sent ${problem}; the frame was refused before it was read`);
  }
}

/**
 * A sealed frame (--ring-encrypt, link-seal.ts) did not open: it was changed, dropped, replayed or
 * reordered between the ranks, or forged by something that does not hold the ring's key.
 */
export class RingIntegrityError extends RingError {
  override readonly name = 'RingIntegrityError';
  override readonly code: ErrorCode = 'SR_RING_INTEGRITY';
  constructor(
    readonly peerRank: number,
    readonly peerAddress: string,
    header: FrameHeader,
  ) {
    super(
      `the link from rank ${peerRank} at ${peerAddress} carried a ${FrameKind[header.kind] ?? header.kind} frame (seq ${header.seq}, ${header.length} bytes) that does not open with the ring's key: it was changed, dropped or replayed on the way; the attempt ends (check the network between the hosts)`,
    );
  }
}

/** Ranks disagree about the collective being run (different order, op or size). */
export class CollectiveMismatchError extends RingError {
  override readonly name = 'CollectiveMismatchError';
  override readonly code: ErrorCode = 'SR_COLLECTIVE_MISMATCH';
}

export class RingClosedError extends RingError {
  override readonly name = 'RingClosedError';
  override readonly code: ErrorCode = 'SR_RING_CLOSED';
  constructor() {
    super('the ring is closed');
  }
}

/** What a rank was last doing, as its neighbours heard (heartbeats carry every rank's status around the ring). */
export interface RankStatus {
  /** Bumped by the rank at each change, so a newer status wins wherever it is merged. */
  version: number;
  /** The rank's last collective (its sequence number and kind), 0 before the first. */
  seq: number;
  collective: string;
  state: 'in' | 'between' | 'returned';
  /** The rank's last reported step (ctx.report), if any. */
  step: number | null;
}

/** `countFrom`: the collectives before the user's first (Ring.markTrainStart), left out of the numbers. */
export function describeStatus(rank: number, s: RankStatus | undefined, countFrom = 0): string {
  if (!s) return `rank ${rank} (no status heard yet)`;
  if (s.state === 'returned') return `rank ${rank} (returned from train())`;
  const step = s.step === null ? '' : ` at step ${s.step}`;
  if (s.seq <= countFrom) return `rank ${rank} (no collective yet${step})`;
  const where = `${s.collective} #${s.seq - countFrom}${step}`;
  return s.state === 'in' ? `rank ${rank} (in ${where})` : `rank ${rank} (between collectives, last ${where})`;
}

/**
 * A collective waited longer than the collective timeout without progress: some ranks are alive
 * (their heartbeats come) but never entered it. Every rank gets this error.
 */
export class CollectiveTimeoutError extends RingError {
  override readonly name = 'CollectiveTimeoutError';
  override readonly code: ErrorCode = 'SR_COLLECTIVE_TIMEOUT';
  constructor(
    message: string,
    readonly missingRanks: readonly number[],
  ) {
    super(message);
  }
}

/** A rank returned from train() while others still ran collectives: the ranks took different numbers of steps. */
export class UnevenStepsError extends RingError {
  override readonly name = 'UnevenStepsError';
  override readonly code: ErrorCode = 'SR_UNEVEN_STEPS';
  constructor(
    message: string,
    readonly returnedRank: number,
  ) {
    super(message);
  }
}

/** How to make steps equal, for every error that says they were not. */
export const EQUAL_STEPS_HINT =
  'every rank must run the same number of collectives: agree on the step count first ' +
  "(e.g. const [steps] = await ctx.allreduce(new Float32Array([myBatches]), 'min')) and take that many batches on every rank";

/**
 * The abort frame's payload: the error that ended the ring, as JSON with its name, code and
 * message, and the fields its class needs to be made again on the other ranks.
 */
interface AbortMessage {
  name: string;
  code: ErrorCode;
  message: string;
  peerRank?: number;
  peerAddress?: string;
  failure?: PeerFailure;
  detectedBy?: number;
  detail?: string;
  missingRanks?: number[];
  returnedRank?: number;
}

/** Encodes `err` for an abort frame, with its message and detail cut to `maxText` characters. */
export function encodeAbort(err: Error, maxText: number): Buffer {
  const code = err instanceof RingError ? err.code : 'SR_RING';
  const m: AbortMessage = { name: err.name, code, message: err.message.slice(0, maxText) };
  if (err instanceof PeerFailedError) {
    Object.assign(m, {
      peerRank: err.peerRank,
      peerAddress: err.peerAddress,
      failure: err.failure,
      detectedBy: err.detectedBy,
      detail: err.detail.slice(0, maxText),
    });
  }
  if (err instanceof CollectiveTimeoutError) m.missingRanks = [...err.missingRanks];
  if (err instanceof UnevenStepsError) m.returnedRank = err.returnedRank;
  return Buffer.from(JSON.stringify(m));
}

/** The error an abort frame carries, made again here; `hostOf` names a rank's host. */
export function decodeAbort(payload: Uint8Array, hostOf: (rank: number) => string | undefined): RingError {
  let m: AbortMessage;
  try {
    m = JSON.parse(Buffer.from(payload).toString('utf8')) as AbortMessage;
  } catch {
    return new RingError('a peer aborted the ring with an unreadable reason');
  }
  if (m.code === 'SR_PEER_LOST' && m.peerRank !== undefined) {
    return new PeerFailedError(
      m.peerRank,
      m.peerAddress ?? '?',
      m.failure ?? 'lost',
      m.detectedBy ?? -1,
      m.detail ?? '',
      hostOf(m.peerRank),
    );
  }
  if (m.code === 'SR_COLLECTIVE_MISMATCH') return new CollectiveMismatchError(m.message);
  if (m.code === 'SR_COLLECTIVE_TIMEOUT') return new CollectiveTimeoutError(m.message, m.missingRanks ?? []);
  if (m.code === 'SR_UNEVEN_STEPS') return new UnevenStepsError(m.message, m.returnedRank ?? -1);
  return new RingError(m.message);
}
