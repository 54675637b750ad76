/** The shared-memory region under a same-host link (src/collective/shared-memory.ts). */
import { existsSync } from 'node:fs';
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
  it('carries payloads in order, refuses one that does not fit until the receiver has taken', () => {
    const out = OutgoingRegion.create(64 * 1024) as OutgoingRegion;
    expect(out).toBeDefined();
    const incoming = IncomingRegion.open(out.offer());
    expect(existsSync(out.path)).toBe(false); // the receiver removed the file once it had it mapped
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
    out.unlink();
  });

  it('is refused when the file is not the one offered, or not a sparkring region', () => {
    const out = OutgoingRegion.create(64 * 1024) as OutgoingRegion;
    const offer = out.offer();
    expect(() => IncomingRegion.open({ ...offer, nonce: '00'.repeat(16) })).toThrow(/nonce differs/);
    expect(() => IncomingRegion.open({ ...offer, path: '/etc/passwd' })).toThrow(/not a sparkring region/);
    expect(() => IncomingRegion.open({ ...offer, capacity: 3000 })).toThrow(/power of two/);
    // 2^33 passed a 32-bit `c & (c - 1)` check; and 2^31 would let `head` wrap inside the region.
    expect(() => IncomingRegion.open({ ...offer, capacity: 2 ** 33 })).toThrow(/power of two from 4096 to 1073741824/);
    expect(() => IncomingRegion.open({ ...offer, capacity: 2 ** 31 })).toThrow(/power of two/);
    // Another host has no such file in its /dev/shm.
    expect(() => IncomingRegion.open({ ...offer, path: '/dev/shm/sparkring-ring-0-missing' })).toThrow(/cannot open/);
    out.unlink();
    expect(existsSync(offer.path)).toBe(false);
  });
});
