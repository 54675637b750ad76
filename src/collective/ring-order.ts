/**
 * The order of the ranks around the ring. With every rank's host known (options.hosts), the ranks
 * of one host sit next to each other: the ring then crosses each host boundary once each way, and
 * the neighbours on one host pass data through shared memory. Spark deals barrier tasks to
 * executors in no particular order (ranks 0 and 2 on one host, 1 and 3 on another), and in rank
 * order such a ring would cross between hosts at every step, sending each byte over the network
 * twice as often. Every rank computes the same order from the same list.
 */

/** Ranks in ring order: the hosts in the order of their lowest rank, each host's ranks ascending. */
export function ringOrder(worldSize: number, hosts?: readonly string[]): number[] {
  const ranks = Array.from({ length: worldSize }, (_, r) => r);
  if (!hosts || hosts.length !== worldSize) return ranks;
  const firstRank = new Map<string, number>();
  hosts.forEach((h, r) => {
    if (!firstRank.has(h)) firstRank.set(h, r);
  });
  const groupOf = (r: number): number => firstRank.get(hosts[r] as string) as number;
  return ranks.sort((a, b) => groupOf(a) - groupOf(b) || a - b);
}

/** A rank's neighbours in `order`: the rank it receives from and the one it sends to. */
export function neighboursIn(order: readonly number[], rank: number): { predecessor: number; successor: number } {
  const n = order.length;
  const at = order.indexOf(rank);
  return { predecessor: order[(at - 1 + n) % n] as number, successor: order[(at + 1) % n] as number };
}
