/** The spark-submit command line a run gets (pure: no Spark is started). */
import { describe, expect, it } from 'vitest';
import type { SparkPaths } from '../../src/client/submission/paths.js';
import { sparkSubmitArgs, submitError } from '../../src/client/submission/spark-submit.js';

const paths = { python: '/venv/bin/python' } as SparkPaths;
const program = ['/plugin/sparkring_submit.py', '/stage/spec-0.json'];

/** The --conf pairs of a command line, as an object. */
function confOf(args: string[]): Record<string, string> {
  const conf: Record<string, string> = {};
  args.forEach((a, i) => {
    if (a !== '--conf') return;
    const [k, ...v] = (args[i + 1] as string).split('=');
    conf[k as string] = v.join('=');
  });
  return conf;
}

describe('sparkSubmitArgs', () => {
  it('a training run: the embedded master by default, dynamic allocation off, the program last', () => {
    const args = sparkSubmitArgs({ workers: 3, gpusPerWorker: 0, sparkConf: {} }, paths, program);
    expect(args.slice(0, 2)).toEqual(['--master', 'local-cluster[3,1,1024]']);
    expect(args.slice(-2)).toEqual(program);
    expect(confOf(args)).toMatchObject({
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
    const conf = confOf(
      sparkSubmitArgs({ workers: 2, gpusPerWorker: 0, sparkConf: {}, search: true, master: 'spark://m:7077' }, paths, program),
    );
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
    const args = sparkSubmitArgs(
      {
        workers: 2,
        master: 'yarn',
        queue: 'ml',
        gpusPerWorker: 0.5,
        archives: ['/stage/runtime.tgz#sparkring-runtime'],
        sparkConf: { 'spark.executor.instances': '4' },
      },
      paths,
      program,
    );
    expect(args.slice(0, 6)).toEqual(['--master', 'yarn', '--queue', 'ml', '--archives', '/stage/runtime.tgz#sparkring-runtime']);
    expect(confOf(args)).toMatchObject({
      'spark.executor.instances': '4',
      'spark.task.resource.gpu.amount': '0.5',
      'spark.executor.resource.gpu.amount': '1',
    });
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
