/**
 * Shared memory under a raw TCP link whose two ranks share a host (and its /dev/shm). Payloads of
 * at least SHARED_MIN_BYTES then skip the socket: the sender copies the payload into a region both
 * have mapped and sends only the frame's header, flagged `shared`; the receiver copies the payload
 * out to where the ring wants it. The socket still carries every header in order, so ordering,
 * liveness, aborts and small frames are unchanged.
 *
 * Handshake (frames on the link's own socket; the link handles them, the ring never sees them):
 *   sender   -> SharedOffer   payload: UTF-8 JSON { path, capacity, nonce (hex) }
 *   receiver: maps `path`, checks the nonce at the region's start, unlinks the file
 *   receiver -> SharedAnswer  index: 1 when mapped, 0 when not (another host, no addon)
 *   sender: unlinks the file too (whichever is first; it lives milliseconds), and after a 1 sends
 *           large payloads through the region.
 * A rank on another host cannot open the file (its /dev/shm is its own), so it answers 0 and the
 * link stays plain TCP.
 *
 * Region layout: [0, 16) nonce | [16, 20) u32 `consumed`, written by the receiver | [64, 64 +
 * capacity) data, a circular buffer. `head` counts the bytes placed (mod 2^32). Both sides place
 * each shared payload by the same rule (place), so no offset crosses the socket. The sender places
 * a payload only when it fits in what the receiver has consumed; otherwise it goes inline.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
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
const SHM_DIR = '/dev/shm';

export interface SharedOffer {
  path: string;
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
  private constructor(
    bytes: Uint8Array,
    capacity: number,
    readonly path: string,
    private readonly nonce: Buffer,
  ) {
    super(bytes, capacity);
    bytes.set(nonce, 0);
    unanswered.add(path);
  }

  /** A new region in /dev/shm, or undefined where there is none or the addon is not built. */
  static create(capacity = SHARED_CAPACITY): OutgoingRegion | undefined {
    const addon = mapAddon();
    if (!addon || !existsSync(SHM_DIR)) return undefined;
    const path = join(SHM_DIR, `sparkring-ring-${process.pid}-${randomBytes(8).toString('hex')}`);
    try {
      return new OutgoingRegion(addon.createShared(path, DATA_AT + capacity), capacity, path, randomBytes(NONCE_BYTES));
    } catch {
      return undefined; // /dev/shm full or read-only: the link stays plain TCP
    }
  }

  offer(): SharedOffer {
    return { path: this.path, capacity: this.capacity, nonce: this.nonce.toString('hex') };
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

  /** Removes the file (the mappings stay); safe to call again. */
  unlink(): void {
    if (unanswered.delete(this.path)) removeFile(this.path);
  }
}

/** The receiving side's region: the sender's, mapped here. */
export class IncomingRegion extends Region {
  /**
   * Maps an offered region and checks it is the sender's own (the nonce). Throws with the reason
   * when it cannot: the file is on another host, the addon is not built, the offer is malformed.
   */
  static open(offer: SharedOffer): IncomingRegion {
    const addon = mapAddon();
    if (!addon) throw new Error('native/build/partition_map.node is not built here');
    if (!offer.path.startsWith(`${SHM_DIR}/sparkring-ring-`) || offer.path.includes('..'))
      throw new Error(`not a sparkring region: ${offer.path}`);
    // Arithmetic, not bitwise: `&` works on 32 bits, and 2^33 & (2^33 - 1) is 0 there.
    const c = offer.capacity;
    if (!Number.isInteger(c) || c < SHARED_MIN_BYTES || c > SHARED_MAX_CAPACITY || 2 ** Math.round(Math.log2(c)) !== c)
      throw new Error(`capacity ${c} is not a power of two from ${SHARED_MIN_BYTES} to ${SHARED_MAX_CAPACITY}`);
    const bytes = addon.openShared(offer.path, DATA_AT + offer.capacity);
    removeFile(offer.path);
    if (Buffer.from(bytes.subarray(0, NONCE_BYTES)).toString('hex') !== offer.nonce)
      throw new Error(`${offer.path} is not the region offered (its nonce differs)`);
    return new IncomingRegion(bytes, offer.capacity);
  }

  /** Copies the next shared payload into `into` (its length is the payload's) and frees its place. */
  take(into: Uint8Array): void {
    const { offset, end } = place(this.head, into.byteLength, this.capacity);
    into.set(this.bytes.subarray(DATA_AT + offset, DATA_AT + offset + into.byteLength));
    this.head = end;
    Atomics.store(this.consumedWord, CONSUMED_WORD, end);
  }
}

/** Files offered and not yet removed: a process that exits before the answer removes them. */
const unanswered = new Set<string>();
process.once('exit', () => {
  for (const path of unanswered) removeFile(path);
});

function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already removed by the other side.
  }
}

export function parseOffer(payload: Uint8Array): SharedOffer {
  const o = JSON.parse(Buffer.from(payload).toString('utf8')) as Partial<SharedOffer>;
  if (typeof o.path !== 'string' || typeof o.capacity !== 'number' || typeof o.nonce !== 'string')
    throw new Error('malformed shared-memory offer');
  return { path: o.path, capacity: o.capacity, nonce: o.nonce };
}
