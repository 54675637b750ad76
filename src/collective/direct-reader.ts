/**
 * Receives frames on a TCP socket through Node's `onread` user buffers: payload bytes are read
 * by the kernel straight into the frame's own buffer (no intermediate chunk, no copy, few reads).
 * Headers and small frames go through a scratch buffer. Written by hand: this is the hot receive
 * path of the TCP data plane and no library reads into caller-chosen buffers.
 * A sealed link (--ring-encrypt, link-seal.ts) has a 16-byte tag after each header: the payload
 * is read into its buffer as sealed, then opened there (`open`), before the frame is handed on.
 */
import { decodeHeader, type Frame, type FrameCheck, type FrameHeader, HEADER_BYTES } from './frames.js';
import { TAG_BYTES } from './link-seal.js';

const SCRATCH_BYTES = 64 * 1024;
const EMPTY = Buffer.alloc(0);

export class DirectReader {
  private readonly scratch = Buffer.allocUnsafeSlow(SCRATCH_BYTES);
  /** Unparsed bytes at the start of scratch (a partial header). */
  private held = 0;
  private header: FrameHeader | undefined;
  private payload: Buffer | undefined;
  private payloadFill = 0;
  private readingPayload = false;
  /** Bytes that belong to whoever reads the stream before frames start (the handshake ack). */
  private preamble: number;
  private sink: ((f: Frame) => void) | undefined;
  private early: Frame[] = [];
  onPreamble: ((bytes: Buffer) => void) | undefined;
  /** Chooses where a frame's payload is read to (the receiver may know its final place). */
  allocate: (h: FrameHeader) => Buffer = (h) => Buffer.allocUnsafeSlow(h.length);
  onBytes: (() => void) | undefined;
  /** Checked on every header before a buffer is allocated for its payload; a refusal stops reading. */
  check: FrameCheck | undefined;
  onRefused: ((problem: string) => void) | undefined;
  /** Fills a `shared` frame's payload from the link's shared memory (none of it is on the wire). */
  takeShared: ((into: Buffer) => void) | undefined;
  /** A sealed link's: opens a frame's wire payload in place; false when it does not open. */
  private readonly open: ((header: Uint8Array, tag: Uint8Array, body: Uint8Array) => boolean) | undefined;
  /** A sealed frame that did not open: nothing more is read. */
  onTampered: ((h: FrameHeader) => void) | undefined;
  private readonly headerBytes: number;
  private sealedHead: Buffer | undefined;
  private refused = false;

  constructor(preambleBytes: number, open?: (header: Uint8Array, tag: Uint8Array, body: Uint8Array) => boolean) {
    this.preamble = preambleBytes;
    this.open = open;
    this.headerBytes = HEADER_BYTES + (open ? TAG_BYTES : 0);
  }

  setSink(sink: (f: Frame) => void): void {
    this.sink = sink;
    for (const f of this.early.splice(0)) sink(f);
  }

  /** The buffer the next read goes into. */
  nextBuffer = (): Uint8Array => {
    if (this.payload) {
      this.readingPayload = true;
      return this.payload.subarray(this.payloadFill);
    }
    this.readingPayload = false;
    return this.scratch.subarray(this.held);
  };

  onRead = (n: number, _buf: Uint8Array): boolean => {
    if (this.refused) return true;
    this.onBytes?.();
    if (this.readingPayload) {
      this.payloadFill += n;
      if (this.payload && this.payloadFill === this.payload.length) this.finishPayload();
      return true;
    }
    this.parseScratch(this.held + n);
    return true;
  };

  private parseScratch(end: number): void {
    let at = 0;
    if (this.preamble > 0) {
      const take = Math.min(this.preamble, end);
      this.preamble -= take;
      this.onPreamble?.(Buffer.from(this.scratch.subarray(0, take)));
      at = take;
    }
    while (at < end) {
      if (!this.header) {
        if (end - at < this.headerBytes) break;
        this.header = decodeHeader(this.scratch, at);
        if (this.open) this.sealedHead = Buffer.from(this.scratch.subarray(at, at + this.headerBytes));
        at += this.headerBytes;
        const problem = this.check?.(this.header);
        if (problem !== undefined) {
          this.refused = true;
          this.held = 0;
          this.onRefused?.(problem);
          return;
        }
      }
      const need = this.header.length;
      if (this.header.shared && this.takeShared) {
        this.payload = this.allocate(this.header);
        this.takeShared(this.payload);
        if (!this.finishPayload(true)) return;
        continue;
      }
      const have = Math.min(need, end - at);
      const payload = need === 0 ? EMPTY : this.allocate(this.header);
      this.scratch.copy(payload, 0, at, at + have);
      at += have;
      this.payload = payload;
      this.payloadFill = have;
      if (have < need) break;
      if (!this.finishPayload()) return;
    }
    // Keep a partial header at the start of scratch for the next read.
    this.held = end - at;
    if (this.held > 0) this.scratch.copy(this.scratch, 0, at, end);
  }

  /** Hands the frame on (opened first on a sealed link); false when it did not open. */
  private finishPayload(fromSharedMemory = false): boolean {
    const h = this.header as FrameHeader;
    if (this.open && this.sealedHead) {
      const head = this.sealedHead;
      const body = fromSharedMemory ? EMPTY : (this.payload as Buffer);
      if (!this.open(head.subarray(0, HEADER_BYTES), head.subarray(HEADER_BYTES), body)) {
        this.refused = true;
        this.held = 0;
        this.onTampered?.(h);
        return false;
      }
    }
    const f: Frame = { ...h, payload: this.payload as Buffer };
    this.header = undefined;
    this.payload = undefined;
    this.payloadFill = 0;
    if (this.sink) this.sink(f);
    else this.early.push(f);
    return true;
  }
}
