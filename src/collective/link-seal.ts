/**
 * `--ring-encrypt`: every frame of a raw TCP data link sealed with AES-256-GCM. On the wire:
 *   header (16 bytes, frames.ts, in clear, authenticated as AAD) | tag (16) | ciphertext
 * where the ciphertext is the payload (none for a frame whose payload is in shared memory, which
 * never leaves the host). Each direction of a link has its own key, HKDF-SHA256 from the ring's
 * secret with both handshake nonces as salt, and its own 96-bit nonce: a counter of the frames sent,
 * which the receiver counts too, so a frame dropped, replayed or reordered fails like a changed one.
 * Written by hand: no library seals a framed stream that Node's crypto does not already.
 */
import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';
import { sealAddon } from '../util/addons.js';
import { decodeHeader, type Frame, type FrameCheck, type FrameHeader, HEADER_BYTES } from './frames.js';

export const TAG_BYTES = 16;
const NONCE_BYTES = 12;
const EMPTY = Buffer.alloc(0);

/** Which way a link's frames go: from the served rank (data) or from the dialing rank. */
export type Direction = 'from-served' | 'from-dialer';

function key(secret: Uint8Array, clientNonce: Uint8Array, serverNonce: Uint8Array, direction: Direction): Buffer {
  const salt = Buffer.concat([clientNonce, serverNonce]);
  return Buffer.from(hkdfSync('sha256', secret, salt, `sparkring ring frames ${direction}`, 32));
}

function counterNonce(n: bigint): Buffer {
  const nonce = Buffer.alloc(NONCE_BYTES);
  nonce.writeBigUInt64BE(n, NONCE_BYTES - 8);
  return nonce;
}

/** One side's keys of a sealed link: it seals what it sends and opens what it receives. */
export class LinkSeal {
  private sent = 0n;
  private received = 0n;
  private readonly sendKey: Buffer;
  private readonly receiveKey: Buffer;
  /** native/frame_seal.cc when built: in place, and without Cipheriv's buffer per call. */
  private readonly addon = sealAddon();

  constructor(
    secret: Uint8Array,
    clientNonce: Uint8Array,
    serverNonce: Uint8Array,
    /** This end: the served rank (sends the ring's data) or the dialing rank (receives it). */
    readonly side: 'served' | 'dialer',
  ) {
    const fromServed = key(secret, clientNonce, serverNonce, 'from-served');
    const fromDialer = key(secret, clientNonce, serverNonce, 'from-dialer');
    this.sendKey = side === 'served' ? fromServed : fromDialer;
    this.receiveKey = side === 'served' ? fromDialer : fromServed;
  }

  /** Sealed bodies the socket is done with, by size, for the next frames (a fresh 1 MiB buffer a frame costs its page faults). */
  private readonly spare = new Map<number, Buffer[]>();

  /**
   * The wire bytes of one frame: header, tag, and the payload sealed (`wirePayload`, none when it
   * is in shared memory). Give the body back with `recycle` once the socket has written it.
   */
  seal(header: Buffer, wirePayload: Uint8Array | undefined): [Buffer, Buffer, Buffer] {
    const nonce = counterNonce(this.sent++);
    const plain = wirePayload ?? EMPTY;
    if (this.addon) {
      const tag = Buffer.allocUnsafe(TAG_BYTES);
      const body =
        plain.byteLength > 0 ? (this.spare.get(plain.byteLength)?.pop() ?? Buffer.allocUnsafeSlow(plain.byteLength)) : EMPTY;
      this.addon.seal(this.sendKey, nonce, header, plain, body, tag);
      return [header, tag, body];
    }
    const cipher = createCipheriv('aes-256-gcm', this.sendKey, nonce);
    cipher.setAAD(header);
    const body = plain.byteLength > 0 ? cipher.update(plain) : EMPTY;
    cipher.final();
    return [header, cipher.getAuthTag(), body];
  }

  recycle(body: Buffer): void {
    if (body.byteLength === 0 || !this.addon) return;
    const free = this.spare.get(body.byteLength) ?? [];
    if (free.length < 8) free.push(body);
    this.spare.set(body.byteLength, free);
  }

  /**
   * Opens a received frame in place (`body` becomes the payload in clear); false when it does not
   * open (changed, dropped or replayed).
   */
  openInPlace(header: Uint8Array, tag: Uint8Array, body: Uint8Array): boolean {
    const nonce = counterNonce(this.received++);
    if (this.addon) return this.addon.open(this.receiveKey, nonce, header, body, tag);
    const decipher = createDecipheriv('aes-256-gcm', this.receiveKey, nonce);
    decipher.setAAD(header);
    decipher.setAuthTag(tag);
    const plain = body.byteLength > 0 ? decipher.update(body) : EMPTY;
    try {
      decipher.final();
    } catch {
      return false;
    }
    body.set(plain);
    return true;
  }
}

/**
 * Cuts a sealed byte stream into frames and opens each (the link's control side, whose frames are
 * small; the data side reads sealed frames in place, direct-reader.ts). A frame whose header its `check` refuses
 * stops it before its body is read; one that does not open stops it with `onTampered`.
 */
export class SealedFrameDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private stopped = false;
  check: FrameCheck | undefined;
  onRefused: ((problem: string) => void) | undefined;
  onTampered: ((header: FrameHeader) => void) | undefined;

  constructor(
    private readonly seal: LinkSeal,
    private readonly onFrame: (f: Frame) => void,
  ) {}

  push(chunk: Buffer): void {
    if (this.stopped) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    while (!this.stopped && this.pendingBytes >= HEADER_BYTES + TAG_BYTES) {
      const head = this.peek(HEADER_BYTES);
      const h = decodeHeader(head);
      const problem = this.check?.(h);
      if (problem !== undefined) {
        this.stopped = true;
        this.onRefused?.(problem);
        return;
      }
      const bodyBytes = h.shared ? 0 : h.length;
      if (this.pendingBytes < HEADER_BYTES + TAG_BYTES + bodyBytes) return;
      const all = this.take(HEADER_BYTES + TAG_BYTES + bodyBytes);
      const header = all.subarray(0, HEADER_BYTES);
      const payload = all.subarray(HEADER_BYTES + TAG_BYTES);
      if (!this.seal.openInPlace(header, all.subarray(HEADER_BYTES, HEADER_BYTES + TAG_BYTES), payload)) {
        this.stopped = true;
        this.onTampered?.(h);
        return;
      }
      this.onFrame({ ...h, payload });
    }
  }

  private peek(n: number): Buffer {
    const first = this.pending[0] as Buffer;
    return first.length >= n ? first.subarray(0, n) : Buffer.concat(this.pending).subarray(0, n);
  }

  private take(n: number): Buffer {
    const joined = this.pending.length === 1 ? (this.pending[0] as Buffer) : Buffer.concat(this.pending);
    const rest = joined.subarray(n);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingBytes = rest.length;
    return joined.subarray(0, n);
  }
}
