/**
 * The run secret's keys, one per purpose (HKDF-SHA256 over the secret, RFC 5869), so that the key
 * a stream entry is signed with is not the one that proves the driver's result, nor the ring's:
 *   events  every entry on the run's stream carries `m`, the HMAC-SHA256 of its JSON `e` under it;
 *           a reader drops an entry without a valid one (a shared Redis may hold anything)
 *   result  the driver's result on its last event is proven with it (jobs/driver-result.ts)
 *   ring    the ring's handshake proofs (collective/auth.ts), for the workers alone
 * spark-plugin/sparkring/run_keys.py derives the same keys in Python.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

export type KeyPurpose = 'events' | 'result' | 'ring';

/** The 32-byte key for `purpose`, from the run's secret (hex, as the spec carries it). */
export function runKey(secret: string, purpose: KeyPurpose): Buffer {
  return Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.alloc(0), `sparkring ${purpose}`, 32));
}

export function mac(key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text).digest('hex');
}

/** Whether `given` is the HMAC of `text` under `key` (in constant time). */
export function macMatches(key: Buffer, text: string, given: unknown): boolean {
  if (typeof given !== 'string') return false;
  const expected = createHmac('sha256', key).update(text).digest();
  const got = Buffer.from(given, 'hex');
  return got.length === expected.length && timingSafeEqual(got, expected);
}
