/** Which recorded Spark settings a rerun applies without --trust-spec: sizes, counts and timeouts only. */
import { expect, it } from 'vitest';
import { isInertConf } from '../../src/client/jobs/rerun-trust.js';

it('applies settings that only size, count or time the job', () => {
  for (const k of [
    'spark.executor.memory',
    'spark.executor.cores',
    'spark.driver.memory',
    'spark.task.cpus',
    'spark.sql.shuffle.partitions',
    'spark.dynamicAllocation.maxExecutors',
    'spark.executor.resource.gpu.amount',
    'spark.network.timeout',
  ]) {
    expect(isInertConf(k), k).toBe(true);
  }
});

it('holds back anything that names code, a place or a class', () => {
  for (const k of [
    'spark.executor.resource.gpu.discoveryScript',
    'spark.executor.memoryx',
    'spark.sql.catalog.spark_catalog',
    'spark.serializer',
    'spark.eventLog.dir',
    'spark.yarn.queue',
    'spark.master',
  ]) {
    expect(isInertConf(k), k).toBe(false);
  }
});
