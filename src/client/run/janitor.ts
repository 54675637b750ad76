/**
 * Removes a run's local files (its staging directory) when the client is gone, however it went:
 * a tiny detached shell waits for this process to end, then for the processes this client started
 * that use the directory (their pids in its `sparkring.pids`, `addUser`: the dying Spark driver
 * still writes its result there; at most a minute), then removes it. Only its own pid file counts,
 * not a match over every user's command lines. A client that ends normally removes the directory
 * itself and stops the janitor. Written by hand: no library watches a parent process from outside it.
 */
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';

const PIDS_FILE = 'sparkring.pids';

export function removeWhenGone(dir: string): { stop(): void } {
  const script = [
    'while kill -0 "$0" 2>/dev/null; do sleep 0.5; done',
    `alive() { [ -f "$1/${PIDS_FILE}" ] || return 1; for p in $(cat "$1/${PIDS_FILE}"); do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }`,
    'n=0; while [ $n -lt 120 ] && alive "$1"; do sleep 0.5; n=$((n+1)); done',
    'rm -rf -- "$1"',
  ].join('; ');
  const child = spawn('sh', ['-c', script, String(process.pid), dir], { detached: true, stdio: 'ignore' });
  child.on('error', () => undefined);
  child.unref();
  return {
    stop() {
      try {
        if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    },
  };
}

/** Says that process `pid` uses `dir`: its janitor waits for it before removing the directory. */
export function addUser(dir: string, pid: number | undefined): void {
  if (pid !== undefined) appendFileSync(join(dir, PIDS_FILE), `${pid}\n`, { mode: 0o600 });
}
