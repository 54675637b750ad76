#!/usr/bin/env node
/**
 * The Node training worker, started by a Spark barrier task (spark-plugin/sparkring/executor/task.py).
 * Messages (runtime/control.ts): stdin from the task, the control fd to it.
 *   init (stdin) -> connect to Redis, load the entry, choose the ring address, start the ring
 *   server -> "listening" (control fd) -> load TensorFlow and rehearse Arrow's reader until "ring"
 *   (stdin: the peers)
 *   -> join the ring -> "joined" -> "chunk" ranges, then "data" (stdin: the partition file as the
 *   task writes it, sent from "ring" on) -> train(ctx) -> "result", or "error" with
 *   the error's code (src/errors/codes.ts).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { listen, PeerFailedError, type Ring, splitAddress } from '../collective/index.js';
import { codeOf } from '../errors/codes.js';
import { runKey } from '../events/keys.js';
import { EventSender } from '../events/sender.js';
import { loadTf } from './backend.js';
import { Checkpoints } from './checkpoint.js';
import { createContext } from './context.js';
import { ControlChannel, initMessage, partitionMessage, ringMessage, type WorkerResultMessage } from './control.js';
import { PartitionData } from './data.js';
import { loadEntry } from './entry.js';
import { during, phases, TEARDOWN_DEADLINE_MS } from './phase.js';
import { chooseRingAddress } from './ring-address.js';
import { withoutTurbofan } from './tiering.js';
import { warmArrowReader } from './warm-up.js';

const controlFd = Number(process.env.SPARKRING_CONTROL_FD);
if (!Number.isInteger(controlFd)) {
  process.stderr.write('sparkring runtime: started without SPARKRING_CONTROL_FD; it runs inside a Spark task\n');
  process.exit(2);
}

/** The longest a worker's heartbeats may pause while it loads TensorFlow (synchronously). */
const LOADING_TF_MS = 120_000;

let done = false;
/** The partition file the task is handing over; the task removes it, unless it died first. */
let partitionPath: string | undefined;
const control = new ControlChannel(controlFd, () => {
  if (done) return;
  process.stderr.write('sparkring runtime: the Spark task ended; stopping this worker\n');
  if (partitionPath) rmSync(partitionPath, { force: true });
  process.exit(137);
});

// Every barrier worker is handed a partition: Arrow's cold import (~80 ms) runs while the task
// starts this worker and gathers the ring, not after the partition's last range.
const arrow = import('apache-arrow');
arrow.catch(() => undefined); // awaited (and its failure reported) once the partition comes
let ring: Ring | undefined;
let events: EventSender | undefined;
let rank = -1;
let host: string | undefined;
try {
  const init = await control.next(initMessage);
  rank = init.rank;
  phases.follow((phase) => control.send({ type: 'phase', phase }));
  phases.enter('formation');
  events = await EventSender.connect(init.redis, init.secret, `worker-${rank}`, rank, init.attempt);
  const train = await loadEntry(init.entry);
  const address = chooseRingAddress(init.ringHost, init.ringInterface);
  host = address.host;
  const member = await listen({
    jobId: init.runId,
    rank,
    worldSize: init.worldSize,
    attempt: init.attempt,
    secret: runKey(init.secret, 'ring').toString('hex'),
    host: address.host,
    hosts: init.hosts,
    addressNote: address.note,
    peerTimeoutMs: init.peerTimeoutMs,
    formationTimeoutMs: init.formationTimeoutMs,
    collectiveTimeoutMs: init.collectiveTimeoutMs,
    // As NCCL_SHM_DISABLE=1 does for NCCL: the socket carries everything, even on one host.
    sharedMemory: process.env.SPARKRING_SHARED_MEMORY !== '0',
    encrypt: init.ringEncrypt === true,
    wirePrecision: init.wirePrecision ?? 'fp32',
  });
  control.send({ type: 'listening', address: member.address });
  const ringArrives = control.next(ringMessage);
  if (init.rehearsal) void warmArrowReader(arrow, Buffer.from(init.rehearsal, 'base64'), ringArrives);
  // TensorFlow loads while the ranks exchange addresses (a second at least where that goes through
  // Spark's allGather, which polls every 1 s) and the task starts moving the partition: nothing
  // waits for it until train().
  await events.busy(rank, LOADING_TF_MS);
  const tf = await loadTf(init.gpus, init.tfBackend);
  events.send('backend', {
    rank,
    backend: tf.backend,
    flavour: tf.flavour,
    threads: tf.threads ?? null,
    library: tf.library ?? null,
    fallback: tf.fallback ?? null,
  });
  if (tf.fallback) process.stderr.write(`sparkring runtime: training on pure-JS tfjs: ${tf.fallback}\n`);
  const { peers } = await ringArrives;
  // The task is moving the partition meanwhile: its ranges wait on stdin until the ring is joined.
  ring = await member.join(peers);
  const ringFormedAt = Date.now();
  control.send({ type: 'joined' });
  phases.enter('data');
  events.send('ring', { rank, formedAt: ringFormedAt });
  const nextRange = async () => {
    const m = await control.next(partitionMessage);
    partitionPath = m.path;
    return m;
  };
  const data = await withoutTurbofan(() => PartitionData.fromGrowingFile(nextRange, arrow));
  partitionPath = undefined; // fromGrowingFile removed it once every range was in
  const dataReadyAt = Date.now();
  const checkpoints = new Checkpoints(init.runDir, rank);
  const resumedStep = init.attempt > 0 ? ((await checkpoints.load())?.reportedStep ?? 0) : 0;
  if (init.attempt > 0) {
    await Promise.race([
      events.retractMetrics(rank, resumedStep).catch(() => 0),
      new Promise((r) => setTimeout(r, 5000).unref()),
    ]);
  }
  const { ctx, close: closeContext } = createContext({
    rank,
    worldSize: init.worldSize,
    attempt: init.attempt,
    gpus: init.gpus,
    hparams: init.hparams,
    data,
    logdir: join(init.runDir, 'tensorboard', `worker-${rank}`),
    modelDir: join(init.runDir, 'model'),
    resizeRequest: join(init.runDir, `resize-${init.attempt}`),
    resized: init.resized,
    tf: tf.tf,
    ring,
    events,
    checkpoints,
    resumedStep,
  });
  ring.markTrainStart();
  phases.enter('training');
  const trainStartAt = Date.now();
  // A failed ring ends this worker even when train() awaits something that never settles (a
  // stuck rank gets the others' collective timeout this way, instead of hanging the task).
  const formed = ring;
  const ringFailed = new Promise<never>((_, reject) => formed.onFailure(reject));
  ringFailed.catch(() => undefined);
  const result = await Promise.race([train(ctx), ringFailed]);
  const trainEndAt = Date.now();
  closeContext();
  phases.enter('result');
  await ring.finish();
  done = true;
  const message: WorkerResultMessage = {
    type: 'result',
    result: result === undefined ? null : result,
    ringFormedAt,
    ringDataPath: ring.dataPath,
    trainStartAt,
    trainEndAt,
    rows: ctx.data.numRows,
    dataReadyAt,
    tfjs: tf.flavour,
    backend: tf.backend,
    tfThreads: tf.threads ?? null,
    tfLibrary: tf.library ?? null,
    cudaVisibleDevices: process.env.CUDA_VISIBLE_DEVICES ?? null,
  };
  control.send(message);
  events.send('done', { rank });
  const closing = [ring, events];
  // The result is out: a close that hangs (a stream to a Redis that went away) delays nothing past the deadline.
  await during('teardown', TEARDOWN_DEADLINE_MS, () => Promise.all(closing.map((c) => c.close()))).catch((err: Error) =>
    process.stderr.write(`sparkring runtime: ${err.message}; exiting with the result sent\n`),
  );
  process.exit(0);
} catch (err) {
  const e = err instanceof Error ? err : new Error(String(err));
  done = true;
  // A lost peer is a consequence: give the worker that failed first the time to be the one
  // Spark reports (Spark ends this task as soon as it does).
  const code = codeOf(e);
  const phase = phases.current;
  if (code === 'SR_PEER_LOST') await new Promise((r) => setTimeout(r, 3000));
  events?.send('error', { rank, name: e.name, code, message: `${e.name}: ${e.message}`, stack: e.stack, phase });
  events?.send('done', { rank });
  process.stderr.write(`${e.stack ?? e.message}\n`);
  try {
    // A lost ring peer, for the driver's next stage (elastic runs give up that host's workers).
    const lostPeer =
      e instanceof PeerFailedError ? { rank: e.peerRank, host: e.peerHost ?? splitAddress(e.peerAddress).host } : undefined;
    control.send({ type: 'error', code, message: `${e.name}: ${e.message}`, stack: e.stack ?? '', lostPeer, phase, host });
  } catch {
    // the task is gone already
  }
  await ring?.close().catch(() => undefined);
  await events?.close().catch(() => undefined);
  process.exit(1);
}
