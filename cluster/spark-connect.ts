/**
 * A real Spark Connect server for the tests and `npm run bench -- connect`: PySpark 4's own (`make
 * spark-connect`: .cache/spark-connect/server), started as its sbin/start-connect-server.sh starts it
 * (spark-submit of SparkConnectServer; the pip package carries the jar but not that script), over
 * local-cluster[2,1,1024] by default, listening on loopback and free ports for gRPC and its UI. Its
 * executors run that venv's Python, which has no sparkring.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort } from '../src/util/net.js';
import { packageFile } from '../src/util/package-file.js';

export const CONNECT_VENV = join(packageFile('scripts/spark-connect'), '..', '..', '.cache', 'spark-connect');
/** PySpark 4 with its JVM: the server's Python, its executors', and the full PySpark 4 client. */
export const CONNECT_SERVER_PYTHON = join(CONNECT_VENV, 'server', 'bin', 'python');
/** pyspark-client alone (no JVM, no py4j); the tests install the sparkring wheel into it. */
export const CONNECT_CLIENT_VENV = join(CONNECT_VENV, 'client');
export const CONNECT_SPARK_VERSION = '4.2.0';
const SPARK_HOME = join(CONNECT_VENV, 'server', 'lib', 'python3.11', 'site-packages', 'pyspark');

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

export class SparkConnectServer {
  private constructor(
    private readonly child: ChildProcess,
    /** sc://127.0.0.1:PORT, for SparkSession.builder.remote(...). */
    readonly url: string,
    /** The server application's UI, whose REST API lists its jobs and executors. */
    readonly ui: string,
    readonly log: () => string,
  ) {}

  /** `conf`: more Spark settings for the server's application. */
  static async start(master = 'local-cluster[2,1,1024]', conf: Record<string, string> = {}): Promise<SparkConnectServer> {
    const port = await freePort();
    const uiPort = await freePort();
    const child = spawn(
      join(SPARK_HOME, 'bin', 'spark-submit'),
      [
        '--class',
        'org.apache.spark.sql.connect.service.SparkConnectServer',
        '--master',
        master,
        '--conf',
        `spark.connect.grpc.binding.port=${port}`,
        '--conf',
        'spark.connect.grpc.binding.address=127.0.0.1',
        '--conf',
        `spark.ui.port=${uiPort}`,
        '--conf',
        'spark.port.maxRetries=0',
        '--conf',
        'spark.executor.memory=512m',
        '--conf',
        'spark.ui.showConsoleProgress=false',
        ...Object.entries(conf).flatMap(([k, v]) => ['--conf', `${k}=${v}`]),
        'spark-internal',
      ],
      {
        env: {
          ...process.env,
          SPARK_HOME,
          SPARK_LOCAL_IP: '127.0.0.1',
          PYSPARK_PYTHON: CONNECT_SERVER_PYTHON,
          PYTHONPATH: '',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      },
    );
    let out = '';
    for (const s of [child.stdout, child.stderr]) s?.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-20_000)));
    const server = new SparkConnectServer(child, `sc://127.0.0.1:${port}`, `http://127.0.0.1:${uiPort}`, () => out);
    const until = Date.now() + 120_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the Spark Connect server exited (${child.exitCode}) at start:\n${out}`);
      if ((await listening(port)) && (await server.executors()) >= 2) return server;
      if (Date.now() > until) {
        await server.stop();
        throw new Error(`the Spark Connect server did not listen on ${port} with its executors within 120 s:\n${out}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  private async rest<T>(path: string): Promise<T | undefined> {
    try {
      const apps = (await (await fetch(`${this.ui}/api/v1/applications`)).json()) as { id: string }[];
      const app = apps[0]?.id;
      if (!app) return undefined;
      return (await (await fetch(`${this.ui}/api/v1/applications/${app}${path}`)).json()) as T;
    } catch {
      return undefined;
    }
  }

  /** Executors the server's application has now. */
  async executors(): Promise<number> {
    const listed = await this.rest<{ id: string; isActive: boolean }[]>('/executors');
    return (listed ?? []).filter((e) => e.id !== 'driver' && e.isActive).length;
  }

  /** The server UI's running jobs. */
  async runningJobs(): Promise<number> {
    return ((await this.rest<unknown[]>('/jobs?status=running')) ?? []).length;
  }

  /** Stops the server's JVM (spark-submit's process group): SIGTERM, then SIGKILL after 10 s. */
  async stop(): Promise<void> {
    const { child } = this;
    if (child.exitCode !== null || child.pid === undefined) return;
    const pid = child.pid;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    const signal = (name: NodeJS.Signals) => {
      try {
        process.kill(-pid, name);
      } catch {
        // gone already
      }
    };
    signal('SIGTERM');
    const t = setTimeout(() => signal('SIGKILL'), 10_000);
    await gone;
    clearTimeout(t);
  }
}
