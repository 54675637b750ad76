/**
 * Child processes that must not outlive this one, even when it is killed with SIGKILL (no exit
 * handler runs then): on Linux they start under util-linux's `setpriv --pdeathsig`, so the kernel
 * sends them SIGTERM when this process dies. Without setpriv they start as they are.
 */
import { existsSync } from 'node:fs';

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

/** [file, args] that run `file args` tied to this process's life. */
export function tiedToThisProcess(file: string, args: readonly string[]): [string, string[]] {
  if (process.platform !== 'linux' || !SETPRIV) return [file, [...args]];
  return [SETPRIV, ['--pdeathsig', 'SIGTERM', '--', file, ...args]];
}
