/** The machine's processes as `ps` lists them, with their parents (for the tests' and benchmarks' checks and victims). */
import { execFileSync } from 'node:child_process';

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
