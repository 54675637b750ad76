/** An SVG picture of a run's metric curves (one panel per metric, one line per worker). */
import type { MetricRecord } from './layout.js';

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

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
    const xs = points.map((q) => q.x);
    const ys = points.map((q) => q.y);
    const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
    const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
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
      const line = points
        .filter((q) => q.rank === rank)
        .sort((a, b) => a.x - b.x)
        .map((q) => `${sx(q.x).toFixed(1)},${sy(q.y).toFixed(1)}`)
        .join(' ');
      out.push(
        `<polyline data-rank="${rank}" fill="none" stroke="${COLORS[rank % COLORS.length]}" stroke-width="1.5" points="${line}"/>`,
      );
    }
    out.push('</g>');
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
