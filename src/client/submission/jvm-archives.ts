/**
 * The embedded local default's JVMs (local-cluster: one short-lived application on this machine):
 * their Java options, and the class-data archives that let them start sooner.
 * - They compile with C1 alone and collect with the serial collector: a 2-worker run started 5-8 s
 *   sooner here (27 s -> 20 s from submit to the executors given back).
 * - They map the classes an earlier run loaded (Java's AppCDS) from archives that setup makes once
 *   (spark-plugin/sparkring/jvm_archives.py): the executors registered 1.7 s sooner here. The
 *   archives live beside the spark-submit whose jars they hold, in its environment's
 *   `sparkring-jvm-archives/`, so a run on another Spark never gets them. A JVM that finds its
 *   archive stale (new jars, another Java) starts without it, silently.
 */
import { existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execa } from 'execa';

export const EMBEDDED_JVM = '-XX:TieredStopAtLevel=1 -XX:+UseSerialGC';

const ARCHIVES = { driver: 'driver.jsa', executor: 'executor.jsa' } as const;
/** A stale archive is not worth a line on every JVM's stderr. */
const QUIET = '-Xlog:cds=off -Xlog:cds+dynamic=off';

/** Where the archives of the JVMs that `sparkSubmit` starts live. */
export const archiveDir = (sparkSubmit: string): string => join(dirname(dirname(sparkSubmit)), 'sparkring-jvm-archives');

/** The embedded default's Java options for the driver and the executors, with their archive where setup made one. */
export function embeddedJavaOptions(sparkSubmit: string): { driver: string; executor: string } {
  const withArchive = (file: string) => {
    const archive = join(archiveDir(sparkSubmit), file);
    return existsSync(archive) ? `${EMBEDDED_JVM} -XX:SharedArchiveFile=${archive} ${QUIET}` : EMBEDDED_JVM;
  };
  return { driver: withArchive(ARCHIVES.driver), executor: withArchive(ARCHIVES.executor) };
}

/**
 * Makes the archives with `python` (the environment of `sparkSubmit`), unless they are there;
 * `remake` after that environment was (re)installed: the JVMs would ignore archives of its old jars,
 * silently. A failure costs only the faster start: it is said, and setup goes on.
 */
export async function makeJvmArchives(
  python: string,
  sparkSubmit: string,
  say: (line: string) => void,
  remake = false,
): Promise<void> {
  const dir = archiveDir(sparkSubmit);
  if (remake) rmSync(dir, { recursive: true, force: true });
  if (Object.values(ARCHIVES).every((file) => existsSync(join(dir, file)))) return;
  say("making the class-data archives of the embedded Spark's JVMs (one small Spark application, about 20 s)");
  const { SPARK_HOME: _theirs, ...env } = process.env;
  const r = await execa(python, ['-m', 'sparkring.jvm_archives', dir, EMBEDDED_JVM], {
    env: { ...env, PYSPARK_PYTHON: python, PYSPARK_DRIVER_PYTHON: python },
    extendEnv: false,
    reject: false,
    all: true,
    stdin: 'ignore',
  });
  if (r.exitCode !== 0) {
    const last = (r.all ?? '').trim().split('\n').slice(-3).join(' / ');
    say(
      `  no class-data archives (runs start as before, about 2 s slower): ${python} -m sparkring.jvm_archives exited with ${r.exitCode}: ${last}`,
    );
  }
}
