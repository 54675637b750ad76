/** Errors of the ring. Each names the peer (rank and address) it concerns. */

export class RingError extends Error {
  override readonly name: string = 'RingError';
}

export type HandshakeField = 'secret' | 'job_id' | 'world_size' | 'attempt' | 'rank' | 'transport' | 'session';

/** A peer refused us, or we refused a peer, during the handshake. */
export class RingHandshakeError extends RingError {
  override readonly name = 'RingHandshakeError';
  constructor(
    readonly field: HandshakeField,
    readonly peerAddress: string,
    reason: string,
  ) {
    super(`ring handshake with ${peerAddress} refused (${field}): ${reason}`);
  }
}

/** The ring did not form in time; names the links that are missing. */
export class RingFormationTimeoutError extends RingError {
  override readonly name = 'RingFormationTimeoutError';
  constructor(
    readonly rank: number,
    readonly missing: ReadonlyArray<{ rank: number; address: string; why: string }>,
    timeoutMs: number,
  ) {
    super(
      `rank ${rank}: ring not formed after ${timeoutMs} ms; missing: ${missing
        .map((m) => `rank ${m.rank} at ${m.address} (${m.why})`)
        .join('; ')}`,
    );
  }
}

export type PeerFailure = 'lost' | 'stalled' | 'closed';

/** A peer died, stalled or left while the ring was in use. Every live rank gets this error. */
export class PeerFailedError extends RingError {
  override readonly name = 'PeerFailedError';
  constructor(
    readonly peerRank: number,
    readonly peerAddress: string,
    readonly failure: PeerFailure,
    readonly detectedBy: number,
    readonly detail: string,
  ) {
    super(
      `ring peer rank ${peerRank} at ${peerAddress} ${
        failure === 'lost' ? 'was lost' : failure === 'stalled' ? 'stalled' : 'left the ring'
      } (seen by rank ${detectedBy}): ${detail}`,
    );
  }
}

/** Ranks disagree about the collective being run (different order, op or size). */
export class CollectiveMismatchError extends RingError {
  override readonly name = 'CollectiveMismatchError';
}

export class RingClosedError extends RingError {
  override readonly name = 'RingClosedError';
  constructor() {
    super('the ring is closed');
  }
}
