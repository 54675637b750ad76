import { describe, expect, it } from 'vitest';
import { curvesSvg } from '../../src/experiments/curves.js';
import type { MetricRecord } from '../../src/experiments/layout.js';

describe('curves.svg', () => {
  it('draws 300k reported points per run, bounded in size, with the extremes kept', () => {
    const records: MetricRecord[] = [];
    for (let step = 0; step < 150_000; step++) {
      for (const rank of [0, 1])
        records.push({ rank, step, at: step, metrics: { loss: step === 77_777 ? 100 : 1 / (step + 1) } });
    }
    const svg = curvesSvg(records, 'long run');
    expect(svg).toMatch(/^<svg /);
    const lines = [...svg.matchAll(/<polyline data-rank="(\d)"[^>]* points="([^"]*)"/g)];
    expect(lines.map((m) => m[1])).toEqual(['0', '1']);
    for (const m of lines) expect((m[2] as string).split(' ').length).toBeLessThanOrEqual(2000);
    expect(svg).toContain('>100.0<'); // the spike is the panel's top
    expect(svg).toContain('step 149999');
  });
});
