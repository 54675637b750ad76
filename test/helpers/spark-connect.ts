/**
 * A real Spark Connect server (the plugin jar from scripts/spark-connect/pom.xml, `make
 * spark-connect`) run by the venv's spark-submit on local[2], listening on loopback and a free port.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort } from '../../src/util/net.js';
import { PYTHON, ROOT, stopGroup } from './spark.js';

const SPARK_HOME = join(ROOT, '.venv', 'lib', 'python3.11', 'site-packages', 'pyspark');
const JAR = join(ROOT, '.cache', 'spark-connect', 'jars', 'spark-connect_2.12-3.5.7.jar');

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

export class TestSparkConnect {
  private constructor(
    private readonly child: ChildProcess,
    /** sc://127.0.0.1:PORT, for SparkSession.builder.remote(...). */
    readonly url: string,
    readonly log: () => string,
  ) {}

  static async start(): Promise<TestSparkConnect> {
    const port = await freePort();
    const child = spawn(
      join(SPARK_HOME, 'bin', 'spark-submit'),
      [
        '--class',
        'org.apache.spark.sql.connect.service.SparkConnectServer',
        '--jars',
        JAR,
        '--master',
        'local[2]',
        '--conf',
        `spark.connect.grpc.binding.port=${port}`,
        '--conf',
        'spark.ui.enabled=false',
        'spark-internal',
      ],
      {
        env: { ...process.env, SPARK_HOME, SPARK_LOCAL_IP: '127.0.0.1', PYSPARK_PYTHON: PYTHON },
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
      },
    );
    let out = '';
    for (const s of [child.stdout, child.stderr]) s?.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-20_000)));
    const server = new TestSparkConnect(child, `sc://127.0.0.1:${port}`, () => out);
    const until = Date.now() + 90_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the Spark Connect server exited (${child.exitCode}) at start:\n${out}`);
      if (await listening(port)) return server;
      if (Date.now() > until) {
        await server.stop();
        throw new Error(`the Spark Connect server did not listen on ${port} within 90 s:\n${out}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Stops the server's JVM (spark-submit's process group). */
  stop(): Promise<void> {
    const pid = this.child.pid as number;
    return stopGroup(this.child, () => process.kill(-pid, 'SIGTERM'), 10_000);
  }
}
