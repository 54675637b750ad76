/** Runs the spark-plugin driver with spark-submit (client mode) for one attempt of a job. */

import { existsSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { availableParallelism, freemem } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { execa } from 'execa';
import { SEARCH_SPARK_CONF } from '../../hpo/retry-policy.js';
import { RunError } from '../errors.js';
import { addUser } from '../run/janitor.js';
import { embeddedJavaOptions } from './jvm-archives.js';
import type { SparkPaths } from './paths.js';

export const defaultMaster = (workers: number): string => `local-cluster[${workers},1,1024]`;

/** What one executor of the embedded default costs: its JVM (512m heap and overhead), a Python and a Node worker. */
const EMBEDDED_EXECUTOR_BYTES = 1.25 * 2 ** 30;

/**
 * The embedded default starts one executor JVM per worker on this machine: more than it has cores
 * (or memory for) would start them all only to oversubscribe the machine, so it is refused at once.
 */
export function checkEmbeddedSlots(workers: number, flag: '--workers' | '--executors'): void {
  const cores = availableParallelism();
  const byMemory = Math.max(1, Math.floor(freemem() / EMBEDDED_EXECUTOR_BYTES));
  const most = Math.min(cores, byMemory);
  if (workers <= most) return;
  const gib = (freemem() / 2 ** 30).toFixed(1);
  throw new RunError(
    'slots',
    `${flag} ${workers} is more than the embedded local Spark can run on this machine: one executor per core, ` +
      `and this machine has ${cores} cores and ${gib} GiB of free memory (about 1.25 GiB an executor), so at most ${most}; ` +
      `lower ${flag} to ${most} or pass --master to run on a cluster`,
  );
}

/** What submitting needs of a run's options (allreduce or launch). */
export interface SubmitSettings {
  /** Executors wanted: barrier tasks (allreduce) or search agents (launch). */
  workers: number;
  master?: string;
  queue?: string;
  gpusPerWorker: number;
  sparkConf: Record<string, string>;
  /** A search: dynamic allocation on (executors go back as the queue drains), no barrier stage. */
  search?: boolean;
  /** Archives Spark unpacks next to every executor (`path#name`): the shipped runtime bundle. */
  archives?: string[];
}

/** Spark settings of the job kind: barrier stages need dynamic allocation off; a search keeps it on. */
function jobConf(o: SubmitSettings): Record<string, string> {
  if (!o.search) {
    return {
      'spark.dynamicAllocation.enabled': 'false',
      // Backstop only: our own slot preflight fails first and says what is missing.
      'spark.scheduler.barrier.maxConcurrentTasksCheck.interval': '1s',
      'spark.scheduler.barrier.maxConcurrentTasksCheck.maxFailures': '5',
    };
  }
  const n = String(o.workers);
  return {
    'spark.dynamicAllocation.enabled': 'true',
    // Without an external shuffle service; a search has no shuffle to keep.
    'spark.dynamicAllocation.shuffleTracking.enabled': 'true',
    'spark.dynamicAllocation.minExecutors': '0',
    'spark.dynamicAllocation.initialExecutors': n,
    'spark.dynamicAllocation.maxExecutors': n,
    'spark.dynamicAllocation.executorIdleTimeout': '2s',
    'spark.dynamicAllocation.schedulerBacklogTimeout': '1s',
    ...SEARCH_SPARK_CONF,
  };
}

/**
 * The embedded local default's settings (local-cluster: one short-lived application on this machine,
 * whose JVMs do little but start, read the data and hand it over):
 * - its JVMs' options (jvm-archives.ts: C1 alone, the serial collector, the class-data archives);
 * - its driver drops a killed executor 2 s after the executor's connection closed, not 5 s
 *   (Spark waits that long for the Worker's report of why an executor ended, which for one that
 *   crashed names its exit code, e.g. 137; here that report arrives within a second);
 * - executors of 512 MiB. Spark's defaultJavaOptions come before any extraJavaOptions of yours.
 */
function embeddedConf(sparkSubmit: string): Record<string, string> {
  const java = embeddedJavaOptions(sparkSubmit);
  return {
    'spark.executor.memory': '512m',
    'spark.driver.defaultJavaOptions': java.driver,
    'spark.executor.defaultJavaOptions': java.executor,
    'spark.standalone.executorRemoveDelayOnDisconnection': '2s',
  };
}

/** Our Spark settings for a job on `master` (spark-submit --conf, or a Livy batch's conf). */
export function sparkConf(o: SubmitSettings, paths: SparkPaths, master: string): Record<string, string> {
  const conf: Record<string, string> = {
    ...jobConf(o),
    'spark.ui.showConsoleProgress': 'false',
    'spark.pyspark.python': paths.python,
    'spark.pyspark.driver.python': paths.python,
  };
  if (master.startsWith('local-cluster')) Object.assign(conf, embeddedConf(paths.sparkSubmit));
  // YARN starts spark.executor.instances executors (2 unless told): one per worker.
  if (master === 'yarn' && !o.search) conf['spark.executor.instances'] = String(o.workers);
  if (o.gpusPerWorker > 0) {
    const g = String(o.gpusPerWorker);
    conf['spark.task.resource.gpu.amount'] = g;
    conf['spark.executor.resource.gpu.amount'] = String(Math.ceil(o.gpusPerWorker));
    if (master.startsWith('local-cluster')) conf['spark.worker.resource.gpu.amount'] = String(Math.ceil(o.gpusPerWorker));
  }
  Object.assign(conf, o.sparkConf);
  return conf;
}

/**
 * spark-submit arguments: the properties file that holds our Spark settings (submitProperties),
 * then `program` (a file and its arguments). No setting is on the command line, where `ps` shows
 * it to every user of the machine: a --conf value may be a secret.
 */
export function sparkSubmitArgs(o: SubmitSettings, propertiesFile: string, program: string[]): string[] {
  const args = ['--master', o.master ?? defaultMaster(o.workers), '--properties-file', propertiesFile];
  if (o.queue) args.push('--queue', o.queue);
  if (o.archives?.length) args.push('--archives', o.archives.join(','));
  args.push(...program);
  return args;
}

/**
 * The properties file's text: the cluster's spark-defaults.conf first (in Spark 3.5 a
 * --properties-file replaces it), then our settings, which win as later keys do.
 */
export function submitProperties(o: SubmitSettings, paths: SparkPaths, defaults = sparkDefaults(paths)): string {
  const conf = sparkConf(o, paths, o.master ?? defaultMaster(o.workers));
  const ours = Object.entries(conf).map(([k, v]) => `${propertiesEscape(k, true)}=${propertiesEscape(v, false)}`);
  return [...(defaults ? [defaults, ''] : []), '# sparkring', ...ours, ''].join('\n');
}

/** The spark-defaults.conf spark-submit would read, if there is one. */
function sparkDefaults(paths: SparkPaths): string | undefined {
  const confDir = process.env.SPARK_CONF_DIR ?? join(process.env.SPARK_HOME ?? dirname(dirname(paths.sparkSubmit)), 'conf');
  const file = join(confDir, 'spark-defaults.conf');
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

/**
 * java.util.Properties' escaping (written by hand: it is a few characters): backslash, line ends
 * and, in a key, the separators; a value's leading space.
 */
function propertiesEscape(text: string, key: boolean): string {
  const escaped = text.replace(
    /[\\\n\r\t\f]/g,
    (c) => ({ '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\f': '\\f' })[c] as string,
  );
  return key ? escaped.replace(/[ =:#!]/g, (c) => `\\${c}`) : escaped.replace(/^ /, '\\ ');
}

export interface SubmitOutcome {
  exitCode: number | undefined;
  /** The last lines Spark printed (stdout and stderr), for errors without a result file. */
  tail: string[];
  /** What ran the driver, for messages: `spark-submit` or `Livy batch N`. */
  submitter: string;
}

/**
 * The error of a job whose driver left no result: the first exception of its output with a message
 * (Spark's own cause, e.g. `java.lang.IllegalArgumentException: requirement failed: ...`), else the
 * first line that names an error.
 */
export function submitError(outcome: SubmitOutcome): RunError {
  const { tail, exitCode } = outcome;
  const meaningful = tail.filter((l) => /error|exception/i.test(l) && !/^\s+at /.test(l));
  const cause = meaningful.find((l) => /^\S*(Exception|Error): \S/.test(l));
  const ended = outcome.submitter === 'spark-submit' ? `spark-submit exited with ${exitCode}` : `${outcome.submitter} failed`;
  return new RunError('spark', `${ended}: ${cause ?? meaningful[0] ?? tail.at(-1) ?? 'no output'}`);
}

/** Runs spark-submit to its end: the outcome of startSparkSubmit. */
export async function runSparkSubmit(...args: Parameters<typeof startSparkSubmit>): Promise<SubmitOutcome> {
  return (await startSparkSubmit(...args)).outcome;
}

/** A spark-submit running: its outcome, and `letGo()`, after which it ends without this process. */
export interface SparkSubmitRun {
  outcome: Promise<SubmitOutcome>;
  /**
   * This process no longer waits for it, nor reads its output (later lines go nowhere); it runs
   * on to its end, and the staging's janitor (run/janitor.ts) removes the staging after it.
   */
  letGo(): void;
}

export async function startSparkSubmit(
  o: SubmitSettings,
  paths: SparkPaths,
  program: string[],
  /** The run's staging directory (mode 0700), for the properties file. */
  staging: string,
  signal?: AbortSignal,
  /**
   * Each line spark-submit prints, as it comes (progress of a job without a Redis stream). The
   * Python driver's own stderr arrives on spark-submit's stdout: PythonRunner merges the two.
   */
  onLine?: (line: string) => void,
): Promise<SparkSubmitRun> {
  const master = o.master ?? defaultMaster(o.workers);
  const env: Record<string, string> = { PYSPARK_PYTHON: paths.python, PYSPARK_DRIVER_PYTHON: paths.python };
  if (master.startsWith('local')) env.SPARK_LOCAL_IP = process.env.SPARK_LOCAL_IP ?? '127.0.0.1';
  const propertiesFile = join(staging, 'spark-submit.properties');
  await writeFile(propertiesFile, submitProperties(o, paths), { mode: 0o600 });
  // Not tied to this process by the kernel: it may outlive a client that has its result. A client
  // that dies before that (even by SIGKILL) takes it along: the janitor stops the pids it is given.
  const child = execa(paths.sparkSubmit, sparkSubmitArgs(o, propertiesFile, program), {
    env,
    reject: false,
    stdin: 'ignore',
    cancelSignal: signal,
    forceKillAfterDelay: 5000,
    buffer: false,
    cleanup: false, // execa's exit hook would kill it even after letGo(); the janitor does that job
  });
  addUser(staging, child.pid);
  const tail: string[] = [];
  const keep = (line: string): void => {
    tail.push(line);
    if (tail.length > 200) tail.shift();
  };
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on('line', (line) => {
      keep(line);
      onLine?.(line);
    });
  }
  const outcome = child.then((r) => ({ exitCode: r.exitCode, tail, submitter: 'spark-submit' as const }));
  return {
    outcome,
    letGo() {
      child.stdout?.destroy();
      child.stderr?.destroy();
      child.unref();
    },
  };
}
