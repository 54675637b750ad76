/**
 * `sparkring serve` and `sparkring models register | list | route | log`: the model server and its
 * repository (src/serve). The command lines are kept stable (issue "Serve what it trains").
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { Redis } from 'ioredis';
import { DEFAULT_EXPERIMENTS } from '../client/jobs/options.js';
import { sparkPaths } from '../client/submission/paths.js';
import { TF_BACKENDS } from '../runtime/backend.js';
import { LOG_PAYLOADS, streamKey } from '../serve/inference-log.js';
import {
  DEFAULT_REPO,
  listModels,
  type ModelPolicy,
  ModelRepoError,
  readPolicy,
  registerModel,
  versionsOf,
  writePolicy,
} from '../serve/repository.js';
import { nonNegative, nonNegativeInt, positiveInt } from './args.js';
import { table } from './experiments.js';
import { parseFlags, routeFlags, serveFlags } from './flags.js';
import { secretValue } from './secrets.js';

export const TOKEN_ENV = 'SPARKRING_SERVE_TOKEN';
const MiB = 1024 * 1024;

const versionArg =
  (flag: string) =>
  (v: string): number => {
    const m = /^v?([1-9]\d*)$/.exec(v.trim());
    if (!m) throw new InvalidArgumentError(`${flag} takes a version number (3 or v3), not "${v}"`);
    return Number(m[1]);
  };

function canaryArg(v: string): { version: number; percent: number } {
  const m = /^v?([1-9]\d*)=(\d+(?:\.\d+)?)%?$/.exec(v.trim());
  const percent = Number(m?.[2]);
  if (!m || !(percent > 0 && percent < 100)) {
    throw new InvalidArgumentError(`--canary takes VERSION=PERCENT with 0 < PERCENT < 100 (e.g. v3=10), not "${v}"`);
  }
  return { version: Number(m[1]), percent };
}

/** The version that takes the rest of a canary split: the one serving now, other than the canary. */
function primaryOf(policy: ModelPolicy, present: number[], canary: number): number | undefined {
  const r = policy.routing;
  if (r.kind === 'only') return r.version === canary ? undefined : r.version;
  if (r.kind === 'canary') {
    const others = Object.entries(r.weights)
      .filter(([v]) => Number(v) !== canary)
      .sort((a, b) => b[1] - a[1]);
    return others[0] ? Number(others[0][0]) : undefined;
  }
  return present.filter((v) => v !== canary && v !== policy.shadow).at(-1);
}

export function describeRouting(p: ModelPolicy): string {
  const r = p.routing;
  const routing =
    r.kind === 'latest'
      ? 'the newest version'
      : r.kind === 'only'
        ? `only v${r.version}`
        : Object.entries(r.weights)
            .map(([v, w]) => `v${v} ${w}%`)
            .join(', ');
  return `${routing}${p.shadow ? `; shadow v${p.shadow}` : ''}`;
}

function tokenFrom(file: string | undefined): string | null {
  if (file) {
    try {
      const t = readFileSync(file, 'utf8').trim();
      if (t) return t;
    } catch (err) {
      throw new InvalidArgumentError(`--token-file ${file}: cannot read it (${(err as NodeJS.ErrnoException).code})`);
    }
    throw new InvalidArgumentError(`--token-file ${file} is empty`);
  }
  return process.env[TOKEN_ENV] || null;
}

/** `models log`: the stream, oldest first, in pages, as JSON lines to the Parquet writer. */
async function exportLog(o: { name: string; out: string; redis: string; shadow: boolean }): Promise<number> {
  const redis = new Redis(o.redis, { maxRetriesPerRequest: 2 });
  const { python } = sparkPaths(false);
  const writer = spawn(python, ['-m', 'sparkring.inference_log', resolve(o.out)], { stdio: ['pipe', 'inherit', 'pipe'] });
  let stderr = '';
  writer.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const done = new Promise<number>((res) => writer.on('close', (code) => res(code ?? 1)));
  let count = 0;
  try {
    let from = '-';
    for (;;) {
      const page = (await redis.xrange(streamKey(o.name, o.shadow), from, '+', 'COUNT', 1000)) as Array<[string, string[]]>;
      for (const [id, fields] of page) {
        const entry: Record<string, string> = { stream_id: id };
        for (let i = 0; i + 1 < fields.length; i += 2) entry[fields[i] as string] = fields[i + 1] as string;
        if (!writer.stdin.write(`${JSON.stringify(entry)}\n`)) await new Promise((r) => writer.stdin.once('drain', r));
        count += 1;
      }
      if (page.length < 1000) break;
      from = `(${(page.at(-1) as [string, string[]])[0]}`;
    }
  } finally {
    writer.stdin.end();
    await redis.quit().catch(() => redis.disconnect());
  }
  if ((await done) !== 0) throw new Error(`writing ${o.out} failed: ${stderr.trim().split('\n').at(-1)}`);
  return count;
}

export function addServeCommands(program: Command, fail: (err: unknown) => never): void {
  const models = program.command('models').description('the model repository `sparkring serve` serves: versions and routing');
  models
    .command('register')
    .description('add a trained model as the next version of NAME (keeps its run, hyperparameters, metrics and signature)')
    .argument('<model>', 'a run (id, folder) with model/ in it, or a folder ctx.saveModel wrote')
    .requiredOption('--name <name>', 'the model name it is served under')
    .option('--repo <dir>', 'the model repository', DEFAULT_REPO)
    .option('--experiments <dir>', 'experiments directory, to find a run by id')
    .option('--json', 'print { name, version, dir } on stdout')
    .action(async (model: string, o: { name: string; repo: string; experiments?: string; json?: boolean }) => {
      try {
        const r = await registerModel(model, { name: o.name, repo: o.repo, experiments: o.experiments ?? DEFAULT_EXPERIMENTS() });
        process.stdout.write(o.json ? `${JSON.stringify(r)}\n` : `registered ${r.name} version ${r.version} (${r.dir})\n`);
      } catch (err) {
        fail(err);
      }
    });
  models
    .command('list')
    .description('the models in the repository, their versions and routing')
    .option('--repo <dir>', 'the model repository', DEFAULT_REPO)
    .option('--json', 'print one JSON array on stdout')
    .action((o: { repo: string; json?: boolean }) => {
      try {
        const all = listModels(o.repo);
        if (o.json) {
          process.stdout.write(`${JSON.stringify(all)}\n`);
          return;
        }
        if (all.length === 0) {
          process.stdout.write(`no models in ${resolve(o.repo)}; add one with sparkring models register RUN --name NAME\n`);
          return;
        }
        const rows = [['MODEL', 'VERSION', 'REGISTERED', 'RUN', 'METRICS', 'ROUTING']];
        for (const m of all) {
          for (const v of m.versions) {
            const metrics = Object.entries(v.metrics)
              .map(([k, x]) => `${k}=${Number(x.toPrecision(4))}`)
              .join(' ');
            rows.push([
              m.name,
              String(v.version),
              v.registeredAt.slice(0, 19),
              v.run ?? '-',
              metrics || '-',
              describeRouting(m.policy),
            ]);
          }
        }
        process.stdout.write(`${table(rows)}\n`);
      } catch (err) {
        fail(err);
      }
    });
  models
    .command('route')
    .description('how NAME routes its requests: a canary split, one version only, the newest, a shadow; which stay loaded')
    .argument('<name>', 'the model')
    .option('--repo <dir>', 'the model repository', DEFAULT_REPO)
    .option('--canary <version=percent>', 'send PERCENT of requests to VERSION, the rest to the version serving now', canaryArg)
    .option('--only <version>', 'send every request to VERSION (a promotion or a rollback)', versionArg('--only'))
    .option('--latest', 'send every request to the newest version (the default)')
    .option(
      '--shadow <version>',
      'mirror every request to VERSION too: its answer is logged, not returned',
      versionArg('--shadow'),
    )
    .option('--no-shadow', 'stop mirroring')
    .option('--pin <version>', 'keep VERSION loaded (repeatable)', (v, acc: number[]) => [...acc, versionArg('--pin')(v)], [])
    .option(
      '--unpin <version>',
      'stop keeping VERSION loaded (repeatable)',
      (v, acc: number[]) => [...acc, versionArg('--unpin')(v)],
      [],
    )
    .option('--keep <n>', 'keep the newest N versions loaded', positiveInt('--keep'))
    .option('--sticky-header <name>', 'requests with this header (or gRPC metadata) keep to one version per value')
    .option('--json', 'print the policy as JSON')
    .action(async (name: string, flags: Record<string, unknown>) => {
      try {
        const o = parseFlags(routeFlags, flags);
        const present = versionsOf(o.repo, name);
        if (present.length === 0)
          throw new ModelRepoError(`no model ${name} in ${resolve(o.repo)}; \`sparkring models list\` shows them`);
        const routings = [o.canary, o.only, o.latest].filter((x) => x !== undefined);
        if (routings.length > 1) throw new InvalidArgumentError('give one of --canary, --only and --latest');
        const policy: ModelPolicy = structuredClone(readPolicy(o.repo, name));
        if (o.canary) {
          const { version, percent } = o.canary;
          const primary = primaryOf(policy, present, version);
          if (primary === undefined) {
            throw new ModelRepoError(
              `a canary of v${version} needs another version to take the rest; ${name} has ${present.join(', ')}`,
            );
          }
          policy.routing = { kind: 'canary', weights: { [primary]: 100 - percent, [version]: percent } };
        }
        if (o.only !== undefined) policy.routing = { kind: 'only', version: o.only };
        if (o.latest) policy.routing = { kind: 'latest' };
        if (o.shadow === false) policy.shadow = null;
        else if (o.shadow !== undefined) policy.shadow = o.shadow;
        policy.pinned = [...new Set([...policy.pinned, ...o.pin])].filter((v) => !o.unpin.includes(v));
        if (o.keep !== undefined) policy.keep_latest = o.keep;
        if (o.stickyHeader) policy.sticky_header = o.stickyHeader;
        await writePolicy(o.repo, name, policy);
        process.stdout.write(o.json ? `${JSON.stringify(policy)}\n` : `${name}: ${describeRouting(policy)}\n`);
      } catch (err) {
        fail(err);
      }
    });
  models
    .command('log')
    .description("export a model's inference log (its Redis stream) to Parquet, for drift analysis in Spark")
    .argument('<name>', 'the model')
    .requiredOption('--out <file>', 'the Parquet file to write')
    .option('--log-redis <url>', 'the Redis the server logs to (or @FILE, or $SPARKRING_SERVE_REDIS)')
    .option('--shadow', "the shadow version's answers instead")
    .action(async (name: string, o: { out: string; logRedis?: string; shadow?: boolean }) => {
      try {
        const redis = secretValue('--log-redis', o.logRedis);
        if (!redis)
          throw new InvalidArgumentError('--log-redis (or $SPARKRING_SERVE_REDIS) names the Redis to read the log from');
        const n = await exportLog({ name, out: o.out, redis, shadow: Boolean(o.shadow) });
        process.stdout.write(`wrote ${n} entries of ${name}'s inference log to ${resolve(o.out)}\n`);
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('serve')
    .description('serve the model repository over the Open Inference Protocol (KServe V2): REST and gRPC')
    .option('--repo <dir>', 'the model repository', DEFAULT_REPO)
    .option('--host <addr>', 'the address to listen on', '0.0.0.0')
    .option('--http-port <port>', 'REST port (0: any free one)', nonNegativeInt('--http-port'), 8000)
    .option('--grpc-port <port>', 'gRPC port (0: any free one)', nonNegativeInt('--grpc-port'), 8001)
    .option('--workers <n>', 'serving processes on the same ports', positiveInt('--workers'), 1)
    .option(
      '--max-batch-size <rows>',
      'dynamic batching: rows one model call takes at most (1: no batching)',
      positiveInt('--max-batch-size'),
      64,
    )
    .option(
      '--max-queue-delay-ms <ms>',
      'dynamic batching: how long a request may wait for others',
      nonNegativeInt('--max-queue-delay-ms'),
      0,
    )
    .option('--max-body-mb <mb>', 'the largest request body taken', positiveInt('--max-body-mb'), 64)
    .option('--poll-ms <ms>', 'how often the repository is read besides file events', positiveInt('--poll-ms'), 1000)
    .option(
      '--drain-s <s>',
      'on SIGTERM: seconds of answering with readiness false before the listeners close',
      nonNegative('--drain-s'),
      1,
    )
    .option('--token-file <file>', `require this bearer token (or set $${TOKEN_ENV}); never on the command line`)
    .option('--tls-cert <pem>', 'serve REST and gRPC over TLS with this certificate (with --tls-key)')
    .option('--tls-key <pem>', 'the certificate key')
    .option('--log-redis <url>', 'log every answered request to this Redis (or @FILE, or $SPARKRING_SERVE_REDIS)')
    .option('--log-max-len <n>', 'entries the log stream keeps, about', positiveInt('--log-max-len'), 1_000_000)
    .addOption(
      new Option('--log-payload <what>', 'inputs and outputs in the log: in full or summarised')
        .choices(LOG_PAYLOADS)
        .default('summary'),
    )
    .addOption(
      new Option('--tf-backend <backend>', 'TensorFlow: native, wasm, cpu, or auto').choices(TF_BACKENDS).default('auto'),
    )
    .action(async (flags: Record<string, unknown>) => {
      try {
        const o = parseFlags(serveFlags, flags);
        if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) throw new InvalidArgumentError('--tls-cert and --tls-key go together');
        const repo = resolve(o.repo);
        const say = (line: string): void => void process.stderr.write(`${line}\n`);
        const { serve } = await import('../serve/cluster.js'); // the server's modules load only for `serve`
        const ready = await serve(
          {
            repo,
            host: o.host,
            httpPort: o.httpPort,
            grpcPort: o.grpcPort,
            workers: o.workers,
            maxBatchSize: o.maxBatchSize,
            maxQueueDelayMs: o.maxQueueDelayMs,
            maxBodyBytes: o.maxBodyMb * MiB,
            pollMs: o.pollMs,
            drainMs: o.drainS * 1000,
            token: tokenFrom(o.tokenFile),
            tls: o.tlsCert && o.tlsKey ? { cert: o.tlsCert, key: o.tlsKey } : null,
            logRedis: secretValue('--log-redis', o.logRedis) ?? null,
            logMaxLen: o.logMaxLen,
            logPayload: o.logPayload,
            tfBackend: o.tfBackend,
          },
          say,
          (code) => process.exit(code),
        );
        const scheme = o.tlsCert ? 'https' : 'http';
        process.stdout.write(
          `sparkring serve: ready: REST ${scheme}://${o.host}:${ready.httpPort}, gRPC ${o.host}:${ready.grpcPort}; models: ${ready.models}; repo ${repo}; ${ready.backend}; ${o.workers} worker${o.workers === 1 ? '' : 's'}\n`,
        );
      } catch (err) {
        fail(err);
      }
    });
}
