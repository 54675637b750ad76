/**
 * A job kind (train, search, predict, ...) as the one envelope (jobs/run-job.ts) runs it: the kind
 * resolves its options, builds its spec and reads its typed driver result; everything around that
 * (preflight of the cluster, the run's Redis and events, staging, the shipped runtime, submission
 * through spark-submit or Livy, the interrupt, the driver's result, error mapping, teardown) is the
 * envelope's. After execa's methods and Ray Train's backend hooks: a new kind is one small file.
 */
import type { z } from 'zod';
import type { RunEvent } from '../../events/protocol.js';
import type { RedisEndpoint } from '../../events/redis.js';
import type { RuntimeBundle } from '../submission/bundle.js';
import type { SparkPaths } from '../submission/paths.js';
import type { SubmitSettings } from '../submission/spark-submit.js';
import type { HeardError } from './driver-error.js';
import type { DriverResultBase } from './driver-result-base.js';

/** What the envelope reads of every kind's resolved options (client/jobs/options.ts jobFields). */
export interface EnvelopeOptions {
  name: string;
  master?: string;
  livy?: string;
  livyHeaders?: Record<string, string>;
  queue?: string;
  sparkConf: Record<string, string>;
  redis?: string;
  redisCa?: string;
  ship?: boolean;
  shipNode?: boolean;
  stage?: string;
  requireEncryption?: boolean;
  onProgress?: (line: string) => void;
  onEvent?: (e: RunEvent) => void;
  signal?: AbortSignal;
}

/** One job as the envelope opened it: what a kind's hooks are given. */
export interface JobRun<O extends EnvelopeOptions> {
  o: O;
  /** The Spark settings submitted: the options' with what placing the job adds (client/submission/reachable.ts). */
  sparkConf: Record<string, string>;
  paths: SparkPaths;
  say: (line: string) => void;
  runId: string;
  /** The run's secret: the driver signs its result with it, the workers prove it to one another. */
  secret: string;
  redis: RedisEndpoint;
  /** The run's own directory for what the cluster reads (spec, plugin zip, archive). */
  staging: string;
  /** Where the driver writes its result on this machine (client mode). */
  resultPath: string;
  /** The shipped runtime, when the kind ships one and the executors may be elsewhere. */
  bundle: RuntimeBundle | undefined;
  /**
   * This client returns as soon as the driver's result is in (spark-submit): what the driver does
   * after it (the executors' release, Spark's shutdown) runs on off the user's clock.
   */
  returnsOnResult: boolean;
}

/** What a kind keeps while its job runs: its own resources and its reading of the run's events. */
export interface KindState {
  onEvent?(e: RunEvent): void;
  /** Errors workers reported, for the driver error's cause (client/jobs/driver-error.ts). */
  heard?(): readonly HeardError[];
  close?(): Promise<void>;
}

export interface JobKind<
  Input,
  O extends EnvelopeOptions,
  Spec extends { kind: string },
  Driver extends DriverResultBase,
  Result,
  State extends KindState = KindState,
> {
  /** The spec's `kind`, by which the Spark driver (spark-plugin/sparkring/driver/submit.py) picks its middle. */
  readonly kind: Spec['kind'];
  /** What the job is called in lines: "run", "search", "scoring". */
  readonly noun: string;
  resolve(input: Input): O;
  /** Executors the job takes, and the flag that sets them (the embedded default's slot check names it). */
  executors(o: O): { count: number; flag: '--workers' | '--executors' };
  /** Checks of the kind's own inputs, before anything starts. */
  preflight?(o: O): void | Promise<void>;
  /** The entry to ship with the runtime; undefined: the kind ships no runtime. */
  shipEntry?(o: O): string | undefined;
  /** The kind's resources (a trial queue, a progress view), opened after the run's Redis. */
  open?(run: JobRun<O>): Promise<State>;
  spec(run: JobRun<O>, state: State): Promise<Spec>;
  /** How it is submitted: the line said, and the settings beyond the envelope's own. */
  submission(o: O): { line: string; settings: Pick<SubmitSettings, 'gpusPerWorker' | 'search'> };
  /** Spark-submit's own lines, for a kind whose progress is not on the run's stream. */
  onSubmitLine?(line: string, run: JobRun<O>): void;
  /** The driver result's contract (jobs/driver-results.ts). */
  readonly result: z.ZodType<Driver>;
  /** The run's outcome from a driver result that is ok. */
  finish(run: JobRun<O>, state: State, driver: Driver & { ok: true }, submittedAt: number): Promise<Result>;
  /** What a failed result leaves in the run directory, before its error is thrown. */
  failed?(run: JobRun<O>, state: State, driver: Driver): Promise<void>;
}

/** Any kind, for the envelope's registry (session.ts, rerun.ts). */
// biome-ignore lint/suspicious/noExplicitAny: a registry of kinds of every option and result type
export type AnyJobKind = JobKind<any, any, any, any, any, any>;
