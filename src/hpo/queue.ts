/**
 * The trial queue of a search, on Redis: trials wait in a list, an executor claims one with a
 * lease it renews by heartbeat, and completes or fails it. Every step is one Lua script, so a
 * trial has exactly one final result: a lease that expired (its executor died) puts the trial
 * back, and the late report of a previous owner is refused.
 */
import type { Redis } from 'ioredis';
import { TRIAL_ID } from '../events/protocol.js';
import { excluded, type TrialRetryPolicy } from './retry-policy.js';
import type { Hparams } from './space.js';

export type TrialStatus = 'pending' | 'running' | 'done' | 'failed';

export interface TrialRecord {
  id: string;
  hparams: Hparams;
  status: TrialStatus;
  attempts: number;
  owner: string | null;
  result: unknown;
  error: string | null;
}

export interface Claim {
  id: string;
  hparams: Hparams;
  /** 0 for the first try, as a run's attempt and ctx.attempt; the trial's `attempts` counts tries. */
  attempt: number;
}

// A trial this owner failed before is skipped while others wait, unless ARGV[5] allows it.
const CLAIM = `
local id = false
for _, candidate in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do
  if ARGV[5] == '1' or redis.call('SISMEMBER', ARGV[3] .. candidate .. ':failedBy', ARGV[1]) == 0 then
    id = candidate
    break
  end
end
if not id then return false end
redis.call('LREM', KEYS[1], 1, id)
local t = ARGV[3] .. id
local attempts = redis.call('HINCRBY', t, 'attempts', 1)
redis.call('HSET', t, 'status', 'running', 'owner', ARGV[1])
redis.call('SADD', KEYS[2], id)
redis.call('SET', ARGV[4] .. id, ARGV[1], 'PX', ARGV[2])
return {id, redis.call('HGET', t, 'hparams'), attempts}`;

const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

// KEYS: trial hash, lease, running set, pending list; ARGV: owner, outcome, payload, maxAttempts, id
const FINISH = `
if redis.call('HGET', KEYS[1], 'status') ~= 'running' or redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[5])
if ARGV[2] == 'done' then
  redis.call('HSET', KEYS[1], 'status', 'done', 'result', ARGV[3])
  return 1
end
redis.call('HSET', KEYS[1], 'error', ARGV[3])
redis.call('SADD', KEYS[1] .. ':failedBy', ARGV[1])
if tonumber(redis.call('HGET', KEYS[1], 'attempts')) >= tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[1], 'status', 'failed')
  return 2
end
redis.call('HSET', KEYS[1], 'status', 'pending', 'owner', '')
redis.call('LPUSH', KEYS[4], ARGV[5])
return 3`;

// KEYS: running set, pending list; ARGV: trial prefix, lease prefix, maxAttempts
const REAP = `
local back = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[2] .. id) == 0 then
    local t = ARGV[1] .. id
    redis.call('SREM', KEYS[1], id)
    redis.call('HSET', t, 'error', 'its executor stopped renewing the lease (lost)')
    if tonumber(redis.call('HGET', t, 'attempts')) >= tonumber(ARGV[3]) then
      redis.call('HSET', t, 'status', 'failed')
    else
      redis.call('HSET', t, 'status', 'pending', 'owner', '')
      redis.call('LPUSH', KEYS[2], id)
    end
    table.insert(back, id)
  end
end
return back`;

export class TrialQueue {
  private readonly prefix: string;

  constructor(
    private readonly redis: Redis,
    searchId: string,
    private readonly o: TrialRetryPolicy,
  ) {
    this.prefix = `sparkring:search:${searchId}`;
  }

  private key(part: string): string {
    return `${this.prefix}:${part}`;
  }

  async enqueue(trials: ReadonlyArray<{ id: string; hparams: Hparams }>): Promise<void> {
    const m = this.redis.multi();
    for (const t of trials) {
      m.hset(this.key(`trial:${t.id}`), { hparams: JSON.stringify(t.hparams), status: 'pending', attempts: 0, owner: '' });
      m.rpush(this.key('pending'), t.id);
      m.sadd(this.key('all'), t.id);
    }
    await m.exec();
  }

  /**
   * The next pending trial for `owner` (an executor), leased for leaseMs; null when none waits.
   * Trials `owner` failed before are left to other executors unless `evenIfFailedHere`.
   */
  async claim(owner: string, evenIfFailedHere = false): Promise<Claim | null> {
    const r = (await this.redis.eval(
      CLAIM,
      2,
      this.key('pending'),
      this.key('running'),
      owner,
      this.o.leaseMs,
      this.key('trial:'),
      this.key('lease:'),
      evenIfFailedHere ? '1' : '0',
    )) as [string, string, number] | null;
    if (!r) return null;
    // A queue in a shared Redis may hold what others put there: an id names a folder, so only
    // well-formed ones run; anything else is dropped (it was taken off the queue by the claim).
    const hparams = parseJsonObject(r[1]);
    if (!TRIAL_ID.test(String(r[0])) || hparams === undefined) {
      await this.redis.srem(this.key('running'), String(r[0]));
      return this.claim(owner, evenIfFailedHere);
    }
    return { id: r[0], hparams: hparams as Hparams, attempt: Number(r[2]) - 1 };
  }

  /** Extends the lease; false when it was lost (the trial went back to the queue): stop the trial. */
  async renew(id: string, owner: string): Promise<boolean> {
    return (await this.redis.eval(RENEW, 1, this.key(`lease:${id}`), owner, this.o.leaseMs)) === 1;
  }

  /** Records the final result; false when `owner` no longer holds the trial (refused). */
  async complete(id: string, owner: string, result: unknown): Promise<boolean> {
    const accepted = (await this.finish(id, owner, 'done', JSON.stringify(result ?? null))) === 1;
    if (accepted) await this.redis.multi().hset(this.key('failures'), owner, 0).hincrby(this.key('successes'), owner, 1).exec();
    return accepted;
  }

  /** A failed try: back to the queue, or failed for good after maxAttempts. */
  async fail(id: string, owner: string, error: string): Promise<'requeued' | 'failed' | 'refused'> {
    const r = await this.finish(id, owner, 'failed', error);
    if (r > 0) await this.redis.hincrby(this.key('failures'), owner, 1);
    return r === 2 ? 'failed' : r === 3 ? 'requeued' : 'refused';
  }

  private async finish(id: string, owner: string, outcome: string, payload: string): Promise<number> {
    return Number(
      await this.redis.eval(
        FINISH,
        4,
        this.key(`trial:${id}`),
        this.key(`lease:${id}`),
        this.key('running'),
        this.key('pending'),
        owner,
        outcome,
        payload,
        this.o.maxAttempts,
        id,
      ),
    );
  }

  /** Puts back every running trial whose lease expired; returns their ids. */
  async reap(): Promise<string[]> {
    return (await this.redis.eval(
      REAP,
      2,
      this.key('running'),
      this.key('pending'),
      this.key('trial:'),
      this.key('lease:'),
      this.o.maxAttempts,
    )) as string[];
  }

  /** Trial failures per executor since its last success (for excluding executors that keep failing trials). */
  async failuresByOwner(): Promise<Record<string, number>> {
    const h = await this.redis.hgetall(this.key('failures'));
    return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, Number(v)]));
  }

  /** Whether `owner` leaves the search for failing trials (retry-policy.ts, rule 5). */
  async excluded(owner: string): Promise<boolean> {
    const [failures, successes] = await Promise.all([
      this.redis.hget(this.key('failures'), owner),
      this.redis.hgetall(this.key('successes')),
    ]);
    const othersCompleted = Object.entries(successes).some(([o, n]) => o !== owner && Number(n) > 0);
    return excluded(this.o, Number(failures ?? 0), othersCompleted);
  }

  /** Asks the trial to stop early (the agent running it passes it on). */
  async requestStop(id: string): Promise<void> {
    await this.redis.sadd(this.key('stop'), id);
  }

  async stopRequested(id: string): Promise<boolean> {
    return (await this.redis.sismember(this.key('stop'), id)) === 1;
  }

  /** The keys the Spark driver reads (spark-plugin/sparkring/driver/search_rounds.py) to size its rounds. */
  keys(): { pending: string; running: string; client: string } {
    return { pending: this.key('pending'), running: this.key('running'), client: this.key('client') };
  }

  /** The launching client is alive (the driver stops waiting for lost trials without it). */
  async clientAlive(ttlMs: number): Promise<void> {
    await this.redis.set(this.key('client'), String(Date.now()), 'PX', ttlMs);
  }

  async trials(): Promise<TrialRecord[]> {
    const ids = (await this.redis.smembers(this.key('all')))
      .filter((id) => TRIAL_ID.test(id))
      .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    const out: TrialRecord[] = [];
    for (const id of ids) {
      const h = await this.redis.hgetall(this.key(`trial:${id}`));
      out.push({
        id,
        hparams: (parseJsonObject(h.hparams ?? '{}') ?? {}) as Hparams,
        status: (h.status ?? 'pending') as TrialStatus,
        attempts: Number(h.attempts ?? 0),
        owner: h.owner || null,
        result: h.result === undefined ? null : parseJson(h.result),
        error: h.error ?? null,
      });
    }
    return out;
  }

  async pendingCount(): Promise<number> {
    return this.redis.llen(this.key('pending'));
  }

  /** True when no trial waits or runs. */
  async drained(): Promise<boolean> {
    const [pending, running] = await Promise.all([this.redis.llen(this.key('pending')), this.redis.scard(this.key('running'))]);
    return pending === 0 && running === 0;
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  const v = parseJson(text);
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}
