/**
 * Starts N ring ranks as separate Node processes speaking JSON lines: each prints
 * {"address"} first, reads every address from stdin, then prints further objects.
 * Used by the benchmarks and the multi-process tests (it lives in cluster/, beside the hosts it may
 * start ranks on, so that neither imports the other).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface RankProcess {
  rank: number;
  child: ChildProcess;
  /** Every JSON object the rank printed, in order. */
  messages: Array<Record<string, unknown>>;
  stderr: string;
  exited: Promise<number | null>;
}

export interface RingProcesses {
  ranks: RankProcess[];
  addresses: string[];
  /** Resolves with the first message of `rank` that has `key`. */
  waitFor(rank: number, key: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Kills every rank still running. */
  killAll(): void;
}

export async function startRing(
  script: string,
  worldSize: number,
  config: (rank: number) => Record<string, unknown>,
  nodeArgs: string[] = [],
  /** Runs a rank's command elsewhere, e.g. on a namespaced host (cluster/hosts.ts `on`). */
  wrap: (rank: number, command: string[]) => string[] = (_, command) => command,
): Promise<RingProcesses> {
  const ranks: RankProcess[] = [];
  for (let rank = 0; rank < worldSize; rank++) {
    const [file, ...args] = wrap(rank, [
      process.execPath,
      ...nodeArgs,
      script,
      JSON.stringify({ rank, worldSize, ...config(rank) }),
    ]) as [string, ...string[]];
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const rp: RankProcess = {
      rank,
      child,
      messages: [],
      stderr: '',
      exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
    };
    child.stderr?.on('data', (b: Buffer) => {
      rp.stderr += b.toString();
    });
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      try {
        rp.messages.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        rp.stderr += `${line}\n`;
      }
    });
    ranks.push(rp);
  }
  const waitFor = async (rank: number, key: string, timeoutMs = 60_000): Promise<Record<string, unknown>> => {
    const rp = ranks[rank] as RankProcess;
    const until = Date.now() + timeoutMs;
    let exitCode: number | null | undefined;
    void rp.exited.then((c) => {
      exitCode = c;
    });
    for (;;) {
      const m = rp.messages.find((x) => key in x);
      if (m) return m;
      if (exitCode !== undefined)
        throw new Error(
          `rank ${rank} exited (${exitCode}) before printing "${key}": ${rp.stderr.slice(-2000)} ${JSON.stringify(rp.messages)}`,
        );
      if (Date.now() > until)
        throw new Error(`rank ${rank} printed no "${key}" within ${timeoutMs} ms: ${rp.stderr.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const killAll = (): void => {
    for (const r of ranks) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
  };
  try {
    const addresses: string[] = [];
    for (let rank = 0; rank < worldSize; rank++) addresses.push(String((await waitFor(rank, 'address')).address));
    for (const r of ranks) r.child.stdin?.end(`${JSON.stringify(addresses)}\n`);
    return { ranks, addresses, waitFor, killAll };
  } catch (err) {
    killAll();
    throw err;
  }
}
