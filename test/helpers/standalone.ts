import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import net from 'node:net';
import { join } from 'node:path';
import { freePort } from '../../src/util/net.js';
import { PYTHON } from './spark.js';

/** The pyspark package directory: a Spark home with bin/ and jars/. */
const sparkHome = (): string =>
  execFileSync(PYTHON, ['-c', 'import os, pyspark; print(os.path.dirname(pyspark.__file__))'], { encoding: 'utf8' }).trim();

async function waitForPort(port: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = net.connect({ port, host: '127.0.0.1' }, () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** A real Spark standalone cluster (Master + one Worker) on loopback, as the pip package ships it. */
export class StandaloneCluster {
  private constructor(
    readonly masterUrl: string,
    private readonly processes: ChildProcess[],
  ) {}

  static async start(workerCores: number, workerMemory = '2g'): Promise<StandaloneCluster> {
    const port = await freePort();
    const home = sparkHome();
    const SPARK_CLASS = join(home, 'bin', 'spark-class');
    const env = { ...process.env, SPARK_HOME: home, SPARK_LOCAL_IP: '127.0.0.1', SPARK_NO_DAEMONIZE: '1' };
    const master = spawn(
      SPARK_CLASS,
      ['org.apache.spark.deploy.master.Master', '--host', '127.0.0.1', '--port', String(port), '--webui-port', '0'],
      {
        env,
        stdio: 'ignore',
      },
    );
    const url = `spark://127.0.0.1:${port}`;
    const cluster = new StandaloneCluster(url, [master]);
    try {
      await waitForPort(port, 60_000);
      const worker = spawn(
        SPARK_CLASS,
        [
          'org.apache.spark.deploy.worker.Worker',
          url,
          '--cores',
          String(workerCores),
          '--memory',
          workerMemory,
          '--webui-port',
          '0',
          '--host',
          '127.0.0.1',
        ],
        { env, stdio: 'ignore' },
      );
      cluster.processes.push(worker);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.processes.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            p.once('exit', () => resolve());
            p.kill('SIGTERM');
            setTimeout(() => p.kill('SIGKILL'), 5000).unref();
          }),
      ),
    );
  }
}
