/**
 * A run's local processes and files after the client is gone, however it went: a tiny detached
 * shell waits for this process to end, then deals with the processes this client started (their
 * pids in the staging directory's `sparkring.pids`, `addUser`) and removes the directory.
 * - Handed over (`handOver`: the client had the driver's result and returned): the driver still
 *   releases the executors and stops Spark; the janitor waits for it (at most 15 minutes).
 * - Otherwise (an error, a kill, even SIGKILL): the job ends with its client. The janitor stops
 *   them (SIGTERM, SIGKILL after a minute).
 * Only its own pid file counts, not a match over every user's command lines. A client that ends
 * normally removes the directory itself and stops the janitor. Written by hand: no library
 * watches a parent process from outside it.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const PIDS_FILE = 'sparkring.pids';
const HANDED_OVER = 'sparkring.handed-over';

export function removeWhenGone(dir: string): { stop(): void } {
  const script = [
    'while kill -0 "$0" 2>/dev/null; do sleep 0.5; done',
    // A pid counts only while its process is the one recorded (same start time): pids are reused.
    `pids() { while read -r p t; do [ "$(cut -d' ' -f22 /proc/$p/stat 2>/dev/null)" = "$t" ] && echo "$p"; done < "$1/${PIDS_FILE}" 2>/dev/null; }`,
    'alive() { for p in $(pids "$1"); do kill -0 "$p" 2>/dev/null && return 0; done; return 1; }',
    `if [ -f "$1/${HANDED_OVER}" ]; then most=1800; else most=120; for p in $(pids "$1"); do kill -TERM "$p" 2>/dev/null; done; fi`,
    'n=0; while [ $n -lt $most ] && alive "$1"; do sleep 0.5; n=$((n+1)); done',
    'if alive "$1"; then for p in $(pids "$1"); do kill -KILL "$p" 2>/dev/null; done; fi',
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

/** Says that process `pid` uses `dir`: its janitor waits for it (or stops it) before removing the directory. */
export function addUser(dir: string, pid: number | undefined): void {
  if (pid === undefined) return;
  let started: string;
  try {
    // Its start time (field 22 of /proc/PID/stat, after the command's closing parenthesis): the
    // janitor acts on the pid only while it still names this process.
    started = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[19] ?? '';
  } catch {
    return; // gone already
  }
  appendFileSync(join(dir, PIDS_FILE), `${pid} ${started}\n`, { mode: 0o600 });
}

/** Says the client returned with the driver still ending: the janitor lets it end, then removes `dir`. */
export function handOver(dir: string): void {
  writeFileSync(join(dir, HANDED_OVER), '', { mode: 0o600 });
}
