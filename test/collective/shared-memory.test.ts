/** The shared-memory region under a same-host link (src/collective/shared-memory.ts). */
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { IncomingRegion, inUse, OutgoingRegion, place } from '../../src/collective/shared-memory.js';

describe('placement', () => {
  it('places at the current position, or at the start when a payload would run past the end', () => {
    expect(place(0, 10, 64)).toEqual({ offset: 0, end: 10 });
    expect(place(60, 4, 64)).toEqual({ offset: 60, end: 64 });
    // 60 + 10 > 64: the 4 bytes left at the end are skipped and count as used.
    expect(place(60, 10, 64)).toEqual({ offset: 0, end: 74 });
    expect(place(74, 10, 64)).toEqual({ offset: 10, end: 84 });
  });

  it('keeps naming the same place when the byte count wraps at 2^32', () => {
    const head = 2 ** 32 - 8;
    const { offset, end } = place(head, 16, 64);
    expect(offset).toBe(0); // 56 + 16 > 64
    expect(end).toBe(16);
    expect(inUse(end, head)).toBe(24);
  });
});

describe('a region between two sides in one process', () => {
  it('carries payloads in order, refuses one that does not fit until the receiver has taken', async () => {
    const out = (await OutgoingRegion.create(64 * 1024)) as OutgoingRegion;
    expect(out).toBeDefined();
    const before = readdirSync('/dev/shm');
    const incoming = await IncomingRegion.open(out.offer());
    expect(readdirSync('/dev/shm')).toEqual(before); // no name anywhere: a memfd, handed over
    const piece = (fill: number, n: number): Uint8Array => new Uint8Array(n).fill(fill);
    expect(out.put(piece(1, 40 * 1024))).toBe(true);
    expect(out.put(piece(2, 30 * 1024))).toBe(false); // 40 KiB unread of 64 KiB
    const first = new Uint8Array(40 * 1024);
    incoming.take(first);
    expect(first.every((b) => b === 1)).toBe(true);
    expect(out.put(piece(2, 30 * 1024))).toBe(true); // at the start: 30 KiB would run past the end
    // The 24 KiB skipped at the end count as used until the receiver is past them: 24 + 30 + 10 = 64.
    expect(out.put(piece(3, 11 * 1024))).toBe(false);
    expect(out.put(piece(3, 10 * 1024))).toBe(true);
    const second = new Uint8Array(30 * 1024);
    const third = new Uint8Array(10 * 1024);
    incoming.take(second);
    incoming.take(third);
    expect(second.every((b) => b === 2)).toBe(true);
    expect(third.every((b) => b === 3)).toBe(true);
    expect(out.put(piece(4, 65 * 1024))).toBe(false); // larger than the region: inline
    out.release();
  });

  it('is refused with a wrong nonce, a socket that is not a region, or a bad capacity', async () => {
    const out = (await OutgoingRegion.create(64 * 1024)) as OutgoingRegion;
    const offer = out.offer();
    await expect(IncomingRegion.open({ ...offer, nonce: '00'.repeat(16) })).rejects.toThrow(/refused the proof|not handed over/);
    await expect(IncomingRegion.open({ ...offer, socket: '/etc/passwd' })).rejects.toThrow(/not a sparkring region/);
    await expect(IncomingRegion.open({ ...offer, capacity: 3000 })).rejects.toThrow(/power of two/);
    // 2^33 passed a 32-bit `c & (c - 1)` check; and 2^31 would let `head` wrap inside the region.
    await expect(IncomingRegion.open({ ...offer, capacity: 2 ** 33 })).rejects.toThrow(/power of two from 4096 to 1073741824/);
    await expect(IncomingRegion.open({ ...offer, capacity: 2 ** 31 })).rejects.toThrow(/power of two/);
    // A rank on another host (or network namespace) finds no such socket.
    await expect(IncomingRegion.open({ ...offer, socket: `sparkring-ring-${'ab'.repeat(16)}` })).rejects.toThrow(/cannot reach/);
    // The one with the nonce still gets it; after that the socket is gone.
    await expect(IncomingRegion.open(offer)).resolves.toBeInstanceOf(IncomingRegion);
    await expect(IncomingRegion.open(offer)).rejects.toThrow(/cannot reach/);
    out.release();
  });
});
