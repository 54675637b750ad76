import { type ChildProcess, execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { listProcesses, type Proc } from '../../cluster/processes.js';

export { rankOf } from '../../cluster/processes.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const PYTHON = join(ROOT, '.venv', 'bin', 'python');
export const FIXTURES = join(ROOT, 'test', 'fixtures');
export const entry = (name: string): string => join(FIXTURES, 'entries', name);

const madeDirs = new Set<string>();

/** A temp folder outside the checkout, as a user's files are; removed after its test file (removeTempDirs). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `sparkring-${prefix}-`));
  madeDirs.add(dir);
  return dir;
}

/** Removes every folder tempDir made in this test file: vitest's setup file calls it after the file's own afterAll. */
export function removeTempDirs(): void {
  for (const dir of madeDirs) rmSync(dir, { recursive: true, force: true });
  madeDirs.clear();
}

/**
 * Writes a test table (see test/fixtures/write-table.py) and returns its path: `rows` rows, or for
 * 'uneven' the sizes of the partitions `--partition-by part` makes ('9,700,1300').
 */
export function writeTable(dir: string, kind: 'linear' | 'text' | 'uneven', rows: number | string = 0): string {
  const out = join(dir, `${kind}.parquet`);
  execFileSync(PYTHON, [join(FIXTURES, 'write-table.py'), kind, String(rows), out]);
  return out;
}

/**
 * A GPU discovery script that hands each standalone Worker distinct fake addresses, as Spark's
 * own TorchDistributor tests fake GPUs on local-cluster.
 */
export function gpuDiscoveryScript(dir: string, perWorker = 1): string {
  const claims = join(dir, 'gpu-claims');
  mkdirSync(claims, { recursive: true });
  const path = join(dir, 'discover-gpus.sh');
  writeFileSync(
    path,
    `#!/usr/bin/env bash
# Claims ${perWorker} unused fake GPU address(es) for the calling Worker.
got=()
for i in $(seq 0 15); do
  if mkdir "${claims}/$i" 2>/dev/null; then got+=("\\"$i\\""); fi
  [ "\${#got[@]}" -ge ${perWorker} ] && break
done
echo "{\\"name\\":\\"gpu\\",\\"addresses\\":[$(IFS=,; echo "\${got[*]}")]}"
`,
  );
  chmodSync(path, 0o755);
  return path;
}

/**
 * Where test files run side by side (scripts/run-tests.mjs runs some end-to-end files two at a time),
 * each file's processes carry its own SPARKRING_TEST_SCOPE (test/helpers/scope.ts sets it; every
 * process a test starts inherits it, down to Spark's executors and the Node workers): the checks
 * and the victims below are then the file's own. Unset, they are every process on the machine.
 */
function inScope(pid: number): boolean {
  const scope = process.env.SPARKRING_TEST_SCOPE;
  if (!scope) return true;
  try {
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`SPARKRING_TEST_SCOPE=${scope}`);
  } catch {
    return false; // gone already
  }
}

/** This test file's processes (every process, when files run one at a time), with their parent. */
export function processes(): Proc[] {
  return listProcesses().filter((p) => p.pid !== process.pid && inScope(p.pid));
}

/** The rank of a Node worker, from its environment (SPARKRING_RANK). */
/** The pid of the first process whose command line matches. */
export function pidOf(pattern: RegExp): number | undefined {
  return processes().find((p) => pattern.test(`${p.pid} ${p.args}`))?.pid;
}

/** Processes a run may have left behind: drivers, executors, Node workers. */
export function leftoverProcesses(): string[] {
  return processes()
    .map((p) => `${p.pid} ${p.args}`)
    .filter((l) =>
      /sparkring_submit\.py|cli\/main\.js serve|oip_client\.py|runtime\/main\.js|runtime\/trial\.js|predict\/server\.js|hpo\/agent\.js|CoarseGrainedExecutorBackend|deploy\.SparkSubmit|deploy\.master\.Master|deploy\.worker\.Worker|pyspark\/daemon|pyspark\.worker/.test(
        l,
      ),
    );
}

/**
 * `server`: a server the file keeps across its tests (its JVMs and Python workers), not a leftover.
 * The default wait covers a driver still releasing its executors and stopping Spark after its
 * client returned with the result (run-job.ts), on a loaded machine.
 */
export async function waitForNoLeftovers(timeoutMs = 45_000, server?: RegExp): Promise<string[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const left = leftoverProcesses().filter((l) => !server?.test(l));
    if (left.length === 0 || Date.now() > until) return left;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * The whole lines of a child's combined output (execa's `all`) as they come: each is handed to
 * `onLine` and kept in the array returned, which grows while the child runs.
 */
export function followLines(child: { all?: NodeJS.ReadableStream | null }, onLine: (line: string) => void = () => {}): string[] {
  const lines: string[] = [];
  let pending = '';
  child.all?.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const parts = pending.split('\n');
    pending = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      onLine(line);
    }
  });
  return lines;
}

/** The built CLI: await it for its result, or keep the process to signal it mid-run. */
export function sparkring(args: string[], env: Record<string, string> = {}, cwd?: string) {
  return execa(process.execPath, [join(ROOT, 'dist', 'src', 'cli', 'main.js'), ...args], {
    reject: false,
    all: true,
    env,
    cwd,
    timeout: 300_000,
  });
}

/**
 * Stops a server a test started in its own process group: `ask` asks it politely, and after
 * `graceMs` the whole group is killed.
 */
export async function stopGroup(child: ChildProcess, ask: () => void, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return;
  const pid = child.pid;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  ask();
  const t = setTimeout(() => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }, graceMs);
  await gone;
  clearTimeout(t);
}
