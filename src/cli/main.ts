#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from 'commander';
import type { z } from 'zod';
import { RunError } from '../client/errors.js';
import { ALLREDUCE_DEFAULTS, DEFAULT_EXPERIMENTS } from '../client/jobs/options.js';
import { PREDICT_DEFAULTS, predict } from '../client/jobs/predict.js';
import { rerun } from '../client/jobs/rerun.js';
import { type LaunchResult, launch } from '../client/jobs/search.js';
import { LAUNCH_DEFAULTS } from '../client/jobs/search-options.js';
/** The `sparkring` command line (docs/architecture.md says where each flag travels). */
import { runSession } from '../client/jobs/session.js';
import { type AllreduceResult, allreduce } from '../client/jobs/train.js';
import { SetupError } from '../client/submission/paths.js';
import { prepareEnvironment, setup } from '../client/submission/setup.js';
import { WIRE_PRECISIONS } from '../collective/half-precision.js';
import { parseGridFlag, parseRandomFlag, SearchSpaceError } from '../hpo/space.js';
import { basicAuth, bearer } from '../livy/client.js';
import { TF_BACKENDS, type TfBackendChoice } from '../runtime/backend.js';
import { ServeError } from '../serve/errors.js';
import { ModelRepoError } from '../serve/repository.js';
import { isServeWorker } from '../serve/worker-env.js';
import { collect, earlyStopFlag, keyValue, nonNegative, positiveInt } from './args.js';
import { runDemo } from './demo.js';
import { experimentsList, experimentsShow } from './experiments.js';
import { allreduceFlags, type jobFlags, launchFlags, parseFlags, predictFlags, type submitFlags } from './flags.js';
import { secretValue } from './secrets.js';
import { addServeCommands } from './serve.js';

const parseValue = (v: string): unknown => {
  try {
    return JSON.parse(v);
  } catch {
    return v;
  }
};

function printResult(r: AllreduceResult, json: boolean): void {
  if (json) {
    const { runId, dir, workers, attempts, backends, result, metrics, timings } = r;
    process.stdout.write(`${JSON.stringify({ runId, dir, workers, attempts, backends, result, metrics, timings })}\n`);
    return;
  }
  process.stdout.write(`result: ${JSON.stringify(r.result)}\n`);
  process.stdout.write(`experiment: ${r.dir}\n`);
  const t = r.timings;
  process.stdout.write(
    `timings: submit to ring ${t.submitToRingMs} ms, training ${t.trainMs} ms, executors ${t.releaseMs === null ? 'released after the result' : `released in ${Math.round(t.releaseMs)} ms`}\n`,
  );
}

/** Ctrl-C or a polite kill: stop the run and clean up (private Redis, staging, the Livy batch). */
function onInterrupt(): AbortController {
  const interrupt = new AbortController();
  // A lasting listener (not once): execa's exit hook re-raises a signal nobody else listens to.
  // A second signal while stopping exits at once.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (interrupt.signal.aborted) process.exit(EXIT_INTERRUPTED);
      interrupt.abort();
    });
  }
  return interrupt;
}

/** Where and how any job kind is submitted (options.ts jobFields): Spark, Livy, Redis, staging, output. */
function withSubmitOptions(command: Command): Command {
  return command
    .option('--queue <queue>', 'YARN queue')
    .option('--conf <key=value>', 'extra Spark configuration (repeatable)', keyValue('--conf'), {})
    .option(
      '--redis <url>',
      "Redis for the run's events and a search's queue: redis://[:password@]host:port or rediss://, or @FILE holding it, or $SPARKRING_REDIS (default: a private redis-server)",
    )
    .option('--redis-ca <pem>', 'CA certificate for a rediss:// server')
    .option('--livy <url>', 'submit through this Livy server (http(s)://host:port) instead of spark-submit')
    .option('--livy-user <user:password>', 'HTTP basic auth for Livy (or @FILE holding it, or $SPARKRING_LIVY_USER)')
    .option('--livy-token <token>', 'bearer token for Livy (or @FILE holding it, or $SPARKRING_LIVY_TOKEN)')
    .option(
      '--stage <dir>',
      "directory for the run's files the cluster reads (spec, archives), shared with Livy and the nodes (default: $TMPDIR)",
    )
    .option(
      '--require-encryption',
      "refuse to run where Spark's RPC to the executors is not encrypted (spark.network.crypto.enabled): the run's secret rides in its task closures",
    )
    .addOption(
      new Option(
        '--tf-backend <backend>',
        "the workers' TensorFlow: native (tfjs-node over the executors' TensorFlow), wasm, cpu (pure-JS), or auto (native, else cpu, saying why)",
      )
        .choices([...TF_BACKENDS])
        .default(ALLREDUCE_DEFAULTS.tfBackend),
    )
    .option('--json', 'print one JSON object on stdout (progress stays on stderr)');
}

/** The options `allreduce` and `launch` share besides the submission's: the experiments and the shipped runtime. */
function withJobOptions(command: Command): Command {
  return withSubmitOptions(command)
    .option('--experiments <dir>', 'experiments directory (default: ./experiments or $SPARKRING_EXPERIMENTS)')
    .option(
      '--ship',
      'ship the runtime and the entry to the executors as a Spark archive (default unless the master is local or on loopback)',
    )
    .option('--no-ship', 'run the runtime and the entry from their paths here (the nodes share this file system)')
    .option('--ship-node', "ship this machine's Node binary too, for nodes without Node 20");
}

/** The values of withSubmitOptions' flags and --master. */
function submitArgs(f: z.output<typeof submitFlags>, signal: AbortSignal) {
  return {
    master: f.master,
    queue: f.queue,
    sparkConf: f.conf,
    redis: secretValue('--redis', f.redis),
    redisCa: f.redisCa,
    livy: f.livy,
    livyHeaders: livyHeaders(secretValue('--livy-user', f.livyUser), secretValue('--livy-token', f.livyToken)),
    tfBackend: f.tfBackend,
    stage: f.stage,
    requireEncryption: f.requireEncryption,
    signal,
  };
}

/** The values of withJobOptions' flags, --name and --master: options.ts jobFields. */
function jobArgs(entry: string, f: z.output<typeof jobFlags>, signal: AbortSignal) {
  return {
    ...submitArgs(f, signal),
    entry,
    name: f.name,
    experiments: f.experiments,
    ship: f.ship,
    shipNode: Boolean(f.shipNode),
  };
}

/** --hp key=value pairs, each value JSON where it parses. */
const hparams = (hp: Record<string, string>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(hp).map(([k, v]) => [k, parseValue(v)]));

function livyHeaders(user: string | undefined, token: string | undefined): Record<string, string> | undefined {
  if (user) {
    const at = user.indexOf(':');
    if (at <= 0)
      throw new InvalidArgumentError(
        `--livy-user takes user:password (or @FILE holding it, or $SPARKRING_LIVY_USER), not "${user}"`,
      );
    return basicAuth(user.slice(0, at), user.slice(at + 1));
  }
  return token ? bearer(token) : undefined;
}

function printLaunchResult(r: LaunchResult, json: boolean): void {
  const trials = r.trials.map(({ id, hparams, status, metric, attempts, steps, stoppedEarly, error, backend }) => ({
    id,
    hparams,
    status,
    metric,
    attempts,
    steps,
    stoppedEarly,
    error,
    backend,
  }));
  const best = r.best ? { id: r.best.id, hparams: r.best.hparams, metric: r.best.metric } : null;
  if (json) {
    process.stdout.write(`${JSON.stringify({ runId: r.runId, dir: r.dir, trials, best, timings: r.timings })}\n`);
    return;
  }
  for (const t of trials) {
    const how = t.status === 'done' ? (t.stoppedEarly ? 'stopped early' : 'done') : `${t.status}: ${t.error}`;
    const on = t.backend ? `, ${t.backend}` : '';
    process.stdout.write(
      `trial ${t.id}: ${JSON.stringify(t.hparams)} metric ${t.metric ?? '-'} (${how}, ${t.steps} steps${on})\n`,
    );
  }
  process.stdout.write(`best: ${best ? `trial ${best.id} ${JSON.stringify(best.hparams)} metric ${best.metric}` : 'none'}\n`);
  process.stdout.write(`experiment: ${r.dir}\n`);
  const release = r.timings.releaseMs === null ? '-' : `${Math.round(r.timings.releaseMs)} ms`;
  process.stdout.write(`timings: search ${r.timings.searchMs} ms, executors released ${release} after the last trial\n`);
}

/** The flags take seconds where the options take milliseconds. */
const seconds = (ms: number): number => ms / 1000;

/** Bad input (flags, options, the search space, the data) exits with 2, an interrupt with 130 (as a shell's), every other failure with 1. */
const EXIT_INPUT = 2;
const EXIT_INTERRUPTED = 130;

/** A progress line of the command itself (stderr, as the run's own lines). */
const sayLine = (line: string): void => {
  process.stderr.write(`sparkring: ${line}\n`);
};

function fail(err: unknown): never {
  if (err instanceof SetupError || err instanceof ServeError) {
    process.stderr.write(`sparkring: ${err.message}\n`);
    process.exit(1);
  }
  if (err instanceof SearchSpaceError || err instanceof InvalidArgumentError || err instanceof ModelRepoError) {
    process.stderr.write(`sparkring: ${err.message}\n`);
    process.exit(EXIT_INPUT);
  }
  if (err instanceof RunError) {
    process.stderr.write(`sparkring: ${err.message}\n`);
    if (err.detail.workerStack) process.stderr.write(`${err.detail.workerStack}\n`);
    if (err.detail.dir) process.stderr.write(`(experiment: ${err.detail.dir})\n`);
    process.exit(err.kind === 'input' ? EXIT_INPUT : err.kind === 'interrupted' ? EXIT_INTERRUPTED : 1);
  }
  if (err instanceof TypeError || err instanceof RangeError) process.stderr.write(`sparkring: ${err.message}\n`);
  else process.stderr.write(`sparkring: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
}

const program = new Command('sparkring')
  .description('TypeScript (TensorFlow.js) training inside Apache Spark executors')
  .showHelpAfterError()
  .exitOverride((err) => {
    process.exit(err.exitCode === 0 ? 0 : EXIT_INPUT);
  });

withJobOptions(
  program
    .command('allreduce')
    .description('data-parallel training of ENTRY on Spark executors (one barrier stage, ring allreduce)')
    .argument('<entry>', 'training module (.ts or .js) whose default export is train(ctx)')
    .option('--workers <n>', 'number of workers (Spark barrier tasks)', positiveInt('--workers'), ALLREDUCE_DEFAULTS.workers)
    .option('--data <path>', 'parquet/csv/json/orc path partitioned across the workers')
    .option(
      '--partition-by <column>',
      'rows with equal values of this column go to the same worker (default: dealt round-robin, near-equal partitions)',
    )
    .option('--hp <key=value>', 'hyperparameter (repeatable); values are JSON when they parse', keyValue('--hp'), {})
    .option('--name <name>', 'run name (default: the entry file name)')
    .option('--master <url>', 'Spark master (default: embedded local-cluster[W,1,1024])')
    .option(
      '--gpus-per-worker <g>',
      'GPUs per worker (spark.task.resource.gpu.amount)',
      nonNegative('--gpus-per-worker'),
      ALLREDUCE_DEFAULTS.gpusPerWorker,
    )
    .option(
      '--max-attempts <k>',
      'retry a failed run up to K attempts in all, each in the same Spark application',
      positiveInt('--max-attempts'),
      ALLREDUCE_DEFAULTS.maxAttempts,
    )
    .option(
      '--min-workers <k>',
      'elastic: when a host is lost and the cluster cannot give its slots back, go on with the workers that are free, at least K, from the last checkpoint',
      positiveInt('--min-workers'),
    )
    .option(
      '--max-workers <m>',
      'elastic: grow the ring up to M workers at an epoch end when the application gains executors (default --workers; needs --min-workers)',
      positiveInt('--max-workers'),
    )
    .option(
      '--heartbeat-timeout <seconds>',
      'a worker silent this long fails its attempt',
      positiveInt('--heartbeat-timeout'),
      seconds(ALLREDUCE_DEFAULTS.heartbeatTimeoutMs),
    )
    .option(
      '--collective-timeout <seconds>',
      'a collective with no progress this long ends the attempt, naming the ranks that did not arrive',
      positiveInt('--collective-timeout'),
      seconds(ALLREDUCE_DEFAULTS.collectiveTimeoutMs),
    )
    .option(
      '--peer-timeout <seconds>',
      'a ring neighbour silent this long is lost',
      positiveInt('--peer-timeout'),
      seconds(ALLREDUCE_DEFAULTS.peerTimeoutMs),
    )
    .option(
      '--formation-timeout <seconds>',
      'the ring must form within this long, else the attempt fails naming the ranks and hosts not reached',
      positiveInt('--formation-timeout'),
      seconds(ALLREDUCE_DEFAULTS.formationTimeoutMs),
    )
    .option(
      '--ring-interface <name|cidr>',
      "the network interface (eth1) or subnet (10.0.0.0/16) the ring listens on (default: each executor's own address)",
    )
    .option(
      '--ring-encrypt',
      "seal the ring's frames with AES-256-GCM (default: on where Spark's RPC is encrypted, spark.network.crypto.enabled)",
    )
    .option('--no-ring-encrypt', "send the ring's frames in clear even where Spark's RPC is encrypted")
    .addOption(
      new Option(
        '--wire-precision <format>',
        "the gradients on the ring (ctx.fit's, compileStep's): fp32, or fp16 / bf16 in half the bytes with error feedback",
      )
        .choices([...WIRE_PRECISIONS])
        .default(ALLREDUCE_DEFAULTS.wirePrecision),
    ),
).action(async (entry: string, o: Record<string, unknown>) => {
  const interrupt = onInterrupt();
  try {
    const f = parseFlags(allreduceFlags, o);
    await prepareEnvironment(sayLine, { livy: f.livy });
    const r = await allreduce({
      ...jobArgs(entry, f, interrupt.signal),
      workers: f.workers,
      data: f.data,
      partitionBy: f.partitionBy,
      hparams: hparams(f.hp),
      gpusPerWorker: f.gpusPerWorker,
      maxAttempts: f.maxAttempts,
      minWorkers: f.minWorkers,
      maxWorkers: f.maxWorkers,
      heartbeatTimeoutMs: f.heartbeatTimeout * 1000,
      collectiveTimeoutMs: f.collectiveTimeout * 1000,
      peerTimeoutMs: f.peerTimeout * 1000,
      formationTimeoutMs: f.formationTimeout * 1000,
      ringInterface: f.ringInterface,
      ringEncrypt: f.ringEncrypt,
      wirePrecision: f.wirePrecision,
    });
    printResult(r, Boolean(f.json));
  } catch (err) {
    fail(err);
  }
});

program
  .command('demo')
  .description('train a small MLP on the digits dataset with 2 workers on the embedded local Spark')
  .option('--experiments <dir>', 'experiments directory')
  .addOption(
    new Option('--tf-backend <backend>', "the workers' TensorFlow (as for allreduce)").choices([...TF_BACKENDS]).default('auto'),
  )
  .option('--json', 'print one JSON object on stdout')
  .action(async (o: { experiments?: string; json?: boolean; tfBackend: TfBackendChoice }) => {
    try {
      await prepareEnvironment(sayLine);
      const r = await runDemo(o);
      if (o.json) {
        const { runId, dir, workers, attempts, backends, result, metrics, timings, scored } = r;
        process.stdout.write(
          `${JSON.stringify({ runId, dir, workers, attempts, backends, result, metrics, timings, scored })}\n`,
        );
        return;
      }
      const accuracy = (r.result as { heldOutAccuracy?: number } | null)?.heldOutAccuracy;
      process.stdout.write(`held-out accuracy: ${accuracy === undefined ? '?' : (accuracy * 100).toFixed(1)}%\n`);
      process.stdout.write(`trained on: ${[...new Set(r.backends)].join(', ')}\n`);
      printResult(r, false);
      process.stdout.write(`held-out rows scored with the saved model: ${r.scored.rows}, in ${r.scored.out}\n`);
    } catch (err) {
      fail(err);
    }
  });

withJobOptions(
  program
    .command('launch')
    .description('hyperparameter search: trials of ENTRY spread over Spark executors, each in a fresh Node process')
    .argument('<entry>', 'training module (.ts or .js) whose default export is train(ctx)')
    .option('--grid <key=v1,v2,...>', 'grid search values of one key (repeatable; every combination runs)', collect, [])
    .option(
      '--random <key=dist>',
      'random search distribution of one key (repeatable): uniform(a,b) loguniform(a,b) int(a,b) choice(x,y,...)',
      collect,
      [],
    )
    .option('--trials <n>', 'number of random trials', positiveInt('--trials'))
    .option('--seed <n>', 'seed of the random search', Number, LAUNCH_DEFAULTS.seed)
    .option('--hp <key=value>', 'hyperparameter every trial gets (repeatable)', keyValue('--hp'), {})
    .option('--metric <key>', 'the metric that decides the best trial', LAUNCH_DEFAULTS.metric)
    .addOption(
      new Option('--direction <dir>', 'whether a lower or a higher metric is better')
        .choices(['min', 'max'])
        .default(LAUNCH_DEFAULTS.direction),
    )
    .option('--asha [min=1,eta=3,max=81]', 'stop poor trials early by asynchronous successive halving (steps)')
    .option('--median [grace=1,trials=3]', 'stop trials worse than the median of the others at the same step')
    .option('--executors <n>', 'executors running trials', positiveInt('--executors'), LAUNCH_DEFAULTS.executors)
    .option(
      '--max-trial-attempts <k>',
      'a trial that fails K times is failed',
      positiveInt('--max-trial-attempts'),
      LAUNCH_DEFAULTS.maxTrialAttempts,
    )
    .option(
      '--exclude-after <n>',
      'exclude an executor after N failed trials in a row',
      positiveInt('--exclude-after'),
      LAUNCH_DEFAULTS.excludeAfter,
    )
    .option('--name <name>', 'search name (default: the entry file name)')
    .option('--master <url>', 'Spark master (default: embedded local-cluster[E,1,1024])')
    .option('--gpus-per-trial <g>', 'GPUs per trial', nonNegative('--gpus-per-trial'), LAUNCH_DEFAULTS.gpusPerTrial),
).action(async (entry: string, o: Record<string, unknown>) => {
  const interrupt = onInterrupt();
  try {
    const f = parseFlags(launchFlags, o);
    await prepareEnvironment(sayLine, { livy: f.livy });
    const r = await launch({
      ...jobArgs(entry, f, interrupt.signal),
      grid: f.grid.length ? Object.fromEntries(f.grid.map(parseGridFlag)) : undefined,
      random: f.random.length ? Object.fromEntries(f.random.map(parseRandomFlag)) : undefined,
      trials: f.trials,
      seed: f.seed,
      hparams: hparams(f.hp),
      metric: f.metric,
      direction: f.direction,
      earlyStop: earlyStopFlag(f.asha, f.median),
      executors: f.executors,
      maxTrialAttempts: f.maxTrialAttempts,
      excludeAfter: f.excludeAfter,
      gpusPerTrial: f.gpusPerTrial,
      tfBackend: f.tfBackend,
    });
    printLaunchResult(r, Boolean(f.json));
  } catch (err) {
    fail(err);
  }
});

program
  .command('setup')
  .description(
    "make sparkring's Python environment (pyspark, pyarrow, TensorFlow from PyPI) in the user cache and build its native parts; the first run does this too",
  )
  .option('--json', 'print one JSON object on stdout')
  .action(async (o: { json?: boolean }) => {
    try {
      const r = await setup(sayLine);
      if (o.json) {
        process.stdout.write(`${JSON.stringify(r)}\n`);
        return;
      }
      process.stdout.write(`Python environment: ${r.venv}\n`);
      process.stdout.write(`Spark: ${r.sparkSubmit} (from ${r.sparkFrom})\n`);
      process.stdout.write(
        `TensorFlow for the workers: ${r.tfBinding ?? 'none built: workers train on pure-JS tfjs (see the lines above)'}\n`,
      );
    } catch (err) {
      fail(err);
    }
  });

// The Python API's side channel (spark-plugin/sparkring/api.py; client/jobs/session.ts), not for people.
program
  .command('session', { hidden: true })
  .description('the client side of a run whose Spark driver is the calling Python process (JSON lines on stdin/stdout)')
  .action(async () => {
    process.exitCode = await runSession(process.stdin, process.stdout);
  });

const experiments = program.command('experiments').description('runs recorded under the experiments directory');
experiments
  .command('list')
  .description('every run: id, status, workers, attempts, start, result')
  .option('--experiments <dir>', 'experiments directory (default: ./experiments or $SPARKRING_EXPERIMENTS)')
  .option('--json', 'print one JSON array on stdout')
  .action((o: { experiments?: string; json?: boolean }) => {
    process.stdout.write(`${experimentsList(o)}\n`);
  });
experiments
  .command('show')
  .description('one run: summary, last metrics per worker, and its curves.svg')
  .argument('<run>', 'run id (<appId>/run.<n>/<name>), a unique suffix of it, its app id or name')
  .option('--experiments <dir>', 'experiments directory')
  .option('--json', 'print one JSON object on stdout')
  .action((run: string, o: { experiments?: string; json?: boolean }) => {
    try {
      process.stdout.write(`${experimentsShow(run, o)}\n`);
    } catch (err) {
      fail(new RunError('input', (err as Error).message));
    }
  });

experiments
  .command('rerun')
  .description('run a recorded run or search again: its spec.json and the entry as it ran (versioned/)')
  .argument('<run>', 'run id (<appId>/run.<n>/<name>), a unique suffix of it, its app id or name')
  .option('--experiments <dir>', 'experiments directory')
  .option('--redis <url>', 'Redis for the run events (default: a private redis-server)')
  .option('--trust-spec', "apply spec.json's Spark settings that run code (class paths, JVM options, executorEnv...)")
  .option('--json', 'print one JSON object on stdout')
  .action(async (run: string, o: { experiments?: string; redis?: string; json?: boolean; trustSpec?: boolean }) => {
    const interrupt = onInterrupt();
    try {
      await prepareEnvironment(sayLine);
      const r = await rerun(run, o.experiments ?? DEFAULT_EXPERIMENTS(), {
        redis: secretValue('--redis', o.redis),
        trustSpec: o.trustSpec,
        signal: interrupt.signal,
      });
      if (r.kind === 'search') printLaunchResult(r.search, Boolean(o.json));
      else printResult(r.run, Boolean(o.json));
    } catch (err) {
      fail(err);
    }
  });

withSubmitOptions(
  program
    .command('predict')
    .description(
      'score a table with a model ctx.saveModel wrote: the table with a prediction column appended, computed on Spark executors',
    )
    .argument('<model>', 'the model folder (model.json, weights.bin, signature.json) or a run folder with model/ in it')
    .requiredOption('--data <path>', 'the table to score (parquet, or by extension csv, json, orc)')
    .requiredOption('--out <path>', 'where the scored table goes (parquet, or by extension csv, json, orc)')
    .option(
      '--features <cols>',
      "feature columns in the model's input order, comma-separated (default: the model's signature.json)",
    )
    .option('--output <name>', "the prediction column's name (default: the signature's, 'prediction')")
    .option('--where <col=value>', 'score only the rows whose column equals the number (e.g. is_test=1)', whereFlag)
    .option('--batch-size <n>', 'rows a model call takes at most', positiveInt('--batch-size'), PREDICT_DEFAULTS.batchSize)
    .option('--executors <n>', 'executors of the embedded local Spark', positiveInt('--executors'), PREDICT_DEFAULTS.executors)
    .option('--master <url>', 'Spark master (default: the embedded local-cluster)')
    .option('--overwrite', 'replace --out when it exists'),
).action(async (model: string, o: Record<string, unknown>) => {
  const interrupt = onInterrupt();
  try {
    const f = parseFlags(predictFlags, o);
    await prepareEnvironment(sayLine, { livy: f.livy });
    const r = await predict({
      ...submitArgs(f, interrupt.signal),
      model,
      data: f.data,
      out: f.out,
      features: f.features?.split(',').map((c) => c.trim()),
      output: f.output,
      where: f.where,
      batchSize: f.batchSize,
      executors: f.executors,
      overwrite: Boolean(f.overwrite),
    });
    if (f.json) process.stdout.write(`${JSON.stringify(r)}\n`);
    else {
      const perS = Math.round(r.rows / (r.scoreMs / 1000));
      process.stdout.write(
        `scored ${r.rows} rows into ${r.out} (column ${r.output}) in ${(r.scoreMs / 1000).toFixed(1)} s, ${perS} rows/s; the model loaded ${r.loads} time${r.loads === 1 ? '' : 's'}\n`,
      );
    }
  } catch (err) {
    fail(err);
  }
});

function whereFlag(v: string): { column: string; value: number } {
  const m = /^([^=]+)=(.+)$/.exec(v);
  if (!m || !Number.isFinite(Number(m[2])))
    throw new InvalidArgumentError(`--where takes COLUMN=NUMBER (e.g. is_test=1), not "${v}"`);
  return { column: (m[1] as string).trim(), value: Number(m[2]) };
}

addServeCommands(program, fail);

// A worker of `sparkring serve --workers N` runs this file again, with its options in the environment.
if (isServeWorker()) await (await import('../serve/cluster.js')).serveWorker();
else await program.parseAsync(process.argv);
