/**
 * A real Livy server (jars from scripts/maven-jars.sh livy, `make livy`) on loopback and a
 * free port, submitting with the venv's Spark to `master`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../src/util/net.js';
import { ROOT, stopGroup, tempDir } from './spark.js';

const SPARK_HOME = join(ROOT, '.venv', 'lib', 'python3.11', 'site-packages', 'pyspark');
const JARS = join(ROOT, '.cache', 'livy', 'jars');
const JAVA17_FLAGS = [
  '-XX:+IgnoreUnrecognizedVMOptions',
  ...['java.lang', 'java.lang.invoke', 'java.nio', 'java.util.concurrent.atomic', 'sun.nio.ch', 'java.net', 'java.io'].map(
    (p) => `--add-opens=java.base/${p}=ALL-UNNAMED`,
  ),
];

export class TestLivy {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    readonly log: () => string,
  ) {}

  /** Starts Livy; local paths under `allowed` may be submitted (livy.file.local-dir-whitelist). */
  static async start(o: {
    master: string;
    deployMode?: 'client' | 'cluster';
    allowed: string[];
    env?: Record<string, string>;
  }): Promise<TestLivy> {
    const home = tempDir('livy');
    const conf = join(home, 'conf');
    mkdirSync(conf);
    mkdirSync(join(home, 'logs'));
    const port = await freePort();
    writeFileSync(
      join(conf, 'livy.conf'),
      [
        'livy.server.host = 127.0.0.1',
        `livy.server.port = ${port}`,
        `livy.spark.master = ${o.master}`,
        ...(o.deployMode ? [`livy.spark.deploy-mode = ${o.deployMode}`] : []),
        `livy.file.local-dir-whitelist = ${o.allowed.map((d) => `${d.replace(/\/$/, '')}/`).join(',')}`,
        'livy.server.csrf-protection.enabled = true',
        'livy.cache-log.size = 2000',
      ].join('\n'),
    );
    writeFileSync(
      join(conf, 'log4j.properties'),
      'log4j.rootCategory=WARN, console\nlog4j.appender.console=org.apache.log4j.ConsoleAppender\nlog4j.appender.console.target=System.err\nlog4j.appender.console.layout=org.apache.log4j.PatternLayout\nlog4j.appender.console.layout.ConversionPattern=%d{HH:mm:ss} %p %c{1}: %m%n\n',
    );
    // As bin/livy-server does: the Hadoop configuration on the classpath, for Livy's own YARN client.
    const classpath = [`${JARS}/*`, conf, ...(o.env?.HADOOP_CONF_DIR ? [o.env.HADOOP_CONF_DIR] : [])].join(':');
    const child = spawn('java', [...JAVA17_FLAGS, '-cp', classpath, 'org.apache.livy.server.LivyServer'], {
      env: {
        ...process.env,
        SPARK_HOME,
        LIVY_HOME: home,
        LIVY_CONF_DIR: conf,
        SPARK_LOCAL_IP: '127.0.0.1',
        PYSPARK_PYTHON: join(ROOT, '.venv', 'bin', 'python'),
        ...o.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    for (const s of [child.stdout, child.stderr]) s?.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-20_000)));
    const livy = new TestLivy(child, `http://127.0.0.1:${port}`, () => out);
    const until = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`Livy exited (${child.exitCode}) at start:\n${out}`);
      try {
        const r = await fetch(`${livy.url}/version`);
        if (r.ok) return livy;
      } catch {
        // not listening yet
      }
      if (Date.now() > until) {
        await livy.stop();
        throw new Error(`Livy did not answer on ${livy.url} within 60 s:\n${out}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** Stops Livy and whatever it started (its spark-submit children are in its process group). */
  stop(): Promise<void> {
    const pid = this.child.pid as number;
    return stopGroup(this.child, () => process.kill(-pid, 'SIGTERM'), 5000);
  }
}
