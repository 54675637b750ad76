/**
 * The ring's watch: what each rank is doing, and whether the ring still makes progress.
 *
 * Protocol: every tick (a quarter of the peer timeout, 20 ms to 1 s) a rank sends both neighbours
 * a Heartbeat frame whose payload is the JSON array of every rank's last known status (its own at
 * [rank], with a version that grows on each change); a rank keeps the newer version of each other
 * rank's status it hears, so statuses travel the ring. While a collective is in progress, a tick
 * ends the ring when it made no progress for the collective timeout (naming the ranks that did not
 * arrive, from their statuses), or when a neighbour was silent for the peer timeout.
 */
import { CollectiveTimeoutError, describeStatus, PeerFailedError, type RankStatus } from './errors.js';
import { CollectiveKind, FrameKind } from './frames.js';
import type { Link } from './link.js';
import type { RingOptions } from './options.js';

/** What the watch needs of its ring (collective/ring.ts). */
export interface WatchedRing {
  state(): {
    /** A collective is in progress. */
    busy: boolean;
    /** The last collective's number. */
    seq: number;
    /** The seq before the user's first collective: messages count the user's collectives. */
    countFrom: number;
    /** Closed or failed. */
    ended: boolean;
  };
  fail(err: Error, from?: Link): void;
}

export class RingWatch {
  /** Every rank's last known status (this rank's own at [rank]); heartbeats carry it around the ring. */
  private readonly statuses: Array<RankStatus | undefined>;
  /** When the collective in progress last made progress (entered, or a piece arrived). */
  private progressAt = Date.now();
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: Pick<RingOptions, 'rank' | 'worldSize' | 'peerTimeoutMs' | 'collectiveTimeoutMs' | 'hosts'>,
    private readonly ring: WatchedRing,
    private readonly links: readonly Link[],
  ) {
    this.statuses = new Array(options.worldSize).fill(undefined);
    this.statuses[options.rank] = { version: 0, seq: 0, collective: 'none', state: 'between', step: null };
    if (links.length === 2) {
      const every = Math.min(1000, Math.max(20, Math.floor(options.peerTimeoutMs / 4)));
      this.timer = setInterval(() => this.tick(), every);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** The collective in progress moved on. */
  progressed(): void {
    this.progressAt = Date.now();
  }

  /** This rank's own status changes (a returned rank stays returned). */
  setStatus(change: Partial<Omit<RankStatus, 'version'>>): void {
    const mine = this.statuses[this.options.rank] as RankStatus;
    if (mine.state === 'returned' && change.state !== undefined) return;
    this.statuses[this.options.rank] = { ...mine, ...change, version: mine.version + 1 };
  }

  /** Keeps the newer of each rank's status from a neighbour's heartbeat (others' only: this rank knows its own). */
  heard(payload: Uint8Array): void {
    if (payload.byteLength === 0) return;
    let heard: unknown;
    try {
      heard = JSON.parse(Buffer.from(payload).toString('utf8'));
    } catch {
      return;
    }
    if (!Array.isArray(heard) || heard.length !== this.options.worldSize) return;
    heard.forEach((s: unknown, r) => {
      if (r === this.options.rank || !isRankStatus(s)) return;
      if (s.version > (this.statuses[r]?.version ?? -1)) this.statuses[r] = s;
    });
  }

  /** A rank's host as the cluster names it, when the ring was told (options.hosts). */
  hostOf(rank: number): string | undefined {
    return this.options.hosts?.[rank];
  }

  private tick(): void {
    const ring = this.ring.state();
    if (ring.ended) return;
    const statuses = Buffer.from(JSON.stringify(this.statuses));
    for (const l of this.links) {
      l.send({ kind: FrameKind.Heartbeat, collective: CollectiveKind.None, seq: ring.seq, index: this.options.rank }, statuses);
    }
    if (!ring.busy) return;
    const now = Date.now();
    if (now - this.progressAt > this.options.collectiveTimeoutMs) {
      this.ring.fail(this.collectiveTimeout(now - this.progressAt, ring.countFrom));
      return;
    }
    for (const l of this.links) {
      if (!l.saidGoodbye && now - l.lastHeardAt > this.options.peerTimeoutMs) {
        this.ring.fail(
          new PeerFailedError(
            l.peerRank,
            l.peerAddress,
            'stalled',
            this.options.rank,
            `nothing heard for ${now - l.lastHeardAt} ms (peer timeout ${this.options.peerTimeoutMs} ms)`,
            this.hostOf(l.peerRank),
          ),
          l,
        );
        return;
      }
    }
  }

  private collectiveTimeout(waitedMs: number, countFrom: number): CollectiveTimeoutError {
    const { rank } = this.options;
    const mine = this.statuses[rank] as RankStatus;
    const missing = this.statuses
      .map((s, r) => ({ s, r }))
      .filter(({ s, r }) => r !== rank && !(s?.state === 'in' && s.seq === mine.seq));
    const where = `${mine.collective} #${mine.seq - countFrom}${mine.step === null ? '' : ` (step ${mine.step})`}`;
    return new CollectiveTimeoutError(
      `rank ${rank} waited ${Math.round(waitedMs / 1000)} s in ${where} with no progress (collective timeout ${
        this.options.collectiveTimeoutMs / 1000
      } s); ranks that did not arrive: ${
        missing.length > 0
          ? missing.map(({ s, r }) => describeStatus(r, s, countFrom)).join(', ')
          : 'none known (they may be stuck inside it)'
      }. A rank that awaits something else or loops between steps keeps the others waiting; raise --collective-timeout if a step can take this long`,
      missing.map(({ r }) => r),
    );
  }
}

function isRankStatus(s: unknown): s is RankStatus {
  if (s === null || typeof s !== 'object') return false;
  const o = s as Record<string, unknown>;
  return (
    typeof o.version === 'number' &&
    typeof o.seq === 'number' &&
    typeof o.collective === 'string' &&
    (o.state === 'in' || o.state === 'between' || o.state === 'returned') &&
    (o.step === null || typeof o.step === 'number')
  );
}
