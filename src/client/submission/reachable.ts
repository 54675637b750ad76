/**
 * Where the executors reach this client, for the private Redis (the run's events) and for the
 * driver of a standalone master: the address this machine sends from toward the cluster's master
 * (a local master: loopback). Where the executors cannot reach the client at all (a Livy batch,
 * YARN's cluster mode: the driver runs on the cluster), a private Redis would hear nothing, and the
 * run needs --redis.
 */
import { localAddressToward } from '../../util/net.js';
import { RunError } from '../errors.js';
import { resourceManagerUrl } from './yarn.js';

export interface Placement {
  master?: string;
  /** A cluster host for a master that names none (jobs/options.ts). */
  clusterHost?: string;
  livy?: string;
  redis?: string;
  sparkConf: Record<string, string>;
}

/** The master's host: the first of a spark:// list, the ResourceManager's for yarn, nothing for local. */
export function masterHost(master: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (!master || master.startsWith('local')) return undefined;
  if (master === 'yarn') {
    const rm = resourceManagerUrl(env);
    return rm ? new URL(rm).hostname : undefined;
  }
  // k8s://https://host:port names the API server inside.
  const url = master.startsWith('k8s://') && /^k8s:\/\/[a-z]+:\/\//.test(master) ? master.slice(6) : master;
  const m = /^[a-z0-9+]+:\/\/(?:\[([^\]]+)\]|([^:/,]+))/i.exec(url);
  return m?.[1] ?? m?.[2];
}

/** Whether `host` names this machine's loopback. */
export function isLoopback(host: string): boolean {
  return /^(localhost|127\.[\d.]+|::1)$/.test(host);
}

/** The address the cluster's executors reach this client at. */
export async function clientAddress(o: Placement): Promise<string> {
  const host = masterHost(o.master) ?? o.clusterHost;
  if (!host || isLoopback(host)) return '127.0.0.1';
  try {
    return await localAddressToward(host);
  } catch (err) {
    throw new RunError(
      'setup',
      `cannot find a route from this machine to the master's host ${host} (${(err as Error).message}): check --master`,
    );
  }
}

/** Refuses, before anything is submitted, a run whose events could not reach a private Redis. */
export function checkEventsReachable(o: Placement): void {
  if (o.redis) return;
  const where = o.livy
    ? 'with --livy the driver and executors run on the Livy server’s cluster'
    : o.sparkConf['spark.submit.deployMode'] === 'cluster'
      ? 'in cluster deploy mode the driver runs on the cluster'
      : undefined;
  if (!where) return;
  throw new RunError(
    'input',
    `${where}, where a Redis private to this client is out of reach: pass --redis redis://HOST:PORT (a Redis every executor and this client reach) for the run's events`,
  );
}

/**
 * The Spark settings that let a standalone master's executors reach a client-mode driver here:
 * spark.driver.host on the address toward the master, unless set already (or SPARK_LOCAL_IP is).
 */
export function driverHostConf(o: Placement, address: string, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  if (!o.master?.startsWith('spark://') || o.sparkConf['spark.driver.host'] || env.SPARK_LOCAL_IP) return {};
  if (o.sparkConf['spark.submit.deployMode'] === 'cluster') return {};
  return { 'spark.driver.host': address };
}

/**
 * Before a job starts: refuses one whose events could not arrive, and finds where the executors
 * reach this client. Returns that address (for the private Redis) and the job's Spark settings
 * with the driver's host added where a standalone master needs it.
 */
export async function placeJob(o: Placement): Promise<{ address: string; sparkConf: Record<string, string> }> {
  checkEventsReachable(o);
  const address = await clientAddress(o);
  return { address, sparkConf: { ...driverHostConf(o, address), ...o.sparkConf } };
}
