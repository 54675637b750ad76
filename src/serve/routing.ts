/**
 * Which version answers a request, by the model's policy (repository.ts): the newest, one pinned
 * version, or a canary split by percent weights. With the policy's sticky header, the split is by a
 * hash of the header's value instead of a coin, so one caller keeps to one version while the weights
 * stay. Only loaded versions are chosen: a canary whose version is still loading gets no share yet,
 * so a registration or a policy change never fails a request.
 */
import type { ModelPolicy } from './repository.js';

export type RouteVia = 'explicit' | 'latest' | 'only' | 'canary' | 'sticky';

export interface Route {
  version: number;
  via: RouteVia;
  /** A version to mirror the request to, if the policy names one and it is loaded. */
  shadow: number | null;
}

/** FNV-1a, 32 bits: a stable spread of header values (written here: one line, no library needed). */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The version for one request, or null when no version the policy routes to is loaded. */
export function route(
  policy: ModelPolicy,
  loaded: readonly number[],
  stickyKey: string | undefined,
  random: () => number = Math.random,
): Route | null {
  const shadowOf = (v: number): number | null =>
    policy.shadow && policy.shadow !== v && loaded.includes(policy.shadow) ? policy.shadow : null;
  const r = policy.routing;
  if (r.kind === 'only')
    return loaded.includes(r.version) ? { version: r.version, via: 'only', shadow: shadowOf(r.version) } : null;
  if (r.kind === 'latest') {
    // The shadow version is a candidate, not the newest to serve, even when it is newer.
    const serving = loaded.filter((v) => v !== policy.shadow);
    const v = serving.at(-1) ?? loaded.at(-1);
    return v === undefined ? null : { version: v, via: 'latest', shadow: shadowOf(v) };
  }
  const shares = Object.entries(r.weights)
    .map(([v, w]) => ({ version: Number(v), weight: w }))
    .filter((s) => loaded.includes(s.version))
    .sort((a, b) => a.version - b.version);
  const total = shares.reduce((n, s) => n + s.weight, 0);
  if (shares.length === 0 || total <= 0) return null;
  const point = (stickyKey === undefined ? random() : fnv1a(stickyKey) / 2 ** 32) * total;
  let acc = 0;
  for (const s of shares) {
    acc += s.weight;
    if (point < acc)
      return { version: s.version, via: stickyKey === undefined ? 'canary' : 'sticky', shadow: shadowOf(s.version) };
  }
  const last = shares.at(-1) as { version: number };
  return { version: last.version, via: stickyKey === undefined ? 'canary' : 'sticky', shadow: shadowOf(last.version) };
}
