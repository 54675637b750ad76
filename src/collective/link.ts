/**
 * A link is one neighbour connection of the ring: ordered frames both ways, a signal when
 * anything arrives (liveness), and a signal when it breaks. Two data planes implement it:
 * a raw TCP socket and a gRPC Link stream.
 */
import type net from 'node:net';
import type { DirectReader } from './direct-reader.js';
import { FrameRefusedError, RingIntegrityError } from './errors.js';
import {
  CollectiveKind,
  decodeHeader,
  encodeHeader,
  type Frame,
  type FrameCheck,
  FrameDecoder,
  type FrameHeader,
  FrameKind,
  HEADER_BYTES,
  markShared,
} from './frames.js';
import { type LinkSeal, SealedFrameDecoder } from './link-seal.js';
import { IncomingRegion, OutgoingRegion, parseOffer, SHARED_MIN_BYTES, type SharedOffer } from './shared-memory.js';

export interface LinkEvents {
  frame(f: Frame): void;
  /** The connection ended without a goodbye frame, or failed. */
  broken(cause: Error): void;
}

/** How long a closing link waits for its peer to close too. */
const LINGER_MS = 1000;
/** An offered region's file is removed by then even if no answer came (the link stays plain TCP). */
const OFFER_ANSWER_MS = 10_000;
const MAX_OFFER_BYTES = 1024;

export abstract class Link {
  lastHeardAt = Date.now();
  /** The peer sent a goodbye: a later disconnect is a departure, not a loss. */
  saidGoodbye = false;
  private pendingWrites = 0;
  private drainWaiters: Array<() => void> = [];
  protected events: LinkEvents | undefined;
  protected ended = false;

  constructor(
    readonly peerRank: number,
    readonly peerAddress: string,
  ) {}

  private early: Frame[] = [];
  private earlyBreak: Error | undefined;

  /** Starts delivering events; frames and a break that came before are delivered first. */
  attach(events: LinkEvents): void {
    this.events = events;
    for (const f of this.early.splice(0)) events.frame(f);
    if (this.earlyBreak) events.broken(this.earlyBreak);
  }

  /** Queues a frame; the payload must not change until `drained()` resolves. */
  send(h: Omit<FrameHeader, 'length'>, payload?: Uint8Array): void {
    if (this.ended) return;
    this.pendingWrites++;
    this.write(encodeHeader(h, payload?.byteLength ?? 0), payload, () => {
      this.pendingWrites--;
      if (this.pendingWrites === 0) for (const w of this.drainWaiters.splice(0)) w();
    });
  }

  /** Resolves once every queued frame has been handed to the operating system. */
  drained(): Promise<void> {
    if (this.pendingWrites === 0 || this.ended) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Where payloads are read to, for data planes that can read in place (raw TCP). */
  setPayloadAllocator(_allocate: (h: FrameHeader) => Buffer): void {}

  /** Payloads to the peer go through shared memory (shared-memory.ts), not the socket. */
  get sendsThroughSharedMemory(): boolean {
    return false;
  }

  /** Resolves once the data path is known: the shared-memory offer answered, refused or given up. */
  get dataPathSettled(): Promise<void> {
    return Promise.resolve();
  }

  /** Frames that `check` refuses break the link before their payload is read. */
  setFrameCheck(check: FrameCheck): void {
    this.frameCheck = check;
  }

  protected frameCheck: FrameCheck | undefined;

  /** A refused frame: the connection is dropped, the link reported broken with the reason. */
  protected refuse(problem: string): void {
    this.broke(new FrameRefusedError(this.peerRank, this.peerAddress, problem));
    this.shutdown();
  }

  protected received(f: Frame): void {
    this.lastHeardAt = Date.now();
    if (this.events) this.events.frame(f);
    else this.early.push(f);
  }

  protected heard(): void {
    this.lastHeardAt = Date.now();
  }

  protected broke(cause: Error): void {
    if (this.ended) return;
    this.ended = true;
    for (const w of this.drainWaiters.splice(0)) w();
    if (this.events) this.events.broken(cause);
    else this.earlyBreak = cause;
  }

  /**
   * Stops using the link: frees the connection without reporting it broken. Resolves once the
   * connection is gone (at most LINGER_MS later).
   */
  close(): Promise<void> {
    if (this.ended) return Promise.resolve();
    this.ended = true;
    for (const w of this.drainWaiters.splice(0)) w();
    return this.shutdown();
  }

  protected abstract write(header: Buffer, payload: Uint8Array | undefined, done: () => void): void;
  protected abstract shutdown(): Promise<void>;
}

export class TcpLink extends Link {
  private readonly reader: DirectReader | undefined;
  /** Sending side: the region offered, and whether the peer mapped it. */
  private outgoing: OutgoingRegion | undefined;
  private outgoingMapped = false;
  private awaitingAnswer = false;
  /** A shared-memory offer was made (sender) or received (receiver): one per link. */
  private offered = false;
  private offerTimer: NodeJS.Timeout | undefined;
  private offerSettled: Promise<void> = Promise.resolve();
  private settleOffer: () => void = () => undefined;
  /** Receiving side: the peer's region, mapped here. */
  private incoming: IncomingRegion | undefined;
  /** This end receives the ring's data (it dialed): it maps the peer's shared memory. */
  private readonly receivesData: boolean;
  /**
   * `reader` is given for sockets opened with `onread` (the data receiving side); other sockets
   * (which only receive small control frames) use 'data' events, as does a sealed link (`seal`:
   * --ring-encrypt, link-seal.ts), whose frames are opened as they arrive.
   */
  constructor(
    peerRank: number,
    peerAddress: string,
    private readonly socket: net.Socket,
    reader?: DirectReader,
    leftover?: Buffer,
    private readonly seal?: LinkSeal,
  ) {
    super(peerRank, peerAddress);
    socket.setNoDelay(true);
    this.reader = reader;
    this.receivesData = reader !== undefined;
    if (reader) {
      reader.onBytes = () => this.heard();
      reader.check = (h) => this.check(h);
      reader.onRefused = (problem) => this.refuse(problem);
      reader.onTampered = (h) => this.tampered(h);
      reader.setSink((f) => this.onTcpFrame(f));
    } else {
      const decoder = seal ? this.sealedDecoder(seal) : new FrameDecoder((f) => this.onTcpFrame(f));
      decoder.check = (h) => this.check(h);
      decoder.onRefused = (problem) => this.refuse(problem);
      socket.on('data', (chunk: Buffer) => {
        this.heard();
        decoder.push(chunk);
      });
      if (leftover && leftover.length > 0) decoder.push(leftover);
    }
    socket.on('error', (err) => this.broke(err));
    socket.on('close', () => this.broke(new Error('connection closed')));
    socket.resume();
  }

  /** Opens each sealed frame; a payload in shared memory is taken from the region after its header opened. */
  private sealedDecoder(seal: LinkSeal): SealedFrameDecoder {
    const decoder = new SealedFrameDecoder(seal, (f) => {
      if (f.shared && this.incoming) {
        const payload = Buffer.allocUnsafeSlow(f.length);
        this.incoming.take(payload);
        this.onTcpFrame({ ...f, payload });
      } else this.onTcpFrame(f);
    });
    decoder.onTampered = (h) => this.tampered(h);
    return decoder;
  }

  /** A sealed frame that did not open: the link is dropped, reported broken with an integrity error. */
  private tampered(h: FrameHeader): void {
    this.broke(new RingIntegrityError(this.peerRank, this.peerAddress, h));
    void this.shutdown();
  }

  override setPayloadAllocator(allocate: (h: FrameHeader) => Buffer): void {
    if (this.reader) this.reader.allocate = allocate;
  }

  /** Whether frames are sealed (--ring-encrypt). */
  get sealed(): boolean {
    return this.seal !== undefined;
  }

  override get sendsThroughSharedMemory(): boolean {
    return this.outgoingMapped;
  }

  override get dataPathSettled(): Promise<void> {
    return this.offerSettled;
  }

  protected override broke(cause: Error): void {
    super.broke(cause);
    this.settleOffer();
  }

  /**
   * Sending side: offers the peer a shared-memory region (shared-memory.ts has the handshake).
   * Nothing changes until the peer answers that it mapped it; a peer on another host cannot.
   */
  offerSharedMemory(): void {
    if (this.receivesData || this.offered || this.ended) return;
    this.offered = true;
    this.offerSettled = new Promise((resolve) => {
      this.settleOffer = resolve;
    });
    void OutgoingRegion.create().then((region) => {
      if (!region || this.ended) {
        region?.release();
        this.settleOffer();
        return;
      }
      this.outgoing = region;
      this.awaitingAnswer = true;
      this.offerTimer = setTimeout(() => {
        region.release();
        this.settleOffer();
      }, OFFER_ANSWER_MS);
      this.offerTimer.unref();
      this.send(
        { kind: FrameKind.SharedOffer, collective: CollectiveKind.None, seq: 0, index: 0 },
        Buffer.from(JSON.stringify(region.offer())),
      );
    });
  }

  /** The link's own frames (the shared-memory handshake) are checked here, the rest by the ring's check. */
  private check(h: FrameHeader): string | undefined {
    // One offer per link, one answer per offer: a region swapped mid-stream would lose the two sides' places.
    if (h.kind === FrameKind.SharedOffer)
      return this.receivesData && !this.offered && h.length <= MAX_OFFER_BYTES
        ? undefined
        : 'a shared-memory offer it did not expect';
    if (h.kind === FrameKind.SharedAnswer)
      return this.awaitingAnswer && h.length === 0 ? undefined : 'a shared-memory answer to no offer';
    if (h.shared && !this.incoming) return 'a frame whose payload is in shared memory, on a link without shared memory';
    if (h.shared && this.incoming && h.length > this.incoming.capacity)
      return `a shared-memory frame of ${h.length} bytes, longer than its region (${this.incoming.capacity})`;
    return this.frameCheck?.(h);
  }

  private onTcpFrame(f: Frame): void {
    if (f.kind === FrameKind.SharedOffer) this.answerOffer(f.payload);
    else if (f.kind === FrameKind.SharedAnswer) this.answered(f.index === 1);
    else this.received(f);
  }

  /** Receiving side: maps the offered region if it can (same host), and says whether it did. */
  private answerOffer(payload: Uint8Array): void {
    this.heard();
    this.offered = true;
    const answer = (mapped: boolean): void =>
      this.send({ kind: FrameKind.SharedAnswer, collective: CollectiveKind.None, seq: 0, index: mapped ? 1 : 0 });
    let offer: SharedOffer;
    try {
      offer = parseOffer(payload);
    } catch {
      answer(false);
      return;
    }
    IncomingRegion.open(offer).then(
      (region) => {
        if (this.ended) return;
        this.incoming = region;
        if (this.reader) this.reader.takeShared = (into) => region.take(into);
        answer(true);
      },
      // Another host or network namespace, or no addon here: the link stays plain TCP.
      () => answer(false),
    );
  }

  private answered(mapped: boolean): void {
    this.heard();
    this.awaitingAnswer = false;
    clearTimeout(this.offerTimer);
    this.outgoing?.release();
    this.outgoingMapped = mapped;
    this.settleOffer();
  }

  protected write(header: Buffer, payload: Uint8Array | undefined, done: () => void): void {
    if (this.seal) {
      const shared = this.outgoingMapped && payload && payload.byteLength >= SHARED_MIN_BYTES && this.outgoing?.put(payload);
      if (shared) markShared(header);
      const [head, tag, body] = this.seal.seal(header, shared ? undefined : payload);
      this.socket.cork();
      this.socket.write(head);
      this.socket.write(tag);
      this.socket.write(body, () => {
        this.seal?.recycle(body);
        done();
      });
      this.socket.uncork();
      return;
    }
    if (this.outgoingMapped && payload && payload.byteLength >= SHARED_MIN_BYTES && this.outgoing?.put(payload)) {
      markShared(header);
      this.socket.write(header, () => done());
      return;
    }
    if (!payload || payload.byteLength === 0) {
      this.socket.write(header, () => done());
      return;
    }
    this.socket.cork();
    this.socket.write(header);
    this.socket.write(payload, () => done());
    this.socket.uncork();
  }

  /**
   * A half-close, then reading on until the peer closes too (or LINGER_MS): a socket destroyed
   * with the peer's bytes unread sends a reset, and a reset makes the peer drop what it has not
   * read yet, such as the abort frame that names the rank that really failed. The peer would then
   * blame this rank instead (flaky attribution when a rank of three was killed).
   */
  protected shutdown(): Promise<void> {
    clearTimeout(this.offerTimer);
    this.outgoing?.release();
    this.settleOffer();
    const socket = this.socket;
    if (socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      const gone = (): void => {
        clearTimeout(linger);
        socket.destroy();
        resolve();
      };
      const linger = setTimeout(gone, LINGER_MS);
      socket.once('end', gone);
      socket.once('close', gone);
      socket.end();
    });
  }
}

/** A protobuf `Frame { bytes data = 1; }` message holding the header and payload. */
export function encodeFrameMessage(header: Buffer, payload: Uint8Array | undefined): Buffer {
  const dataLength = header.length + (payload?.byteLength ?? 0);
  const prefix: number[] = [0x0a];
  for (let v = dataLength; ; v = Math.floor(v / 128)) {
    if (v < 128) {
      prefix.push(v);
      break;
    }
    prefix.push((v % 128) | 0x80);
  }
  const out = Buffer.allocUnsafeSlow(prefix.length + dataLength);
  out.set(prefix, 0);
  out.set(header, prefix.length);
  if (payload) out.set(payload, prefix.length + header.length);
  return out;
}

export function decodeFrameMessage(msg: Buffer): Frame {
  if (msg.length === 0) throw new Error('empty Link message');
  if (msg[0] !== 0x0a) throw new Error(`unexpected Link message tag ${msg[0]}`);
  let at = 1;
  let length = 0;
  for (let shift = 1; ; shift *= 128) {
    const b = msg[at++];
    if (b === undefined) throw new Error('truncated Link message');
    length += (b & 0x7f) * shift;
    if (b < 128) break;
  }
  const h = decodeHeader(msg, at);
  const start = at + HEADER_BYTES;
  if (start + h.length !== msg.length || length !== HEADER_BYTES + h.length) {
    throw new Error('Link message length does not match its frame header');
  }
  return { ...h, payload: msg.subarray(start, start + h.length) };
}

/** What GrpcLink needs of grpc-js's ServerDuplexStream and ClientDuplexStream. */
export interface GrpcDuplex {
  on(event: 'data', cb: (msg: Buffer) => void): unknown;
  on(event: 'error', cb: (err: Error) => void): unknown;
  on(event: 'end' | 'close', cb: () => void): unknown;
  write(msg: Buffer, cb: () => void): unknown;
  end(): unknown;
  cancel?: () => void;
}

/** A gRPC Link stream, on either side (server duplex or client duplex); messages are raw bytes. */
export class GrpcLink extends Link {
  constructor(
    peerRank: number,
    peerAddress: string,
    private readonly stream: GrpcDuplex,
  ) {
    super(peerRank, peerAddress);
    stream.on('data', (msg: Buffer) => {
      let f: Frame;
      try {
        f = decodeFrameMessage(msg);
      } catch (err) {
        this.broke(err as Error);
        return;
      }
      const problem = this.frameCheck?.(f);
      if (problem !== undefined) {
        this.refuse(problem);
        return;
      }
      this.received(f);
    });
    stream.on('error', (err: Error) => this.broke(err));
    stream.on('end', () => this.broke(new Error('stream ended')));
    stream.on('close', () => this.broke(new Error('stream closed')));
  }

  protected write(header: Buffer, payload: Uint8Array | undefined, done: () => void): void {
    this.stream.write(encodeFrameMessage(header, payload), () => done());
  }

  protected shutdown(): Promise<void> {
    if (this.stream.cancel) this.stream.cancel();
    else this.stream.end();
    return Promise.resolve();
  }
}
