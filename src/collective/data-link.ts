/**
 * The raw TCP data link's authentication (transport "tcp", proto/ring.proto step 3). After Join,
 * the dialing rank connects to the served rank's data port and sends 48 bytes:
 *   16-byte session id (from JoinReply) | HMAC-SHA256(secret, "link" | session id) (auth.ts linkProof)
 * The served rank answers one byte, ACK, and frames follow (frames.ts); a wrong session or proof
 * closes the connection. Until it has proven itself, a connection is held at most
 * UNPROVEN_LINK_MS, and at most MAX_UNPROVEN_LINKS wait at once.
 */
import net from 'node:net';
import { DirectReader } from './direct-reader.js';

const SESSION_BYTES = 16;
const AUTH_BYTES = SESSION_BYTES + 32;
const ACK = 0x01;
const MAX_UNPROVEN_LINKS = 8;
const UNPROVEN_LINK_MS = 10_000;

/** The served side: admits a connection to the data port once its session and proof check out. */
export class DataLinkGate {
  private unproven = 0;

  constructor(private readonly check: (sessionId: Uint8Array, proof: Uint8Array) => boolean) {}

  /**
   * Reads the connection's 48 bytes (for at most `timeoutMs`, and UNPROVEN_LINK_MS): `proven` gets
   * the socket and what arrived after them; a wrong session or proof closes it and calls `refused`.
   */
  admit(socket: net.Socket, timeoutMs: number, proven: (s: net.Socket, leftover: Buffer) => void, refused: () => void): void {
    if (this.unproven >= MAX_UNPROVEN_LINKS) {
      socket.destroy();
      return;
    }
    this.unproven++;
    let counted = true;
    const settle = (): void => {
      if (counted) this.unproven--;
      counted = false;
    };
    socket.once('close', settle);
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), Math.min(UNPROVEN_LINK_MS, timeoutMs));
    const onData = (chunk: Buffer): void => {
      got = Buffer.concat([got, chunk]);
      if (got.length < AUTH_BYTES) return;
      clearTimeout(timer);
      settle();
      socket.off('data', onData);
      socket.pause();
      if (!this.check(got.subarray(0, SESSION_BYTES), got.subarray(SESSION_BYTES, AUTH_BYTES))) {
        refused();
        socket.destroy();
        return;
      }
      socket.write(Buffer.of(ACK));
      proven(socket, got.subarray(AUTH_BYTES));
    };
    socket.on('data', onData);
    socket.on('error', () => clearTimeout(timer));
  }
}

/** The dialing side: connects, sends the session id and proof, and waits for the one-byte ack. */
export function connectData(
  host: string,
  port: number,
  sessionId: Uint8Array,
  proof: Uint8Array,
  deadline: number,
): Promise<{ socket: net.Socket; reader: DirectReader }> {
  return new Promise((resolve, reject) => {
    const reader = new DirectReader(1);
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
    socket.once('close', () => fail(new Error(`data link to ${host}:${port} was refused (session or proof)`)));
    reader.onPreamble = (ack) => {
      clearTimeout(timer);
      socket.removeAllListeners('close');
      socket.removeAllListeners('error');
      if (ack[0] !== ACK) fail(new Error(`data link to ${host}:${port}: unexpected acknowledgement`));
      else resolve({ socket, reader });
    };
  });
}
