import { describe, expect, it } from 'vitest';
import { codeOf } from '../../src/errors/codes.js';
import { during, type Phase, PhaseTimeoutError, phases } from '../../src/runtime/phase.js';

describe('worker phases', () => {
  it('follows each change, and a phase run with during() gives the one before it back', async () => {
    const seen: Phase[] = [];
    phases.follow((p) => seen.push(p));
    phases.enter('training');
    await during('checkpoint', 1000, async () => expect(phases.current).toBe('checkpoint'));
    expect(phases.current).toBe('training');
    expect(seen).toEqual(['training', 'checkpoint', 'training']);
  });

  it('a phase past its deadline fails with SR_PHASE_TIMEOUT naming the phase, and the phase before comes back', async () => {
    phases.enter('training');
    const never = new Promise<void>(() => undefined);
    const err = await during('checkpoint', 50, () => never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PhaseTimeoutError);
    expect(codeOf(err)).toBe('SR_PHASE_TIMEOUT');
    expect((err as PhaseTimeoutError).phase).toBe('checkpoint');
    expect((err as Error).message).toMatch(/^checkpoint did not end within its deadline of 0\.05 s/);
    expect(phases.current).toBe('training');
  });
});
