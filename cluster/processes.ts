/** The machine's processes as `ps` lists them, with their parents (for the tests' and benchmarks' checks and victims). */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface Proc {
  pid: number;
  ppid: number;
  args: string;
}

export function listProcesses(): Proc[] {
  return execFileSync('ps', ['-eo', 'pid=,ppid=,args='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => {
      const [pid, ppid, ...args] = l.trim().split(/\s+/);
      return { pid: Number(pid), ppid: Number(ppid), args: args.join(' ') };
    });
}

/** The rank of a sparkring Node worker, from its environment (SPARKRING_RANK); undefined for another process. */
export function rankOf(pid: number): number | undefined {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    const rank = env.find((v) => v.startsWith('SPARKRING_RANK='));
    return rank ? Number(rank.slice('SPARKRING_RANK='.length)) : undefined;
  } catch {
    return undefined;
  }
}
