/**
 * Shared memory under a raw TCP link whose two ranks share a host. Payloads of at least
 * SHARED_MIN_BYTES then skip the socket: the sender copies the payload into a region both have
 * mapped and sends only the frame's header, flagged `shared`; the receiver copies the payload out
 * to where the ring wants it. The socket still carries every header in order, so ordering,
 * liveness, aborts and small frames are unchanged.
 *
 * The region has no name in any directory (nothing in /dev/shm to open, nothing left after a
 * SIGKILL): it is an anonymous memfd, and its descriptor goes to the receiver over a Unix socket
 * with an abstract name (native/partition_map.cc).
 * Handshake (frames on the link's own socket; the link handles them, the ring never sees them):
 *   sender   -> SharedOffer   payload: UTF-8 JSON { socket, capacity, nonce (hex) }
 *   receiver: connects to the abstract socket `socket` (a rank on another host, or in another
 *             network namespace, cannot), checks its owner is its own uid, sends the nonce
 *   sender:   checks the caller's uid (SO_PEERCRED) and the nonce, sends the memfd (SCM_RIGHTS),
 *             then stops listening; a caller with a wrong nonce or uid gets nothing
 *   receiver: maps it (fstat: a file of the offered size), checks the nonce at its start
 *   receiver -> SharedAnswer  index: 1 when mapped, 0 when not (another host, no addon)
 *   sender: after a 1 sends large payloads through the region.
 *
 * Region layout: [0, 16) nonce | [16, 20) u32 `consumed`, written by the receiver | [64, 64 +
 * capacity) data, a circular buffer. `head` counts the bytes placed (mod 2^32). Both sides place
 * each shared payload by the same rule (place), so no offset crosses the socket. The sender places
 * a payload only when it fits in what the receiver has consumed; otherwise it goes inline.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { mapAddon } from '../util/addons.js';

/** Smaller payloads (heartbeats, statuses, aborts) stay on the socket. */
export const SHARED_MIN_BYTES = 4096;
/** A power of two, so `head` may wrap at 2^32 and still name the same place. */
export const SHARED_CAPACITY = 16 * 1024 * 1024;
/** The largest region a peer may offer: far below 2^32, so a region's places stay below `head`'s wrap. */
export const SHARED_MAX_CAPACITY = 2 ** 30;
const DATA_AT = 64;
const NONCE_BYTES = 16;
const CONSUMED_WORD = 4; // u32 index of byte 16
/** How long the receiver waits for the descriptor after its proof. */
const HANDOVER_MS = 5000;

export interface SharedOffer {
  /** The abstract Unix socket's name (without its leading NUL). */
  socket: string;
  capacity: number;
  nonce: string;
}

/**
 * Where a payload of `bytes` goes after `head` bytes were placed: at the circular buffer's current
 * position, or at its start when it would run past the end (the bytes skipped count as used).
 */
export function place(head: number, bytes: number, capacity: number): { offset: number; end: number } {
  const at = head & (capacity - 1);
  if (at + bytes <= capacity) return { offset: at, end: (head + bytes) >>> 0 };
  return { offset: 0, end: (head + (capacity - at) + bytes) >>> 0 };
}

/** Bytes in use between what the receiver consumed and `end` (both mod 2^32). */
export const inUse = (end: number, consumed: number): number => (end - consumed) >>> 0;

abstract class Region {
  protected head = 0;
  protected readonly consumedWord: Uint32Array;

  constructor(
    protected readonly bytes: Uint8Array,
    readonly capacity: number,
  ) {
    this.consumedWord = new Uint32Array(bytes.buffer, bytes.byteOffset, DATA_AT / 4);
  }
}

/** The sending side's region: made, offered, and used once the peer has mapped it. */
export class OutgoingRegion extends Region {
  private fd: number | undefined;
  private constructor(
    bytes: Uint8Array,
    capacity: number,
    fd: number,
    private readonly server: net.Server,
    readonly socketName: string,
    private readonly nonce: Buffer,
  ) {
    super(bytes, capacity);
    this.fd = fd;
    bytes.set(nonce, 0);
    server.on('connection', (socket) => this.handOver(socket));
  }

  /** A new region and its socket, or undefined where the addon is not built or memory is short. */
  static async create(capacity = SHARED_CAPACITY): Promise<OutgoingRegion | undefined> {
    const addon = mapAddon();
    if (!addon || process.platform !== 'linux') return undefined;
    let made: { bytes: Uint8Array; fd: number };
    try {
      made = addon.createRegion(DATA_AT + capacity);
    } catch {
      return undefined; // no memory for it: the link stays plain TCP
    }
    const name = `sparkring-ring-${randomBytes(16).toString('hex')}`;
    const server = net.createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ path: `\0${name}` }, () => resolve());
      });
    } catch {
      addon.closeFd(made.fd);
      return undefined;
    }
    server.on('error', () => undefined);
    return new OutgoingRegion(made.bytes, capacity, made.fd, server, name, randomBytes(NONCE_BYTES));
  }

  offer(): SharedOffer {
    return { socket: this.socketName, capacity: this.capacity, nonce: this.nonce.toString('hex') };
  }

  /** One caller: it gets the descriptor if it is this uid and sends the nonce; then the socket stops listening. */
  private handOver(socket: net.Socket): void {
    const addon = mapAddon();
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    socket.on('error', () => undefined);
    if (!addon || fd === undefined || this.fd === undefined || addon.peerUid(fd) !== process.getuid?.()) {
      socket.destroy();
      return;
    }
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), HANDOVER_MS);
    socket.on('data', (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length < NONCE_BYTES) return;
      clearTimeout(timer);
      socket.pause();
      const proven = got.length === NONCE_BYTES && timingSafeEqual(got, this.nonce);
      if (proven && this.fd !== undefined) {
        try {
          addon.sendFd(fd, this.fd);
          this.release();
        } catch {
          // the caller went away: another may still come until release()
        }
      }
      socket.end();
    });
  }

  /** Copies `payload` in and returns true; false when it does not fit yet (it then goes inline). */
  put(payload: Uint8Array): boolean {
    if (payload.byteLength > this.capacity) return false;
    const { offset, end } = place(this.head, payload.byteLength, this.capacity);
    if (inUse(end, Atomics.load(this.consumedWord, CONSUMED_WORD)) > this.capacity) return false;
    this.bytes.set(payload, DATA_AT + offset);
    this.head = end;
    return true;
  }

  /** Stops offering: the socket closes and this side's descriptor goes (the mappings stay); safe to call again. */
  release(): void {
    this.server.close();
    if (this.fd !== undefined) mapAddon()?.closeFd(this.fd);
    this.fd = undefined;
  }
}

/** The receiving side's region: the sender's, mapped here. */
export class IncomingRegion extends Region {
  /**
   * Receives and maps an offered region, and checks it is the sender's own (the nonce). Rejects
   * with the reason when it cannot: the sender is on another host, the addon is not built, the
   * offer is malformed.
   */
  static async open(offer: SharedOffer): Promise<IncomingRegion> {
    const addon = mapAddon();
    if (!addon) throw new Error('native/build/partition_map.node is not built here');
    if (!/^sparkring-ring-[0-9a-f]{32}$/.test(offer.socket)) throw new Error(`not a sparkring region: ${offer.socket}`);
    // Arithmetic, not bitwise: `&` works on 32 bits, and 2^33 & (2^33 - 1) is 0 there.
    const c = offer.capacity;
    if (!Number.isInteger(c) || c < SHARED_MIN_BYTES || c > SHARED_MAX_CAPACITY || 2 ** Math.round(Math.log2(c)) !== c)
      throw new Error(`capacity ${c} is not a power of two from ${SHARED_MIN_BYTES} to ${SHARED_MAX_CAPACITY}`);
    if (!/^[0-9a-f]{32}$/.test(offer.nonce)) throw new Error('malformed nonce');
    const socket = addon.connectRegion(offer.socket, Buffer.from(offer.nonce, 'hex'));
    const deadline = Date.now() + HANDOVER_MS;
    for (;;) {
      let bytes: Uint8Array | null;
      try {
        bytes = addon.receiveRegion(socket, DATA_AT + c);
      } catch (err) {
        throw new Error(`the region was not handed over: ${(err as Error).message}`);
      }
      if (bytes) {
        if (Buffer.from(bytes.subarray(0, NONCE_BYTES)).toString('hex') !== offer.nonce)
          throw new Error(`the region handed over by ${offer.socket} is not the one offered (its nonce differs)`);
        return new IncomingRegion(bytes, c);
      }
      if (Date.now() > deadline) {
        addon.closeFd(socket);
        throw new Error(`the region's owner did not hand it over in ${HANDOVER_MS} ms`);
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  /** Copies the next shared payload into `into` (its length is the payload's) and frees its place. */
  take(into: Uint8Array): void {
    const { offset, end } = place(this.head, into.byteLength, this.capacity);
    into.set(this.bytes.subarray(DATA_AT + offset, DATA_AT + offset + into.byteLength));
    this.head = end;
    Atomics.store(this.consumedWord, CONSUMED_WORD, end);
  }
}

export function parseOffer(payload: Uint8Array): SharedOffer {
  const o = JSON.parse(Buffer.from(payload).toString('utf8')) as Partial<SharedOffer>;
  if (typeof o.socket !== 'string' || typeof o.capacity !== 'number' || typeof o.nonce !== 'string')
    throw new Error('malformed shared-memory offer');
  return { socket: o.socket, capacity: o.capacity, nonce: o.nonce };
}
