/** An SVG picture of a run's metric curves (one panel per metric, one line per worker). */
import type { MetricRecord } from './layout.js';

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A polyline keeps at most this many points: more cannot be told apart at this width. */
const MAX_POINTS_PER_LINE = 2000;

/** [min, max] without spreading the values into arguments (a run may report 100,000s of points). */
function extent(values: readonly number[]): [number, number] {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/** Keeps the lowest and highest point of each of max/2 buckets in step order, so spikes stay visible. */
function decimate<T extends { x: number; y: number }>(line: readonly T[], max: number): T[] {
  if (line.length <= max) return [...line];
  const buckets = Math.floor(max / 2);
  const kept: T[] = [];
  for (let b = 0; b < buckets; b++) {
    const slice = line.slice(Math.floor((b * line.length) / buckets), Math.floor(((b + 1) * line.length) / buckets));
    let lo = slice[0] as T;
    let hi = lo;
    for (const q of slice) {
      if (q.y < lo.y) lo = q;
      if (q.y > hi.y) hi = q;
    }
    kept.push(...(lo === hi ? [lo] : lo.x <= hi.x ? [lo, hi] : [hi, lo]));
  }
  return kept;
}

export function curvesSvg(records: readonly MetricRecord[], title: string): string {
  const names = [...new Set(records.flatMap((r) => Object.keys(r.metrics)))].sort();
  const width = 640;
  const panel = 220;
  const pad = { left: 60, right: 20, top: 30, bottom: 30 };
  const height = Math.max(1, names.length) * panel + 30;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<text x="10" y="18" font-size="14" font-weight="bold">${esc(title)}</text>`,
  ];
  names.forEach((name, p) => {
    const top = 30 + p * panel;
    const points = records
      .filter((r) => typeof r.metrics[name] === 'number')
      .map((r) => ({ rank: r.rank, x: r.step, y: r.metrics[name] as number }));
    const [x0, x1] = extent(points.map((q) => q.x));
    const [y0, y1] = extent(points.map((q) => q.y));
    const sx = (x: number): number => pad.left + ((x - x0) / (x1 - x0 || 1)) * (width - pad.left - pad.right);
    const sy = (y: number): number => top + pad.top + (1 - (y - y0) / (y1 - y0 || 1)) * (panel - pad.top - pad.bottom);
    out.push(`<g class="metric" data-metric="${esc(name)}">`);
    out.push(`<text x="${pad.left}" y="${top + 18}" font-weight="bold">${esc(name)}</text>`);
    out.push(
      `<rect x="${pad.left}" y="${top + pad.top}" width="${width - pad.left - pad.right}" height="${panel - pad.top - pad.bottom}" fill="none" stroke="#ccc"/>`,
    );
    out.push(
      `<text x="5" y="${sy(y1) + 4}">${y1.toPrecision(4)}</text><text x="5" y="${sy(y0) + 4}">${y0.toPrecision(4)}</text>`,
    );
    out.push(
      `<text x="${pad.left}" y="${top + panel - 8}">step ${x0}</text><text x="${width - pad.right - 60}" y="${top + panel - 8}">step ${x1}</text>`,
    );
    for (const rank of [...new Set(points.map((q) => q.rank))].sort((a, b) => a - b)) {
      const line = points.filter((q) => q.rank === rank).sort((a, b) => a.x - b.x);
      const drawn = decimate(line, MAX_POINTS_PER_LINE)
        .map((q) => `${sx(q.x).toFixed(1)},${sy(q.y).toFixed(1)}`)
        .join(' ');
      out.push(
        `<polyline data-rank="${rank}" fill="none" stroke="${COLORS[rank % COLORS.length]}" stroke-width="1.5" points="${drawn}"/>`,
      );
    }
    out.push('</g>');
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
