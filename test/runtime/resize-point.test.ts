import { afterEach, describe, expect, it } from 'vitest';
import type { Ring } from '../../src/collective/index.js';
import { codeOf } from '../../src/errors/codes.js';
import { ResizeRequestedError } from '../../src/runtime/fit/errors.js';
import { resizePoint } from '../../src/runtime/resize-point.js';
import { ringInProcess } from '../helpers/ring.js';

describe('a resize point (ctx.resizePoint)', () => {
  let rings: Ring[] = [];
  afterEach(async () => {
    await Promise.all(rings.map((r) => r.close()));
    rings = [];
  });

  it("returns on every rank while the driver asks nothing, and ends every rank's stage once rank 0 sees the ask", async () => {
    rings = await ringInProcess(3);
    // Only rank 0 reads the driver's file; the others' view does not count.
    await Promise.all(rings.map((r) => resizePoint(r, () => r.rank !== 0, 'step 10')));
    const ended = await Promise.all(rings.map((r) => resizePoint(r, () => r.rank === 0, 'step 20').catch((e: unknown) => e)));
    for (const e of ended) {
      expect(e).toBeInstanceOf(ResizeRequestedError);
      expect(codeOf(e)).toBe('SR_RESIZE');
      expect((e as Error).message).toMatch(/^the ranks ended their stage after step 20 for a larger one/);
    }
  });
});
