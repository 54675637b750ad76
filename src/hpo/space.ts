/**
 * Search spaces: grids (the Cartesian product of each key's values, as HopsML's grid_search) and
 * random search over distributions. Malformed spaces are refused before anything runs, naming the
 * key and the reason.
 */
import { seededRandom } from '../util/random.js';

export type Distribution =
  | { kind: 'uniform'; low: number; high: number }
  | { kind: 'loguniform'; low: number; high: number }
  | { kind: 'int'; low: number; high: number }
  | { kind: 'choice'; values: unknown[] };

export type Hparams = Record<string, unknown>;

export class SearchSpaceError extends Error {
  override readonly name = 'SearchSpaceError';
  constructor(
    readonly key: string,
    reason: string,
  ) {
    super(`search space key "${key}": ${reason}`);
  }
}

const KINDS = ['uniform', 'loguniform', 'int', 'choice'] as const;

const parseValue = (v: string): unknown => {
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
};

function splitKey(flag: string, text: string): [string, string] {
  const at = text.indexOf('=');
  if (at <= 0) throw new SearchSpaceError(text, `${flag} takes key=..., not "${text}"`);
  return [text.slice(0, at).trim(), text.slice(at + 1).trim()];
}

/** `--grid key=v1,v2,...` */
export function parseGridFlag(text: string): [string, unknown[]] {
  const [key, rest] = splitKey('--grid', text);
  const values = rest === '' ? [] : rest.split(',').map((v) => parseValue(v.trim()));
  checkGrid(key, values);
  return [key, values];
}

/** `--random key=uniform(0,1) | loguniform(1e-4,1e-1) | int(1,8) | choice(a,b,c)` */
export function parseRandomFlag(text: string): [string, Distribution] {
  const [key, rest] = splitKey('--random', text);
  const m = /^([a-z]+)\((.*)\)$/i.exec(rest);
  if (!m) throw new SearchSpaceError(key, `"${rest}" is not a distribution; write ${KINDS.map((k) => `${k}(...)`).join(', ')}`);
  const kind = (m[1] as string).toLowerCase();
  const args = (m[2] as string)
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  let d: Distribution;
  if (kind === 'choice') d = { kind, values: args.map(parseValue) };
  else if (kind === 'uniform' || kind === 'loguniform' || kind === 'int') {
    if (args.length !== 2) throw new SearchSpaceError(key, `${kind} takes two bounds (low, high), got ${args.length}`);
    d = { kind, low: Number(args[0]), high: Number(args[1]) };
  } else {
    throw new SearchSpaceError(key, `unknown distribution "${kind}"; use one of ${KINDS.join(', ')}`);
  }
  checkDistribution(key, d);
  return [key, d];
}

function checkGrid(key: string, values: unknown[]): void {
  if (!Array.isArray(values) || values.length === 0) throw new SearchSpaceError(key, 'an empty list of values');
}

export function checkDistribution(key: string, d: Distribution): void {
  if (!KINDS.includes(d.kind))
    throw new SearchSpaceError(key, `unknown distribution "${String(d.kind)}"; use one of ${KINDS.join(', ')}`);
  if (d.kind === 'choice') {
    if (!Array.isArray(d.values) || d.values.length === 0) throw new SearchSpaceError(key, 'choice() of nothing');
    return;
  }
  if (!Number.isFinite(d.low) || !Number.isFinite(d.high))
    throw new SearchSpaceError(key, `${d.kind} bounds must be numbers, got ${d.low} and ${d.high}`);
  if (!(d.low < d.high) && !(d.kind === 'int' && d.low === d.high)) {
    throw new SearchSpaceError(key, `${d.kind} needs low < high, got low ${d.low} and high ${d.high}`);
  }
  if (d.kind === 'loguniform' && d.low <= 0) throw new SearchSpaceError(key, `loguniform needs low > 0, got ${d.low}`);
  if (d.kind === 'int' && (!Number.isInteger(d.low) || !Number.isInteger(d.high))) {
    throw new SearchSpaceError(key, `int bounds must be integers, got ${d.low} and ${d.high}`);
  }
}

/** Every combination, the first key varying slowest (the order trials are numbered in). */
export function expandGrid(grid: Record<string, unknown[]>): Hparams[] {
  for (const [k, v] of Object.entries(grid)) checkGrid(k, v);
  let out: Hparams[] = [{}];
  for (const [key, values] of Object.entries(grid)) out = out.flatMap((h) => values.map((v) => ({ ...h, [key]: v })));
  return Object.keys(grid).length === 0 ? [] : out;
}

export function sample(d: Distribution, u: () => number): unknown {
  switch (d.kind) {
    case 'uniform':
      return d.low + u() * (d.high - d.low);
    case 'loguniform':
      return Math.exp(Math.log(d.low) + u() * (Math.log(d.high) - Math.log(d.low)));
    case 'int':
      return d.low + Math.floor(u() * (d.high - d.low + 1));
    case 'choice':
      return d.values[Math.floor(u() * d.values.length)];
  }
}

/** `trials` draws from every distribution (and every fixed grid value, crossed), seeded. */
export function sampleRandom(space: Record<string, Distribution>, trials: number, seed = 0): Hparams[] {
  if (!Number.isInteger(trials) || trials < 1) throw new SearchSpaceError('trials', `must be a positive integer, got ${trials}`);
  for (const [k, d] of Object.entries(space)) checkDistribution(k, d);
  const u = seededRandom(seed);
  return Array.from({ length: trials }, () => Object.fromEntries(Object.entries(space).map(([k, d]) => [k, sample(d, u)])));
}
