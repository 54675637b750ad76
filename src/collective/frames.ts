/**
 * Ring frames: a 16-byte little-endian header and a payload. Header: kind u8 | collective u8 |
 * flags u16 (bit 0: the payload is in shared memory, not on the wire) | seq u32 | index u32 |
 * payload length u32. The same bytes travel on the
 * raw TCP data plane and inside gRPC Link messages (see proto/ring.proto).
 */

export const HEADER_BYTES = 16;
const SHARED_FLAG = 1;

export enum FrameKind {
  Data = 1,
  Heartbeat = 2,
  Abort = 3,
  Goodbye = 4,
  /** The link's own: shared memory offered and answered (shared-memory.ts); the ring never sees them. */
  SharedOffer = 5,
  SharedAnswer = 6,
}

export enum CollectiveKind {
  None = 0,
  Allreduce = 1,
  Broadcast = 2,
  Allgather = 3,
  /** The barrier a rank enters when its train() has returned: its last collective. */
  Finish = 4,
}

export interface FrameHeader {
  kind: FrameKind;
  collective: CollectiveKind;
  seq: number;
  index: number;
  length: number;
  /** The payload is in the link's shared memory, not on the wire (byte 2, bit 0). */
  shared?: boolean;
}

/**
 * Says why a frame may not be read (its length is more than its kind can carry), before a buffer
 * is allocated for it; undefined when it may.
 */
export type FrameCheck = (h: FrameHeader) => string | undefined;

export interface Frame extends FrameHeader {
  payload: Uint8Array;
}

export function encodeHeader(h: Omit<FrameHeader, 'length'>, payloadLength: number): Buffer {
  const b = Buffer.allocUnsafe(HEADER_BYTES);
  b.writeUInt8(h.kind, 0);
  b.writeUInt8(h.collective, 1);
  b.writeUInt16LE(h.shared ? SHARED_FLAG : 0, 2);
  b.writeUInt32LE(h.seq >>> 0, 4);
  b.writeUInt32LE(h.index >>> 0, 8);
  b.writeUInt32LE(payloadLength, 12);
  return b;
}

/** Flags an encoded header's payload as being in shared memory. */
export function markShared(header: Buffer): void {
  header.writeUInt16LE(header.readUInt16LE(2) | SHARED_FLAG, 2);
}

export function decodeHeader(b: Uint8Array, at = 0): FrameHeader {
  const v = new DataView(b.buffer, b.byteOffset + at, HEADER_BYTES);
  return {
    kind: v.getUint8(0) as FrameKind,
    collective: v.getUint8(1) as CollectiveKind,
    seq: v.getUint32(4, true),
    index: v.getUint32(8, true),
    length: v.getUint32(12, true),
    shared: (v.getUint8(2) & SHARED_FLAG) !== 0,
  };
}

/**
 * Cuts a byte stream into frames. A payload that lies whole inside one received chunk is
 * handed out as a view (no copy); one that spans chunks is assembled into a fresh buffer.
 * Written by hand: it is the hot receive path of the TCP data plane.
 */
export class FrameDecoder {
  private header: FrameHeader | undefined;
  private headerBytes = Buffer.allocUnsafe(HEADER_BYTES);
  private headerFill = 0;
  private payload: Buffer | undefined;
  private payloadFill = 0;
  private refused = false;
  /** Checked on every header before its payload is read; a refusal stops the decoder. */
  check: FrameCheck | undefined;
  onRefused: ((problem: string) => void) | undefined;

  constructor(private readonly onFrame: (f: Frame) => void) {}

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.refused) {
      if (this.header === undefined) {
        if (this.headerFill === 0 && chunk.length - at >= HEADER_BYTES) {
          this.header = decodeHeader(chunk, at);
          at += HEADER_BYTES;
        } else {
          const n = Math.min(HEADER_BYTES - this.headerFill, chunk.length - at);
          chunk.copy(this.headerBytes, this.headerFill, at, at + n);
          this.headerFill += n;
          at += n;
          if (this.headerFill < HEADER_BYTES) return;
          this.header = decodeHeader(this.headerBytes);
          this.headerFill = 0;
        }
        const problem = this.check?.(this.header);
        if (problem !== undefined) {
          this.refused = true;
          this.onRefused?.(problem);
          return;
        }
        if (this.header.length === 0) {
          this.emit(new Uint8Array(0));
          continue;
        }
      }
      const h = this.header;
      if (this.payload === undefined && chunk.length - at >= h.length) {
        this.emit(chunk.subarray(at, at + h.length));
        at += h.length;
        continue;
      }
      if (this.payload === undefined) {
        this.payload = Buffer.allocUnsafeSlow(h.length);
        this.payloadFill = 0;
      }
      const n = Math.min(h.length - this.payloadFill, chunk.length - at);
      chunk.copy(this.payload, this.payloadFill, at, at + n);
      this.payloadFill += n;
      at += n;
      if (this.payloadFill === h.length) {
        const p = this.payload;
        this.payload = undefined;
        this.emit(p);
      }
    }
  }

  private emit(payload: Uint8Array): void {
    const h = this.header as FrameHeader;
    this.header = undefined;
    this.onFrame({ ...h, payload });
  }
}
