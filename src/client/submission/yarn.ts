/**
 * What sparkring asks a YARN ResourceManager before it submits: which queues exist (a queue that
 * does not is refused before anything runs), and later which queue an application landed in.
 * The ResourceManager is found the way spark-submit finds it: yarn-site.xml in $HADOOP_CONF_DIR
 * or $YARN_CONF_DIR.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RunError } from '../errors.js';

/** A property of a Hadoop configuration file (plain <property><name/><value/></property> pairs). */
export function hadoopProperty(xml: string, name: string): string | undefined {
  for (const m of xml.matchAll(/<property>([\s\S]*?)<\/property>/g)) {
    const body = m[1] as string;
    if (/<name>\s*([^<]*?)\s*<\/name>/.exec(body)?.[1] === name) return /<value>\s*([^<]*?)\s*<\/value>/.exec(body)?.[1];
  }
  return undefined;
}

/** http://host:port of the ResourceManager's web services, from yarn-site.xml; undefined without one. */
export function resourceManagerUrl(env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of [env.HADOOP_CONF_DIR, env.YARN_CONF_DIR]) {
    const site = dir ? join(dir, 'yarn-site.xml') : undefined;
    if (!site || !existsSync(site)) continue;
    const xml = readFileSync(site, 'utf8');
    const address =
      hadoopProperty(xml, 'yarn.resourcemanager.webapp.address') ??
      `${hadoopProperty(xml, 'yarn.resourcemanager.hostname') ?? 'localhost'}:8088`;
    return `http://${address}`;
  }
  return undefined;
}

interface SchedulerQueue {
  queueName: string;
  queues?: { queue?: SchedulerQueue[] };
}

async function getJson(url: string): Promise<unknown | undefined> {
  try {
    const r = await fetch(url, { headers: { Accept: 'application/json' }, signal: AbortSignal.timeout(10_000) });
    return r.ok ? ((await r.json()) as unknown) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The leaf queues: from the scheduler REST API (/ws/v1/cluster/scheduler), else from the
 * ResourceManager's queue metrics over /jmx (Hadoop's shaded minicluster serves /jmx but not /ws).
 */
export async function yarnQueues(rm: string): Promise<string[] | undefined> {
  const scheduler = (await getJson(`${rm}/ws/v1/cluster/scheduler`)) as
    | { scheduler?: { schedulerInfo?: SchedulerQueue } }
    | undefined;
  const root = scheduler?.scheduler?.schedulerInfo;
  if (root?.queues) {
    const leaves: string[] = [];
    const walk = (q: SchedulerQueue): void => {
      const children = q.queues?.queue ?? [];
      if (children.length === 0) leaves.push(q.queueName);
      for (const c of children) walk(c);
    };
    for (const q of root.queues.queue ?? []) walk(q);
    return leaves.sort();
  }
  const jmx = (await getJson(`${rm}/jmx?qry=Hadoop:service=ResourceManager,name=QueueMetrics,*`)) as
    | { beans?: Array<Record<string, unknown>> }
    | undefined;
  if (!jmx?.beans) return undefined;
  const paths = [...new Set(jmx.beans.filter((b) => b['tag.User'] === undefined).map((b) => String(b['tag.Queue'] ?? '')))];
  return paths
    .filter((p) => p && !paths.some((o) => o.startsWith(`${p}.`)))
    .map((p) => p.split('.').at(-1) as string)
    .sort();
}

/** Refuses a queue YARN does not have, naming those it has; silent when the ResourceManager is unknown. */
export async function checkYarnQueue(queue: string, rm = resourceManagerUrl()): Promise<void> {
  if (!rm) return;
  const queues = await yarnQueues(rm);
  if (!queues || queues.includes(queue) || queues.some((q) => queue.endsWith(`.${q}`))) return;
  throw new RunError('input', `--queue ${queue}: YARN at ${rm} has no such queue; its queues are ${queues.join(', ')}`);
}
