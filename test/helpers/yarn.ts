/**
 * A real single-machine YARN (ResourceManager + NodeManager, capacity scheduler with the queues
 * "default" and "ml"): scripts/yarn/MiniYarn.java on the jars of `make yarn`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, stopGroup, tempDir } from './spark.js';

const OPENS = [
  'java.lang',
  'java.lang.reflect',
  'java.lang.invoke',
  'java.util',
  'java.util.concurrent',
  'java.io',
  'java.net',
  'java.nio',
  'sun.nio.ch',
].map((p) => `--add-opens=java.base/${p}=ALL-UNNAMED`);

export class TestYarn {
  private constructor(
    private readonly child: ChildProcess,
    /** HADOOP_CONF_DIR for spark-submit (yarn-site.xml, core-site.xml). */
    readonly confDir: string,
    /** http://host:port of the ResourceManager's web endpoints. */
    readonly rm: string,
  ) {}

  static async start(): Promise<TestYarn> {
    const home = tempDir('yarn');
    const confDir = join(home, 'conf');
    const child = spawn(
      'java',
      [...OPENS, '-cp', `${join(ROOT, '.cache', 'yarn', 'jars')}/*`, join(ROOT, 'scripts', 'yarn', 'MiniYarn.java'), confDir],
      // MiniYARNCluster keeps its state and container logs under ./target: a temp dir, not the repo.
      { stdio: ['pipe', 'pipe', 'pipe'], detached: true, cwd: home },
    );
    let err = '';
    child.stderr?.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-10_000)));
    const rm = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (b: Buffer) => {
        out += b.toString();
        const m = /READY (\S+)/.exec(out);
        if (m) resolve(`http://${m[1]}`);
      });
      child.on('exit', (code) => reject(new Error(`MiniYarn exited (${code}) at start:\n${err}`)));
    });
    return new TestYarn(child, confDir, rm);
  }

  /** Applications submitted to each queue so far (the ResourceManager's queue metrics). */
  async appsSubmitted(): Promise<Record<string, number>> {
    const r = await fetch(`${this.rm}/jmx?qry=Hadoop:service=ResourceManager,name=QueueMetrics,*`);
    const { beans } = (await r.json()) as { beans: Array<Record<string, unknown>> };
    return Object.fromEntries(
      beans.filter((b) => b['tag.User'] === undefined).map((b) => [String(b['tag.Queue']), Number(b.AppsSubmitted)]),
    );
  }

  /** Closing stdin stops the cluster (MiniYarn.java); the group is killed if it lingers. */
  stop(): Promise<void> {
    return stopGroup(this.child, () => this.child.stdin?.end(), 10_000);
  }
}
