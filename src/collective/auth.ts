/** The ring's HMAC challenge: proofs of the per-job secret that never send the secret. */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export interface HandshakeParams {
  jobId: string;
  attempt: number;
  worldSize: number;
  /** The rank that dials (the receiver of data) and the rank it dials. */
  dialingRank: number;
  servedRank: number;
}

export const newNonce = (): Buffer => randomBytes(16);

function mac(secret: Buffer, label: string, parts: Array<string | Buffer>): Buffer {
  const h = createHmac('sha256', secret);
  h.update(label);
  for (const p of parts) {
    const b = typeof p === 'string' ? Buffer.from(p) : p;
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32BE(b.length);
    h.update(len);
    h.update(b);
  }
  return h.digest();
}

const paramParts = (p: HandshakeParams): string[] => [
  p.jobId,
  String(p.attempt),
  String(p.worldSize),
  String(p.dialingRank),
  String(p.servedRank),
];

export function joinProof(secret: Buffer, p: HandshakeParams, clientNonce: Buffer, serverNonce: Buffer): Buffer {
  return mac(secret, 'join', [...paramParts(p), clientNonce, serverNonce]);
}

/** The served rank's proof, which also binds the session id and data port its JoinReply gives. */
export function acceptProof(
  secret: Buffer,
  p: HandshakeParams,
  clientNonce: Buffer,
  serverNonce: Buffer,
  sessionId: Buffer,
  dataPort: number,
): Buffer {
  return mac(secret, 'accept', [...paramParts(p), clientNonce, serverNonce, sessionId, String(dataPort)]);
}

export function linkProof(secret: Buffer, sessionId: Buffer): Buffer {
  return mac(secret, 'link', [sessionId]);
}

/** The served rank's answer on the data link: it holds the secret and took this session. */
export function linkAckProof(secret: Buffer, sessionId: Buffer): Buffer {
  return mac(secret, 'ack', [sessionId]);
}

export function proofMatches(expected: Buffer, got: Uint8Array | undefined): boolean {
  return got !== undefined && got.length === expected.length && timingSafeEqual(expected, got);
}
