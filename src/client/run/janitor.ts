/**
 * Removes a run's local files (its staging directory) when the client is gone, however it went:
 * a tiny detached shell waits for this process to end, then for the processes that name the
 * files on their command line (the dying Spark driver still writes its result there; at most a
 * minute), then removes them. A client that ends normally removes them itself and stops the
 * janitor. Written by hand: no library watches a parent process from outside it.
 */
import { spawn } from 'node:child_process';

export function removeWhenGone(paths: readonly string[]): { stop(): void } {
  const script = [
    'while kill -0 "$0" 2>/dev/null; do sleep 0.5; done',
    'n=0; while [ $n -lt 120 ] && pgrep -f -- "$1" | grep -qvx "$$"; do sleep 0.5; n=$((n+1)); done',
    'rm -rf -- "$@"',
  ].join('; ');
  const child = spawn('sh', ['-c', script, String(process.pid), ...paths], { detached: true, stdio: 'ignore' });
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
