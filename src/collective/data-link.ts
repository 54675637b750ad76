/**
 * The raw TCP data link's authentication (transport "tcp", proto/ring.proto step 3). After Join,
 * the dialing rank connects to the served rank's data port and sends 48 bytes:
 *   16-byte session id (from JoinReply) | HMAC-SHA256(secret, "link" | session id) (auth.ts linkProof)
 * The served rank answers 33 bytes, ACK and HMAC-SHA256(secret, "ack" | session id) (auth.ts
 * linkAckProof), and frames follow (frames.ts); a wrong session, proof or address closes the
 * connection. Until it has proven itself, a connection is held at most UNPROVEN_LINK_MS, and at
 * most MAX_UNPROVEN_LINKS wait at once: a new one pushes out the oldest, so idle connections
 * cannot keep the real peer out (its 48 bytes follow its connect at once).
 */
import net from 'node:net';
import { DirectReader } from './direct-reader.js';

const SESSION_BYTES = 16;
const AUTH_BYTES = SESSION_BYTES + 32;
const ACK = 0x01;
const ACK_BYTES = 1 + 32;
const MAX_UNPROVEN_LINKS = 8;
const UNPROVEN_LINK_MS = 10_000;

/** What the gate asks of a connection's session: what it admitted (with the ack proof to send), else undefined. */
export type SessionCheck<T extends { ack: Buffer }> = (
  sessionId: Uint8Array,
  proof: Uint8Array,
  remoteAddress: string,
) => T | undefined;

/** The served side: admits a connection to the data port once its session, proof and address check out. */
export class DataLinkGate<T extends { ack: Buffer }> {
  private readonly unproven = new Set<net.Socket>();

  constructor(private readonly check: SessionCheck<T>) {}

  /** Drops every connection still owing its proof (the ring formed, or the rank is closing). */
  dropUnproven(): void {
    for (const s of this.unproven) s.destroy();
    this.unproven.clear();
  }

  /**
   * Reads the connection's 48 bytes (for at most `timeoutMs`, and UNPROVEN_LINK_MS): `proven` gets
   * the socket and what arrived after them; a wrong session, proof or address closes it and calls `refused`.
   */
  admit(
    socket: net.Socket,
    timeoutMs: number,
    proven: (s: net.Socket, leftover: Buffer, admitted: T) => void,
    refused: () => void,
  ): void {
    if (this.unproven.size >= MAX_UNPROVEN_LINKS) {
      const oldest = this.unproven.values().next().value as net.Socket;
      this.unproven.delete(oldest);
      oldest.destroy();
    }
    this.unproven.add(socket);
    socket.once('close', () => this.unproven.delete(socket));
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), Math.min(UNPROVEN_LINK_MS, timeoutMs));
    const onData = (chunk: Buffer): void => {
      got = Buffer.concat([got, chunk]);
      if (got.length < AUTH_BYTES) return;
      clearTimeout(timer);
      this.unproven.delete(socket);
      socket.off('data', onData);
      socket.pause();
      const admitted = this.check(
        got.subarray(0, SESSION_BYTES),
        got.subarray(SESSION_BYTES, AUTH_BYTES),
        socket.remoteAddress ?? '',
      );
      if (!admitted) {
        refused();
        socket.destroy();
        return;
      }
      socket.write(Buffer.concat([Buffer.of(ACK), admitted.ack]));
      proven(socket, got.subarray(AUTH_BYTES), admitted);
    };
    socket.on('data', onData);
    socket.on('error', () => clearTimeout(timer));
  }
}

/**
 * The dialing side: connects, sends the session id and proof, and waits for the ack and its proof
 * (`ackProof`: what the rank that holds the secret and took this session answers). `open`: a sealed
 * link's (link-seal.ts), for the reader that opens its frames in place.
 */
export function connectData(
  host: string,
  port: number,
  sessionId: Uint8Array,
  proof: Uint8Array,
  ackProof: (got: Buffer) => boolean,
  deadline: number,
  open?: (header: Uint8Array, tag: Uint8Array, body: Uint8Array) => boolean,
): Promise<{ socket: net.Socket; reader: DirectReader }> {
  return new Promise((resolve, reject) => {
    const reader = new DirectReader(ACK_BYTES, open);
    const socket = net.connect({ host, port, onread: { buffer: reader.nextBuffer, callback: reader.onRead } });
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    const timer = setTimeout(
      () => fail(new Error(`data link to ${host}:${port} not acknowledged in time`)),
      Math.max(1, deadline - Date.now()),
    );
    socket.once('connect', () => socket.write(Buffer.concat([sessionId, proof])));
    socket.once('error', fail);
    socket.once('close', () => fail(new DataLinkClosed(`data link to ${host}:${port} was closed before its acknowledgement`)));
    let ack = Buffer.alloc(0);
    reader.onPreamble = (bytes) => {
      ack = Buffer.concat([ack, bytes]);
      if (ack.length < ACK_BYTES) return;
      clearTimeout(timer);
      socket.removeAllListeners('close');
      socket.removeAllListeners('error');
      if (ack[0] !== ACK || !ackProof(ack.subarray(1))) {
        fail(
          new DataLinkForged(`the data link's acknowledgement from ${host}:${port} does not prove this job's secret and session`),
        );
      } else resolve({ socket, reader });
    };
  });
}

/** The served side closed the data link before acknowledging it: pushed out of its gate, or refused. */
export class DataLinkClosed extends Error {}

/** The data link's acknowledgement came from something that does not hold the secret or took another session. */
export class DataLinkForged extends Error {}
