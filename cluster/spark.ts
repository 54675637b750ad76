/**
 * A Spark standalone cluster on namespaced hosts (cluster/hosts.ts): the master in the root
 * namespace on the bridge address, one worker on each host with that host's address, its work
 * directory on the host's private local disk. The pip pyspark's own scripts and jars run it.
 */
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from '../src/util/net.js';
import { type ClusterOptions, type Host, HostCluster } from './hosts.js';

export interface SparkClusterOptions extends ClusterOptions {
  /** The Python whose pyspark runs the cluster (its package directory is SPARK_HOME). */
  python: string;
  coresPerWorker?: number;
  memoryPerWorker?: string;
  /**
   * Seconds without a heartbeat after which the master drops a worker (spark.worker.timeout;
   * Spark's default 60). Short here, so a cut host's worker is given up on quickly.
   */
  workerTimeoutSeconds?: number;
}

/**
 * An application's settings for runs on these hosts that lose hosts: `executors` executors of one
 * core. The lost host's executors, which the driver removes, leave Spark's lists once their
 * heartbeats time out: 30 s rather than 120 s, for the release at the end.
 */
export function hostLossConf(executors: number): Record<string, string> {
  return {
    'spark.executor.cores': '1',
    'spark.cores.max': String(executors),
    'spark.executor.memory': '512m',
    'spark.network.timeout': '30s',
    'spark.network.timeoutInterval': '5s',
    'spark.executor.heartbeatInterval': '3s',
  };
}

/** A worker as the master's /json/ lists it. */
interface MasterWorker {
  id: string;
  host: string;
  state: string;
  coresused?: number;
}

export class SparkOnHosts {
  private constructor(
    readonly hosts: HostCluster,
    readonly masterUrl: string,
    private readonly webUi: string,
  ) {}

  static async start(o: SparkClusterOptions): Promise<SparkOnHosts> {
    const home = execFileSync(o.python, ['-c', 'import os, pyspark; print(os.path.dirname(pyspark.__file__))'], {
      encoding: 'utf8',
    }).trim();
    const sparkClass = join(home, 'bin', 'spark-class');
    const hosts = await HostCluster.start(o);
    try {
      const port = await freePort(hosts.clientAddress);
      const uiPort = await freePort(hosts.clientAddress);
      const timeout = `-Dspark.worker.timeout=${o.workerTimeoutSeconds ?? 60}`;
      const base = { ...process.env, SPARK_HOME: home, SPARK_NO_DAEMONIZE: '1', PYSPARK_PYTHON: o.python };
      const masterUrl = `spark://${hosts.clientAddress}:${port}`;
      const master = spawn(
        sparkClass,
        [
          'org.apache.spark.deploy.master.Master',
          '--host',
          hosts.clientAddress,
          '--port',
          String(port),
          '--webui-port',
          String(uiPort),
        ],
        { env: { ...base, SPARK_LOCAL_IP: hosts.clientAddress, SPARK_MASTER_OPTS: timeout }, stdio: 'ignore' },
      );
      hosts.adopt(master);
      const cluster = new SparkOnHosts(hosts, masterUrl, `http://${hosts.clientAddress}:${uiPort}`);
      cluster.relaunch = (h) => cluster.startWorker(h, sparkClass, base, timeout, o);
      await cluster.waitFor(() => cluster.aliveWorkers().then(() => true), 60_000, 'the Spark master to start');
      for (const h of hosts.hosts) cluster.startWorker(h, sparkClass, base, timeout, o);
      await cluster.waitFor(
        async () => (await cluster.aliveWorkers()).length === hosts.hosts.length,
        90_000,
        `${hosts.hosts.length} Spark workers to register`,
      );
      return cluster;
    } catch (err) {
      await hosts.stop();
      throw err;
    }
  }

  private startWorker(
    h: Host,
    sparkClass: string,
    base: NodeJS.ProcessEnv,
    timeout: string,
    o: SparkClusterOptions,
  ): void {
    const work = join(this.hosts.localDir, 'spark-work');
    this.hosts.spawnOn(
      h,
      [
        'sh',
        '-c',
        `mkdir -p '${work}' && exec "$0" "$@"`,
        sparkClass,
        'org.apache.spark.deploy.worker.Worker',
        this.masterUrl,
        '--host',
        h.address,
        '--cores',
        String(o.coresPerWorker ?? 1),
        '--memory',
        o.memoryPerWorker ?? '1500m',
        '--webui-port',
        '0',
        '--work-dir',
        work,
      ],
      { ...base, SPARK_LOCAL_IP: h.address, SPARK_WORKER_OPTS: timeout },
    );
  }

  /** Starts a host's Spark worker again (set once the cluster started). */
  private relaunch: (h: Host) => void = () => undefined;

  /**
   * Brings back a host lost with HostCluster.lose(): its link up, its Spark worker started again and
   * registered with the master (under a new port, as a machine that rebooted).
   */
  async bringBack(h: Host): Promise<void> {
    const before = new Set((await this.workers()).map((w) => w.id));
    this.hosts.restore(h);
    this.relaunch(h);
    await this.waitFor(
      async () => (await this.workers()).some((w) => w.host === h.address && w.state === 'ALIVE' && !before.has(w.id)),
      90_000,
      `the worker on ${h.address} to register again`,
    );
  }

  /** The addresses of the workers the master counts as alive. */
  async aliveWorkers(): Promise<string[]> {
    return (await this.workers()).filter((w) => w.state === 'ALIVE').map((w) => w.host);
  }

  /** Whether every host's worker is ALIVE to the master with all its cores free (no executor of an earlier application left). */
  async idle(): Promise<boolean> {
    const workers = await this.workers();
    return this.hosts.hosts.every((h) =>
      workers.some((w) => w.host === h.address && w.state === 'ALIVE' && w.coresused === 0),
    );
  }

  private async workers(): Promise<MasterWorker[]> {
    const r = await fetch(`${this.webUi}/json/`);
    const j = (await r.json()) as { workers?: MasterWorker[] };
    return j.workers ?? [];
  }

  async waitFor(ok: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const until = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      try {
        if (await ok()) return;
      } catch (err) {
        last = `: ${(err as Error).message}`;
      }
      if (Date.now() > until) throw new Error(`waited ${timeoutMs} ms for ${what}${last}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async stop(): Promise<void> {
    await this.hosts.stop();
  }
}
