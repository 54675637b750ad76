/**
 * The step plan of ctx.fit: how many steps an epoch has and which of its rows a rank takes in
 * each, so that every rank takes the same number of steps and every row is used exactly once per
 * epoch, however uneven the partitions are (the problem Horovod's hvd.join exists for).
 *
 * An epoch has S = ceil(max_r n_r / batchSize) steps. Rank r spreads its n_r rows over them: step k
 * takes positions [floor(n_r k / S), floor(n_r (k+1) / S)) of the epoch's shuffled order, so the
 * largest partition takes batchSize rows a step and the others proportionally fewer (0 at times).
 */
import { seededRandom } from '../../util/random.js';

export function stepsPerEpoch(rowsPerRank: readonly number[], batchSize: number): number {
  const most = Math.max(0, ...rowsPerRank);
  return Math.ceil(most / batchSize);
}

/** [start, end) into the epoch's order of the rows this rank takes in step k of `steps`. */
export function stepRange(rows: number, steps: number, k: number): [number, number] {
  return [Math.floor((rows * k) / steps), Math.floor((rows * (k + 1)) / steps)];
}

/** The epoch's order of a rank's rows: identity without shuffle, else a seeded permutation. */
export function epochOrder(rows: number, o: { shuffle: boolean; seed: number; epoch: number; rank: number }): Int32Array {
  const order = Int32Array.from({ length: rows }, (_, i) => i);
  if (!o.shuffle) return order;
  const rnd = seededRandom(((o.seed * 1_000_003 + o.epoch) * 8191 + o.rank) >>> 0);
  for (let i = rows - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    const t = order[i] as number;
    order[i] = order[j] as number;
    order[j] = t;
  }
  return order;
}
