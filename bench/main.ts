#!/usr/bin/env node
/**
 * `npm run bench -- NAME [options] [--json]`: runs one benchmark and prints its figures
 * (progress on stderr; with --json exactly one JSON object on stdout).
 */
import { Command, InvalidArgumentError } from 'commander';
import { parseRate } from '../cluster/hosts.js';
import { positiveInt } from '../src/cli/args.js';
import type { HalfFormat } from '../src/collective/half-precision.js';
import { allreduceBench, DATA_PLANES, type DataPlane } from './allreduce.js';
import { chaosBench, FAULTS, type Fault, KINDS, type Kind } from './chaos.js';
import { type ChaosPhase, chaosHostsBench, HOST_FAULTS, type HostFault, PHASES } from './chaos-hosts.js';
import { connectBench } from './connect.js';
import { elasticBench, MODES, type Mode } from './elastic.js';
import { handoffBench } from './handoff.js';
import { hostsAllreduceBench } from './hosts-allreduce.js';
import { hpoBench } from './hpo.js';
import { PEER_MODELS, PEER_SYSTEMS, type PeerModel, type PeerSystem, peersBench } from './peers.js';
import { predictBench } from './predict.js';
import { retryBench } from './retry.js';
import { serveBench } from './serve.js';
import { startupBench } from './startup.js';
import { TRAIN_BACKENDS, TRAIN_MODELS, type TrainBackend, type TrainModel, trainBench } from './train.js';

const MiB = 1024 * 1024;

export function parseBytes(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(k|kib|m|mib|g|gib|b)?$/i.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`"${v}" is not a size (e.g. 4194304, 4MiB, 64k)`);
  const unit = (m[2] ?? 'b').toLowerCase()[0];
  const mult = unit === 'k' ? 1024 : unit === 'm' ? MiB : unit === 'g' ? 1024 * MiB : 1;
  const bytes = Math.round(Number(m[1]) * mult);
  if (bytes % 4 !== 0) throw new InvalidArgumentError(`${v}: the size must be a multiple of 4 bytes (float32)`);
  return bytes;
}

const list =
  <T>(parse: (s: string) => T) =>
  (v: string): T[] =>
    v.split(',').map(parse);
const oneOf =
  <T extends string>(flag: string, names: readonly T[]) =>
  (v: string): T => {
    if (!(names as readonly string[]).includes(v))
      throw new InvalidArgumentError(`${flag} takes ${names.join(', ')}, not "${v}"`);
    return v as T;
  };
const linkRate = (v: string): string => {
  try {
    parseRate(v);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return v;
};
const wireFormat = oneOf<HalfFormat>('--wire', ['fp16', 'bf16']);
const transport = (v: string): DataPlane => {
  if (!(DATA_PLANES as readonly string[]).includes(v)) {
    throw new InvalidArgumentError(`--transport takes ${DATA_PLANES.join(' or ')}, not "${v}"`);
  }
  return v as DataPlane;
};

const program = new Command('bench').description('sparkring benchmarks').showHelpAfterError();

program
  .command('allreduce')
  .description('ring allreduce bus bandwidth beside OpenMPI over TCP, plus fused vs per-tensor')
  .option('--bytes <sizes>', 'comma-separated message sizes', list(parseBytes), [4 * MiB, 16 * MiB, 64 * MiB])
  .option('--workers <counts>', 'comma-separated process counts', list(positiveInt('--workers')), [2, 3])
  .option('--iters <n>', 'timed iterations per size', positiveInt('--iters'), 10)
  .option(
    '--transport <names>',
    `data planes to measure (${DATA_PLANES.join(',')}; shm: tcp with shared memory between ranks of one host)`,
    list(transport),
    [...DATA_PLANES],
  )
  .option('--chunk-bytes <size>', 'pipelining chunk size', parseBytes)
  .option('--encrypt', 'also each raw TCP data plane with --ring-encrypt, its busbw beside the clear one (vs_clear)')
  .option('--no-anchors', 'skip the OpenMPI and iperf3 reference runs')
  .option(
    '--hosts <counts>',
    'across this many namespaced hosts (cluster/hosts.ts; needs root) instead of loopback',
    list(positiveInt('--hosts')),
  )
  .option('--link <rates>', "the hosts' link rates, as tc takes them (with --hosts)", list(linkRate), ['10gbit', '1gbit'])
  .option(
    '--wire <formats>',
    'also the ring with gradients in these 16-bit formats (fp16,bf16; --wire-precision), with --hosts: busbw counts float32 bytes, vs_fp32 beside the float32 ring',
    list(wireFormat),
    [],
  )
  .option(
    '--ranks-per-host <k>',
    'with --hosts, this many ranks on each host (dealt in turn, ring ordered by host; OpenMPI with as many)',
    positiveInt('--ranks-per-host'),
    1,
  )
  .option('--json', 'print one JSON object on stdout')
  .action(
    async (o: {
      ranksPerHost: number;
      bytes: number[];
      workers: number[];
      iters: number;
      transport: DataPlane[];
      chunkBytes?: number;
      anchors: boolean;
      encrypt?: boolean;
      hosts?: number[];
      link: string[];
      wire: HalfFormat[];
      json?: boolean;
    }) => {
      if (o.hosts) {
        if (o.hosts.some((n) => n < 2)) throw new InvalidArgumentError('--hosts takes counts of 2 or more');
        const across = await hostsAllreduceBench(
          {
            hosts: o.hosts,
            links: o.link,
            bytes: o.bytes,
            iters: o.iters,
            anchors: o.anchors,
            encrypt: o.encrypt,
            wire: o.wire,
            ranksPerHost: o.ranksPerHost,
          },
          (line) => process.stderr.write(`${line}\n`),
        );
        if (o.json) process.stdout.write(`${JSON.stringify(across)}\n`);
        else printTable(across.rows as Array<Record<string, unknown>>);
        return;
      }
      const result = await allreduceBench(
        {
          bytes: o.bytes,
          workers: o.workers,
          iters: o.iters,
          transports: o.transport,
          chunkBytes: o.chunkBytes,
          anchors: o.anchors,
          encrypt: o.encrypt,
        },
        (line) => process.stderr.write(`${line}\n`),
      );
      if (o.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      else printTable(result.rows as Array<Record<string, unknown>>);
    },
  );

const emit = (result: Record<string, unknown>, json?: boolean): void => {
  process.stdout.write(json ? `${JSON.stringify(result)}\n` : `${JSON.stringify(result, null, 2)}\n`);
};
const log = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

program
  .command('serve')
  .description(
    'inference requests/s and p50/p99 of sparkring serve (REST, gRPC, with and without batching) beside KServe and the in-process limit',
  )
  .option('--seconds <n>', 'seconds each cell is measured', positiveInt('--seconds'), 5)
  .option('--concurrency <list>', 'comma-separated concurrencies', list(positiveInt('--concurrency')), [1, 8, 64])
  .option('--no-peer', 'skip the KServe server')
  .option('--json', 'print one JSON object on stdout')
  .action(async (o: { seconds: number; concurrency: number[]; peer: boolean; json?: boolean }) => {
    emit(await serveBench(o, log), o.json);
  });

program
  .command('connect')
  .description('sparkring.allreduce over Spark Connect beside a classic session: submit to ring and wall time')
  .option('--rounds <n>', 'rounds of each (medians are reported)', positiveInt('--rounds'), 3)
  .option('--json', 'print one JSON object on stdout')
  .action(async (o: { rounds: number; json?: boolean }) => emit(await connectBench(o, log), o.json));

program
  .command('startup')
  .description('submit to ring formed, beside a no-op barrier job with one allGather')
  .option('--workers <n>', 'workers', positiveInt('--workers'), 2)
  .option('--rounds <n>', 'rounds (medians are reported)', positiveInt('--rounds'), 3)
  .option('--json', 'print one JSON object on stdout')
  .action(async (o: { workers: number; rounds: number; json?: boolean }) => emit(await startupBench(o, log), o.json));

program
  .command('peers')
  .description(
    'time to a trained model: sparkring (CLI and warm PySpark session) beside spark-tensorflow-distributor, TorchDistributor and one Keras process',
  )
  .option('--models <names>', `comma-separated (${PEER_MODELS.join(',')})`, list(oneOf('--models', PEER_MODELS)), [
    ...PEER_MODELS,
  ])
  .option('--systems <names>', `comma-separated (${PEER_SYSTEMS.join(',')})`, list(oneOf('--systems', PEER_SYSTEMS)), [
    ...PEER_SYSTEMS,
  ])
  .option('--workers <n>', 'workers of the distributed systems', positiveInt('--workers'), 2)
  .option('--rounds <n>', "rounds, systems alternating (rows are each system's median round)", positiveInt('--rounds'), 3)
  .option('--json', 'print one JSON object on stdout')
  .action(async (o: { models: PeerModel[]; systems: PeerSystem[]; workers: number; rounds: number; json?: boolean }) =>
    emit(await peersBench(o, log), o.json),
  );

program
  .command('retry')
  .description('a failed attempt to the next ring: retried in the same Spark application, beside a resubmission')
  .option('--workers <n>', 'workers', positiveInt('--workers'), 2)
  .option('--rounds <n>', 'rounds (medians are reported)', positiveInt('--rounds'), 3)
  .option('--json', 'print one JSON object on stdout')
  .action(async (o: { workers: number; rounds: number; json?: boolean }) => emit(await retryBench(o, log), o.json));

program
  .command('elastic')
  .description(
    'seconds of training a host loss costs: --min-workers (shrink, grow back) beside a retry at the same size, 3 namespaced hosts',
  )
  .option('--rounds <n>', 'rounds of each mode, alternating (medians are reported)', positiveInt('--rounds'), 1)
  .option('--epochs <n>', 'epochs of each run (the host is lost after the third)', positiveInt('--epochs'), 16)
  .option('--epoch-ms <n>', 'pause at each epoch end, a stand-in for an epoch of work', positiveInt('--epoch-ms'), 1000)
  .option(
    '--worker-timeout-s <n>',
    "the master's spark.worker.timeout: how soon a lost host's cores are free for replacements",
    positiveInt('--worker-timeout-s'),
    60,
  )
  .option('--modes <names>', `comma-separated (${MODES.join(',')})`, list(oneOf('--modes', MODES)), [...MODES])
  .option('--verbose', "each run's progress after the loss, with ms since the loss")
  .option('--json', 'print one JSON object on stdout')
  .action(
    async (o: {
      rounds: number;
      epochs: number;
      epochMs: number;
      workerTimeoutS: number;
      modes: Mode[];
      verbose?: boolean;
      json?: boolean;
    }) => emit(await elasticBench(o, log), o.json),
  );

program
  .command('handoff')
  .description('rows/s from a Spark DataFrame into Node workers, beside a no-op mapInArrow')
  .option('--workers <n>', 'workers', positiveInt('--workers'), 2)
  .option('--rows <n>', 'rows', positiveInt('--rows'), 2_000_000)
  .option('--columns <n>', 'float32 columns', positiveInt('--columns'), 16)
  .option('--rounds <n>', 'rounds of each path (medians are reported)', positiveInt('--rounds'), 5)
  .option('--json', 'print one JSON object on stdout')
  .action(async (o: { workers: number; rows: number; columns: number; rounds: number; json?: boolean }) =>
    emit(await handoffBench(o, log), o.json),
  );

program
  .command('hpo')
  .description('per-trial overhead of a search (queue + fresh Node process), beside a bare node -e 0')
  .option('--trials <n>', 'trials that do nothing', positiveInt('--trials'), 24)
  .option('--executors <n>', 'executors', positiveInt('--executors'), 2)
  .option('--json', 'print one JSON object on stdout')
  .action(async (o: { trials: number; executors: number; json?: boolean }) => emit(await hpoBench(o, log), o.json));

program
  .command('chaos')
  .description(
    'runs with a random fault each (kill -9, Redis restart, SIGSTOP; with --hosts: links, whole hosts, phases): right, lost, hung, left behind',
  )
  .option('--runs <n>', 'runs', positiveInt('--runs'), 10)
  .option('--hosts', 'ctx.fit on 2 namespaced hosts x 2 workers (--min-workers 2), host faults at random phases')
  .option('--faults <names>', `faults to draw from (${FAULTS.join(',')}; with --hosts ${HOST_FAULTS.join(',')})`, list(String))
  .option('--phases <names>', `with --hosts, phases to draw from (${PHASES.join(',')})`, list(oneOf('--phases', PHASES)))
  .option('--kinds <names>', `run kinds to draw from (${KINDS.join(',')})`, list(oneOf('--kinds', KINDS)))
  .option('--records <file>', "with --hosts, append each run's record to this file as one JSON line, as the run ends")
  .option('--json', 'print one JSON object on stdout')
  .action(
    async (o: {
      runs: number;
      hosts?: boolean;
      faults?: string[];
      phases?: ChaosPhase[];
      kinds?: Kind[];
      records?: string;
      json?: boolean;
    }) => {
      const faults = o.faults?.map((f) => oneOf('--faults', o.hosts ? HOST_FAULTS : FAULTS)(f));
      const result = o.hosts
        ? await chaosHostsBench(
            { runs: o.runs, faults: faults as HostFault[] | undefined, phases: o.phases, records: o.records },
            log,
          )
        : await chaosBench({ runs: o.runs, faults: faults as Fault[] | undefined, kinds: o.kinds }, log);
      if (o.json) return emit(result, true);
      const { records: _records, ...summary } = result;
      emit(summary, false);
    },
  );

program
  .command('train')
  .description(
    'training samples/s per model, workers and TensorFlow backend, beside Keras (eager and compiled) on the same TensorFlow',
  )
  .option('--model <names>', `models (${TRAIN_MODELS.join(',')})`, list(oneOf('--model', TRAIN_MODELS)), [...TRAIN_MODELS])
  .option('--workers <counts>', 'worker counts of the native rows', list(positiveInt('--workers')), [1, 2])
  .option('--backends <names>', `backends (${TRAIN_BACKENDS.join(',')})`, list(oneOf('--backends', TRAIN_BACKENDS)), [
    ...TRAIN_BACKENDS,
  ])
  .option(
    '--rounds <n>',
    'rounds of every native configuration, the ceiling and Keras, one after the other; rows are medians, goals the median round',
    positiveInt('--rounds'),
    3,
  )
  .option('--cpu-cnn', 'also time a pure-JS CNN step (minutes)')
  .option('--json', 'print one JSON object on stdout')
  .action(
    async (o: {
      model: TrainModel[];
      workers: number[];
      backends: TrainBackend[];
      rounds: number;
      cpuCnn?: boolean;
      json?: boolean;
    }) =>
      emit(
        await trainBench({ models: o.model, workers: o.workers, backends: o.backends, rounds: o.rounds, cpuCnn: o.cpuCnn }, log),
        o.json,
      ),
  );

program
  .command('predict')
  .description('rows/s scoring a DataFrame with sparkring predict, beside predict_batch_udf running the same model in Keras')
  .option('--rows <n>', 'rows to score', positiveInt('--rows'), 1_000_000)
  .option('--executors <n>', 'executors of the embedded local Spark', positiveInt('--executors'), 2)
  .option('--json', 'print one JSON object on stdout')
  .action(async (o: { rows: number; executors: number; json?: boolean }) =>
    emit(await predictBench({ rows: o.rows, executors: o.executors }, log), o.json),
  );

function printTable(rows: Array<Record<string, unknown>>): void {
  const cols = ['impl', 'procs', 'bytes', 'time_ms', 'busbw_GBps', 'vs_mpi', 'vs_tcp_loopback', 'fused_speedup'];
  const cells = [cols, ...rows.map((r) => cols.map((c) => String(r[c] ?? '-')))];
  const widths = cols.map((_, i) => Math.max(...cells.map((row) => (row[i] as string).length)));
  for (const row of cells) process.stdout.write(`${row.map((c, i) => c.padStart(widths[i] as number)).join('  ')}\n`);
}

await program.parseAsync(process.argv);
