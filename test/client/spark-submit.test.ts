/** The spark-submit command line and properties file a run gets (pure: no Spark is started). */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { archiveDir, embeddedJavaOptions } from '../../src/client/submission/jvm-archives.js';
import type { SparkPaths } from '../../src/client/submission/paths.js';
import { type SubmitSettings, sparkSubmitArgs, submitError, submitProperties } from '../../src/client/submission/spark-submit.js';

const paths = { python: '/venv/bin/python', sparkSubmit: '/nowhere/bin/spark-submit' } as SparkPaths;
const program = ['/plugin/sparkring_submit.py', '/stage/spec-0.json'];

/** The settings of a properties file, read as java.util.Properties reads what submitProperties writes. */
function confOf(o: SubmitSettings, defaults?: string, at: SparkPaths = paths): Record<string, string> {
  const conf: Record<string, string> = {};
  for (const line of submitProperties(o, at, defaults).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^((?:\\.|[^=:\s\\])*)\s*[=:\s]\s*(.*)$/.exec(line) as RegExpExecArray;
    const unescapeProperty = (t: string): string =>
      t.replace(/\\(.)/g, (_all, c: string) => ({ n: '\n', r: '\r', t: '\t', f: '\f' })[c] ?? c);
    conf[unescapeProperty(m[1] as string)] = unescapeProperty(m[2] as string);
  }
  return conf;
}

describe('sparkSubmitArgs', () => {
  it('a training run: the embedded master by default, dynamic allocation off, the program last', () => {
    const o = { workers: 3, gpusPerWorker: 0, sparkConf: {} };
    const args = sparkSubmitArgs(o, '/stage/spark-submit.properties', program);
    expect(args).toEqual([
      '--master',
      'local-cluster[3,1,1024]',
      '--properties-file',
      '/stage/spark-submit.properties',
      ...program,
    ]);
    expect(confOf(o)).toMatchObject({
      'spark.dynamicAllocation.enabled': 'false',
      'spark.pyspark.python': '/venv/bin/python',
      'spark.executor.memory': '512m',
      // The embedded default's JVMs start fast, and a killed executor is dropped after 2 s.
      'spark.driver.defaultJavaOptions': '-XX:TieredStopAtLevel=1 -XX:+UseSerialGC',
      'spark.executor.defaultJavaOptions': '-XX:TieredStopAtLevel=1 -XX:+UseSerialGC',
      'spark.standalone.executorRemoveDelayOnDisconnection': '2s',
    });
  });

  it("a search keeps dynamic allocation on, with the retry policy's Spark settings", () => {
    const conf = confOf({ workers: 2, gpusPerWorker: 0, sparkConf: {}, search: true, master: 'spark://m:7077' });
    expect(conf).toMatchObject({
      'spark.dynamicAllocation.enabled': 'true',
      'spark.dynamicAllocation.maxExecutors': '2',
      'spark.excludeOnFailure.enabled': 'true',
      'spark.task.maxFailures': '8',
    });
    expect(conf['spark.executor.memory']).toBeUndefined();
    // A cluster's JVMs keep their own options.
    expect(conf['spark.driver.defaultJavaOptions']).toBeUndefined();
    expect(conf['spark.standalone.executorRemoveDelayOnDisconnection']).toBeUndefined();
  });

  it("YARN gets its queue, one executor per worker and the archives; GPUs and the user's settings win", () => {
    const o = {
      workers: 2,
      master: 'yarn',
      queue: 'ml',
      gpusPerWorker: 0.5,
      archives: ['/stage/runtime.tgz#sparkring-runtime'],
      sparkConf: { 'spark.executor.instances': '4' },
    };
    const args = sparkSubmitArgs(o, '/p', program);
    expect(args.slice(0, 8)).toEqual([
      '--master',
      'yarn',
      '--properties-file',
      '/p',
      '--queue',
      'ml',
      '--archives',
      '/stage/runtime.tgz#sparkring-runtime',
    ]);
    expect(confOf(o)).toMatchObject({
      'spark.executor.instances': '4',
      'spark.task.resource.gpu.amount': '0.5',
      'spark.executor.resource.gpu.amount': '1',
    });
  });
});

describe('the embedded JVMs and their class-data archives', () => {
  it('use an archive where setup made one beside the spark-submit, each JVM kind its own, and none elsewhere', () => {
    const venv = mkdtempSync(join(tmpdir(), 'sparkring-archives-'));
    try {
      const submit = join(venv, 'bin', 'spark-submit');
      const plain = '-XX:TieredStopAtLevel=1 -XX:+UseSerialGC';
      expect(embeddedJavaOptions(submit)).toEqual({ driver: plain, executor: plain });
      mkdirSync(archiveDir(submit));
      writeFileSync(join(archiveDir(submit), 'executor.jsa'), '');
      const quiet = '-Xlog:cds=off -Xlog:cds+dynamic=off';
      expect(embeddedJavaOptions(submit)).toEqual({
        driver: plain,
        executor: `${plain} -XX:SharedArchiveFile=${join(venv, 'sparkring-jvm-archives', 'executor.jsa')} ${quiet}`,
      });
      const o = { workers: 2, gpusPerWorker: 0, sparkConf: {} };
      const conf = confOf(o, undefined, { ...paths, sparkSubmit: submit });
      expect(conf['spark.executor.defaultJavaOptions']).toContain('-XX:SharedArchiveFile=');
      // Not for a cluster of the user's: its JVMs are not the embedded default's.
      expect(confOf({ ...o, master: 'spark://h:7077' }, undefined, { ...paths, sparkSubmit: submit })).not.toHaveProperty(
        'spark.executor.defaultJavaOptions',
      );
    } finally {
      rmSync(venv, { recursive: true, force: true });
    }
  });
});

describe('submitProperties', () => {
  it("keeps the cluster's spark-defaults.conf, which a properties file would otherwise replace, and ours win", () => {
    const conf = confOf(
      { workers: 2, gpusPerWorker: 0, sparkConf: {}, master: 'spark://m:7077' },
      'spark.eventLog.enabled true\nspark.dynamicAllocation.enabled true\n',
    );
    expect(conf['spark.dynamicAllocation.enabled']).toBe('false');
    expect(submitProperties({ workers: 2, gpusPerWorker: 0, sparkConf: {} }, paths, 'spark.eventLog.enabled true')).toMatch(
      /^spark\.eventLog\.enabled true\n/,
    );
  });

  it('carries any value as it is: backslashes, line ends, separators, a leading space', () => {
    const tricky = { 'spark.a=b:c': ' x\\y\nz=1#', 'spark.hadoop.fs.s3a.secret.key': 's3cr3t' };
    expect(confOf({ workers: 1, gpusPerWorker: 0, sparkConf: tricky })).toMatchObject(tricky);
  });
});

describe('submitError', () => {
  it("names Spark's own cause, not the generic line before it", () => {
    const tail = [
      '26/12/06 04:08:16 ERROR SparkContext: Error initializing SparkContext.',
      'java.lang.IllegalArgumentException: requirement failed: spark.network.timeoutInterval should be less than or equal to spark.storage.blockManagerHeartbeatTimeoutMs.',
      '\tat scala.Predef$.require(Predef.scala:281)',
    ];
    const e = submitError({ exitCode: 1, tail, submitter: 'spark-submit' });
    expect(e.message).toBe(`spark-submit exited with 1: ${tail[1]}`);
  });

  it('without an exception, the first line naming an error, else the last line', () => {
    expect(
      submitError({ exitCode: 1, tail: ['starting', 'ERROR Client: queue full', 'bye'], submitter: 'Livy batch 3' }).message,
    ).toBe('Livy batch 3 failed: ERROR Client: queue full');
    expect(submitError({ exitCode: 2, tail: ['starting', 'bye'], submitter: 'spark-submit' }).message).toBe(
      'spark-submit exited with 2: bye',
    );
  });
});
