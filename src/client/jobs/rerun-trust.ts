/**
 * What `experiments rerun` takes from a recorded spec.json without `--trust-spec`. A spec.json may
 * come from someone else (a shared experiments folder), and a rerun runs its entry:
 * - Spark settings: only an allowlist of inert ones (sizes, counts, timeouts, tuning). Anything
 *   else can run code or choose where the job goes (class paths, JVM options, environments, jars,
 *   YARN and Kubernetes images and templates, catalogs, filesystems, UI filters, plugins...).
 * - A run folder that is not the caller's own (another uid owns the folder, its spec.json or its
 *   kept entry) is refused outright: its entry, master and queue would run as the caller.
 */
import { existsSync, statSync } from 'node:fs';
import { RunError } from '../errors.js';

/** Spark settings that only size, count, time or tune what the job does. */
const INERT_CONF = [
  /^spark\.(driver|executor)\.(memory|memoryOverhead|memoryOverheadFactor|cores|instances)$/,
  /^spark\.executor\.heartbeatInterval$/,
  /^spark\.(cores\.max|default\.parallelism|task\.cpus|task\.maxFailures|locality\.wait|network\.timeout)$/,
  /^spark\.dynamicAllocation\.(enabled|minExecutors|maxExecutors|initialExecutors|executorIdleTimeout|shuffleTracking\.enabled)$/,
  /^spark\.(executor|task)\.resource\.[A-Za-z0-9_]+\.amount$/,
  /^spark\.memory\.(fraction|storageFraction|offHeap\.enabled|offHeap\.size)$/,
  /^spark\.sql\.(shuffle\.partitions|adaptive\.enabled|adaptive\.coalescePartitions\.enabled|files\.maxPartitionBytes|session\.timeZone)$/,
  /^spark\.sql\.execution\.arrow\.(pyspark\.enabled|maxRecordsPerBatch)$/,
  /^spark\.scheduler\.barrier\.maxConcurrentTasksCheck\.(interval|maxFailures)$/,
  /^spark\.standalone\.executorRemoveDelayOnDisconnection$/,
  /^spark\.ui\.showConsoleProgress$/,
  /^spark\.kryoserializer\.buffer(\.max)?$/,
];

export const isInertConf = (key: string): boolean => INERT_CONF.some((re) => re.test(key));

/** The paths of a run folder that `uid` does not own, or none when they are all the caller's own. */
export function foreignPaths(paths: readonly string[], uid = process.getuid?.()): string[] {
  if (uid === undefined) return [];
  return paths.filter((p) => existsSync(p) && statSync(p).uid !== uid);
}

/** Refuses to rerun a run folder another user owns, naming what the rerun would take from it. */
export function refuseForeignRun(o: {
  ref: string;
  owned: readonly string[];
  entry: string;
  master?: string;
  queue?: string;
  conf: readonly string[];
}): never {
  const uid = statSync(o.owned[0] as string).uid;
  const taken = [
    `its entry ${o.entry}, which would run as you`,
    ...(o.master ? [`--master ${o.master}`] : []),
    ...(o.queue ? [`--queue ${o.queue}`] : []),
    ...(o.conf.length > 0 ? [`the Spark settings ${o.conf.join(', ')}`] : []),
  ];
  throw new RunError(
    'input',
    `run ${o.ref} belongs to uid ${uid} (${o.owned.join(', ')}), not to you; rerunning it takes ${taken.join('; ')}. Read its spec.json and entry, then pass --trust-spec to run them as they are`,
    { code: 'SR_UNTRUSTED_SPEC', final: true },
  );
}
