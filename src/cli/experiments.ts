/** `sparkring experiments list | show RUN`: the runs under an experiments directory. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_EXPERIMENTS } from '../client/jobs/options.js';
import { curvesSvg } from '../experiments/curves.js';
import { findRun, listRuns, type RunSummary, readMetrics } from '../experiments/layout.js';

const status = (r: RunSummary): string => (r.ok === null ? 'running?' : r.ok ? 'ok' : 'failed');
const brief = (v: unknown): string => {
  const s = JSON.stringify(v) ?? '';
  return s.length > 50 ? `${s.slice(0, 47)}...` : s;
};

export function table(rows: string[][]): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] as number))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export function experimentsList(o: { experiments?: string; json?: boolean }): string {
  const runs = listRuns(o.experiments ?? DEFAULT_EXPERIMENTS());
  if (o.json) return JSON.stringify(runs);
  if (runs.length === 0) return `no runs under ${o.experiments ?? DEFAULT_EXPERIMENTS()}`;
  return table([
    ['RUN', 'KIND', 'STATUS', 'WORKERS', 'ATTEMPTS', 'STARTED', 'RESULT'],
    ...runs.map((r) => [
      r.id,
      r.kind === 'search' ? `search (${r.trials?.length ?? 0} trials)` : 'allreduce',
      status(r),
      String(r.workers ?? '-'),
      String(r.attempts ?? '-'),
      r.startedAt,
      r.ok === false ? (r.error ?? '') : brief(r.result),
    ]),
  ]);
}

/** The run's summary and last metrics per worker; (re)writes curves.svg in the run directory. */
export function experimentsShow(ref: string, o: { experiments?: string; json?: boolean }): string {
  const run = findRun(o.experiments ?? DEFAULT_EXPERIMENTS(), ref);
  const records = readMetrics(run.dir);
  const last = new Map<number, Record<string, number>>();
  for (const r of [...records].sort((a, b) => a.rank - b.rank))
    last.set(r.rank, { ...last.get(r.rank), step: r.step, ...r.metrics });
  const curves = join(run.dir, 'curves.svg');
  writeFileSync(curves, curvesSvg(records, `${run.name} (${run.appId})`));
  if (o.json) return JSON.stringify({ ...run, lastMetrics: Object.fromEntries(last), curves });
  const lines = [
    `run:      ${run.id}`,
    `status:   ${status(run)}${run.error ? ` (${run.error})` : ''}`,
    `workers:  ${run.workers ?? '-'}    attempts: ${run.attempts ?? '-'}`,
    `result:   ${JSON.stringify(run.result)}`,
    `dir:      ${run.dir}`,
    `curves:   ${curves}`,
  ];
  if (run.trials?.length) {
    lines[3] = `best:     ${JSON.stringify(run.result)}`;
    lines.push(
      '',
      table([
        ['TRIAL', 'STATUS', 'METRIC', 'STEPS', 'ATTEMPTS', 'HPARAMS'],
        ...run.trials.map((t) => [
          t.id,
          t.status,
          String(t.metric ?? '-'),
          String(t.steps),
          String(t.attempts),
          JSON.stringify(t.hparams),
        ]),
      ]),
    );
  }
  if (last.size > 0) {
    const names = [...new Set([...last.values()].flatMap((m) => Object.keys(m)))];
    lines.push(
      '',
      table([
        ['WORKER', ...names],
        ...[...last].map(([rank, m]) => [String(rank), ...names.map((n) => (m[n] === undefined ? '-' : String(m[n])))]),
      ]),
    );
  }
  return lines.join('\n');
}
