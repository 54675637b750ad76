/**
 * The one envelope every job kind runs in (jobs/kind.ts): options, preflight, the run's Redis and
 * its events, staging, the shipped runtime, spec.json, submission (spark-submit or a Livy batch),
 * the interrupt, the driver's typed result, error mapping and teardown. `openJob` goes as far as
 * the spec (the Python API's session stops there: its own process is the driver); `runJob` submits.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runKey } from '../../events/keys.js';
import type { RunEvent } from '../../events/protocol.js';
import { redactUrl } from '../../events/redis.js';
import { printable } from '../../util/terminal.js';
import { RunError } from '../errors.js';
import { EventFollower } from '../run/event-stream.js';
import { openRunRedis } from '../run/redis-server.js';
import { BUNDLE_NAME, type Staging, shipRuntime, stagingDir } from '../submission/bundle.js';
import { checkLivy, runLivyBatch } from '../submission/livy-submit.js';
import { requireSparkPaths } from '../submission/paths.js';
import { placeJob } from '../submission/reachable.js';
import { checkEmbeddedSlots, type SubmitOutcome, startSparkSubmit, submitError } from '../submission/spark-submit.js';
import { checkYarnQueue } from '../submission/yarn.js';
import { driverError } from './driver-error.js';
import { readDriverResult } from './driver-result.js';
import type { DriverResultBase } from './driver-result-base.js';
import type { EnvelopeOptions, JobKind, JobRun, KindState } from './kind.js';
import { REQUIRE_ENCRYPTION_CONF } from './options.js';

/** A job opened up to its spec on disk, with its events followed. */
export interface OpenJob<O extends EnvelopeOptions, Result> {
  run: JobRun<O>;
  specPath: string;
  /** Reads the driver's result once the driver ended. `outcome`: spark-submit's or Livy's, where this client submitted. */
  finish(submittedAt: number, outcome?: SubmitOutcome): Promise<Result>;
  /** Settles when the driver's last event came: true when it says the job succeeded. */
  driverDone: Promise<boolean>;
  /**
   * Stops following, the kind's resources and the private Redis, and removes the staging.
   * `driverEnded`: the driver is still ending (its result is in): the staging goes when it has
   * ended, or, if this process ends first, its janitor removes it then.
   */
  close(driverEnded?: Promise<unknown>): Promise<void>;
}

/** An interrupt (Ctrl-C, a kill, an aborted signal): its own kind, and exit status 130. */
export function interrupted(noun: string): RunError {
  return new RunError('interrupted', `interrupted; the ${noun} was stopped`, { code: 'SR_INTERRUPTED', final: true });
}

/**
 * The client's half of a job up to its spec. `submits`: whether this client runs the driver
 * (spark-submit or Livy); the Python API's driver is the caller's own process.
 */
export async function openJob<
  I,
  O extends EnvelopeOptions,
  S extends { kind: string },
  D extends DriverResultBase,
  R,
  St extends KindState,
>(kind: JobKind<I, O, S, D, R, St>, input: I, submits = true): Promise<OpenJob<O, R>> {
  const o = kind.resolve(input);
  await kind.preflight?.(o);
  const executors = kind.executors(o);
  if (!o.master && !o.livy) checkEmbeddedSlots(executors.count, executors.flag);
  if (o.livy) await checkLivy({ livy: o.livy, livyHeaders: o.livyHeaders });
  if (o.queue && (o.master === 'yarn' || o.livy)) await checkYarnQueue(o.queue);
  const paths = requireSparkPaths(submits);
  const say = o.onProgress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const runId = randomUUID();
  const placed = await placeJob(o);
  const redis = await openRunRedis(o, runId, placed.address);
  let state: St | undefined;
  let stage: Staging | undefined;
  let follower: EventFollower | undefined;
  let doneSaid: (ok: boolean) => void = () => undefined;
  let lastEventRead = false;
  const driverDone = new Promise<boolean>((resolve) => {
    doneSaid = (ok) => {
      lastEventRead = true;
      resolve(ok);
    };
  });
  const close = async (driverEnded?: Promise<unknown>): Promise<void> => {
    await follower?.stop(lastEventRead);
    await state?.close?.();
    await redis.stop();
    const staging = stage;
    if (driverEnded && staging) {
      staging.handOver();
      void driverEnded.then(() => staging.remove());
    } else await stage?.remove();
  };
  try {
    stage = await stagingDir(o.stage, `sparkring-${kind.kind}-`);
    const entry = kind.shipEntry?.(o);
    // A caller's long-lived session (the Python API) gets one archive per run: Spark refuses a
    // second, different archive of the same name in one application or Connect session.
    const name = submits ? BUNDLE_NAME : `${BUNDLE_NAME}-${runId.slice(0, 8)}`;
    const bundle = entry === undefined ? undefined : await shipRuntime({ ...o, entry }, paths, stage.dir, say, name);
    const run: JobRun<O> = {
      o,
      sparkConf: o.requireEncryption ? { ...placed.sparkConf, [REQUIRE_ENCRYPTION_CONF]: 'true' } : placed.sparkConf,
      paths,
      say,
      runId,
      secret: randomBytes(32).toString('hex'),
      redis: redis.endpoint,
      staging: stage.dir,
      resultPath: join(stage.dir, 'result.json'),
      bundle,
      returnsOnResult: submits && !o.livy,
    };
    state = (await kind.open?.(run)) ?? ({} as St);
    const kindState = state;
    follower = new EventFollower(redis.endpoint, runKey(run.secret, 'events'), (e: RunEvent) => {
      // Every kind's driver may warn (spark-plugin/sparkring/driver/rpc_encryption.py).
      if (e.type === 'driver' && e.stage === 'warning' && typeof e.line === 'string')
        say(`sparkring: warning: ${printable(e.line)}`);
      kindState.onEvent?.(e);
      o.onEvent?.(e);
      if (e.type === 'driver' && e.stage === 'done') doneSaid(e.ok === true);
    });
    follower.onIgnored = (message) => say(`sparkring: ${message}`);
    let lastTrouble = 0;
    follower.onTrouble = (message) => {
      if (Date.now() - lastTrouble < 10_000) return;
      lastTrouble = Date.now();
      say(`sparkring: Redis at ${redactUrl(redis.endpoint.url)}: ${message}; following the run resumes when it is back`);
    };
    const spec = await kind.spec(run, kindState);
    const specPath = join(stage.dir, 'spec.json');
    await writeFile(specPath, JSON.stringify(spec, null, 2), { mode: 0o600 });
    const finish = async (submittedAt: number, outcome?: SubmitOutcome): Promise<R> => {
      const driver = await readDriverResult(kind.result, run.resultPath, run.redis, run.secret);
      if (driver?.ok) return kind.finish(run, kindState, driver as D & { ok: true }, submittedAt);
      if (driver) await kind.failed?.(run, kindState, driver);
      if (driver?.error) throw driverError(driver.error, kindState.heard?.() ?? [], driver.dir);
      if (outcome) throw submitError(outcome);
      throw new RunError('spark', `the ${kind.noun}'s driver ended without a result; see its log above`);
    };
    return { run, specPath, finish, driverDone, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Runs one job of `kind` to its result: opened, submitted, its driver's result read, closed. */
export async function runJob<
  I,
  O extends EnvelopeOptions,
  S extends { kind: string },
  D extends DriverResultBase,
  R,
  St extends KindState,
>(kind: JobKind<I, O, S, D, R, St>, input: I): Promise<R> {
  const job = await openJob(kind, input);
  const { run } = job;
  const { o, paths, say } = run;
  let driverEnding: Promise<unknown> | undefined;
  try {
    if (o.signal?.aborted) throw interrupted(kind.noun);
    const plan = kind.submission(o);
    say(plan.line);
    const submit = {
      workers: kind.executors(o).count,
      master: o.master,
      queue: o.queue,
      sparkConf: run.sparkConf,
      archives: run.bundle ? [run.bundle.archive] : [],
      ...plan.settings,
    };
    const submittedAt = Date.now();
    const program = [paths.submitFile, job.specPath];
    const onLine = kind.onSubmitLine ? (line: string) => kind.onSubmitLine?.(line, run) : undefined;
    if (o.livy) {
      const outcome = await runLivyBatch(
        { ...submit, livy: o.livy, livyHeaders: o.livyHeaders, name: o.name },
        paths,
        program,
        run.staging,
        say,
        o.signal,
      );
      if (o.signal?.aborted) throw interrupted(kind.noun);
      return await job.finish(submittedAt, outcome);
    }
    const driver = await startSparkSubmit(submit, paths, program, run.staging, o.signal, onLine);
    // The result first: once the driver says it succeeded, what it still does (the executors'
    // release, Spark's shutdown) goes on without this client. A failure waits for the driver's end.
    const resultIn = job.driverDone.then(
      (ok): Promise<SubmitOutcome | 'result'> => (ok ? Promise.resolve('result') : driver.outcome),
    );
    const first = await Promise.race<SubmitOutcome | 'result'>([driver.outcome, resultIn]);
    if (o.signal?.aborted) throw interrupted(kind.noun);
    if (first !== 'result') return await job.finish(submittedAt, first);
    driver.letGo();
    driverEnding = driver.outcome;
    return await job.finish(submittedAt);
  } finally {
    await job.close(driverEnding);
  }
}
