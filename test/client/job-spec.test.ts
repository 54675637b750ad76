/**
 * The job spec is one contract (src/client/jobs/job-spec.ts): the JSON Schema the Python side tests
 * against is made from it, and a spec the client writes is one the driver reads.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { resultJsonSchemas } from '../../src/client/jobs/index.js';
import { jobSpec, jobSpecSchema, type SearchSpec, searchSpecSchema, specJsonSchemas } from '../../src/client/jobs/job-spec.js';
import { resolveAllreduceOptions } from '../../src/client/jobs/options.js';
import { sparkPaths } from '../../src/client/submission/paths.js';
import { PYTHON, ROOT } from '../helpers/spark.js';

/** `cls.from_dict(spec)` of the Python module, as a plain object (dataclasses.asdict). */
function readInPython(module: string, cls: string, spec: unknown): Record<string, unknown> {
  const script = `import dataclasses, json, sys; from ${module} import ${cls}; print(json.dumps(dataclasses.asdict(${cls}.from_dict(json.loads(sys.argv[1])))))`;
  return JSON.parse(execFileSync(PYTHON, ['-c', script, JSON.stringify(spec)], { cwd: `${ROOT}spark-plugin`, encoding: 'utf8' }));
}

/** Where a run goes (the part of jobSpec's input that is not the options). */
const RUN = {
  runId: 'r1',
  secret: 's',
  resultPath: '/tmp/r.json',
  redis: { url: 'redis://10.0.0.1:6379', stream: 'sparkring:run:r1:events' },
  runDir: '/tmp/x/run.1/train',
  entry: '/tmp/stage/entry.mjs',
};

describe('the job spec', () => {
  it('the schema files are the schemas as they are now (else: npm run spec-schema)', () => {
    for (const [name, schema] of Object.entries({ ...specJsonSchemas(), ...resultJsonSchemas() })) {
      expect(JSON.parse(readFileSync(`${ROOT}spark-plugin/sparkring/${name}.schema.json`, 'utf8')), name).toEqual(schema);
    }
  });

  it('what the client writes fits the schema, and spec.py reads every field it needs from it', () => {
    const o = resolveAllreduceOptions({ entry: '/tmp/train.ts', ringInterface: 'eth1', peerTimeoutMs: 5000 });
    const spec = jobSpec(o, sparkPaths(), { ...RUN, attempt: 1 });
    expect(jobSpecSchema.parse(spec)).toEqual(spec);
    const read = readInPython('sparkring.driver.spec', 'JobSpec', spec);
    expect(read).toMatchObject({
      run_id: 'r1',
      attempt: 1,
      workers: 2,
      run_dir: '/tmp/x/run.1/train',
      redis: { url: 'redis://10.0.0.1:6379', stream: 'sparkring:run:r1:events', ca: null },
      // Handed to the worker as it is: the defaults are the options' own.
      worker: {
        ringInterface: 'eth1',
        peerTimeoutMs: 5000,
        formationTimeoutMs: 60_000,
        collectiveTimeoutMs: 600_000,
        tfBackend: 'auto',
      },
    });
  });

  it('--min-workers and --max-workers around --workers: each refusal names the flags and the fix', () => {
    const base = { entry: '/tmp/train.ts', workers: 4 };
    expect(() => resolveAllreduceOptions({ ...base, minWorkers: 5 })).toThrow(
      /--min-workers 5 is more than --workers 4: .*lower --min-workers to 4 or less/,
    );
    expect(() => resolveAllreduceOptions({ ...base, maxWorkers: 3, minWorkers: 2 })).toThrow(
      /--max-workers 3 is less than --workers 4: .*raise --max-workers to 4 or more/,
    );
    expect(() => resolveAllreduceOptions({ ...base, maxWorkers: 6 })).toThrow(
      /--max-workers 6 needs --min-workers: .*add --min-workers 4 to start at --workers 4 and grow from there/,
    );
    const o = resolveAllreduceOptions({ ...base, minWorkers: 2, maxWorkers: 6 });
    const spec = jobSpec(o, sparkPaths(), { ...RUN, attempt: 0 });
    expect(readInPython('sparkring.driver.spec', 'JobSpec', spec)).toMatchObject({ workers: 4, min_workers: 2, max_workers: 6 });
  });

  it('a search spec fits its schema, and search_rounds.py reads it', () => {
    const spec: SearchSpec = {
      kind: 'search',
      runId: 'r2',
      name: 'quad',
      entry: '/tmp/stage/entry.mjs',
      executors: 2,
      node: '/usr/bin/node',
      agentMain: '/a.js',
      trialMain: '/t.js',
      bundle: null,
      experiments: '/tmp/x',
      resultPath: '/tmp/r.json',
      secret: 's',
      redis: { url: 'redis://10.0.0.1:6379', stream: 'st', ca: null },
      queueKeys: { pending: 'p', running: 'r', client: 'c' },
      metric: 'loss',
      leaseMs: 2000,
      maxTrialAttempts: 3,
      excludeAfter: 3,
      maxFailedRounds: 3,
      idleRoundLeases: 2,
      tfBackend: 'auto',
    };
    expect(searchSpecSchema.parse(spec)).toEqual(spec);
    const read = readInPython('sparkring.executor.search_tasks', 'SearchSpec', spec);
    expect(read).toMatchObject({ run_id: 'r2', pending_key: 'p', lease_ms: 2000, max_failed_rounds: 3, idle_round_leases: 2 });
  });
});
