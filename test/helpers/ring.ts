import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { type RingProcesses, startRing } from '../../cluster/ring-processes.js';
import { listen, type Ring, type RingOptions } from '../../src/collective/index.js';

export const RING_WORKER = fileURLToPath(new URL('../fixtures/ring-worker.mjs', import.meta.url));

const running = new Set<RingProcesses>();

/** Starts a ring of worker processes (test/fixtures/ring-worker.mjs); killed by `killRings()`. */
export async function ringOf(n: number, config: (rank: number) => Record<string, unknown>): Promise<RingProcesses> {
  const ring = await startRing(RING_WORKER, n, config);
  running.add(ring);
  return ring;
}

export function killRings(): void {
  for (const r of running) r.killAll();
  running.clear();
}

/** Every rank's final {result} or {error}, once all have exited. */
export async function outcomes(ring: RingProcesses, timeoutMs = 90_000): Promise<Array<Record<string, unknown> | undefined>> {
  const all = Promise.all(ring.ranks.map((r) => r.exited));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`ring did not finish in ${timeoutMs} ms: ${ring.ranks.map((r) => r.stderr).join('\n')}`)),
      timeoutMs,
    );
  });
  try {
    await Promise.race([all, timeout]);
  } finally {
    clearTimeout(timer);
  }
  // A rank killed by a test has no outcome.
  return ring.ranks.map((r) => [...r.messages].reverse().find((m) => 'result' in m || 'error' in m));
}

/** A ring of `n` members inside this process (for logic that needs no separate processes). */
export async function ringInProcess(n: number, extra: Partial<RingOptions> = {}): Promise<Ring[]> {
  const members = await Promise.all(
    Array.from({ length: n }, (_, rank) => listen({ jobId: 'in-process', rank, worldSize: n, secret: 's3cret', ...extra })),
  );
  const addresses = members.map((m) => m.address);
  return Promise.all(members.map((m) => m.join(addresses)));
}

/** Two ranks' sum of [1, 2] and [3, 4], each checked to be [4, 6], then both closed: a ring that works. */
export async function expectWorkingPair(a: Ring, b: Ring): Promise<void> {
  const [x, y] = await Promise.all([a.allreduce(new Float32Array([1, 2]), 'sum'), b.allreduce(new Float32Array([3, 4]), 'sum')]);
  expect(Array.from(x)).toEqual([4, 6]);
  expect(Array.from(y)).toEqual([4, 6]);
  await Promise.all([a.close(), b.close()]);
}
