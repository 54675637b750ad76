/** How busy the whole machine's CPUs were over an interval (from /proc/stat, every namespace alike). */
import { readFileSync } from 'node:fs';

interface Sample {
  busy: number;
  total: number;
}

export function cpuSample(): Sample {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] as string).trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0); // idle + iowait
  return { busy: total - idle, total };
}

/** The share of all CPUs busy since `from` (1 = every core busy the whole time). */
export function busySince(from: Sample): number {
  const now = cpuSample();
  return now.total === from.total ? 0 : (now.busy - from.busy) / (now.total - from.total);
}
