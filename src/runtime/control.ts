/**
 * The control channel between the Spark task (Python) and this worker: JSON lines from the task
 * on stdin, JSON lines to the task on the fd named by SPARKRING_CONTROL_FD. When stdin ends the
 * task is gone, and so is this worker: nothing outlives its Spark task.
 */
import { writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { z } from 'zod';
import { WIRE_PRECISIONS } from '../collective/half-precision.js';
import { ringTimeoutFields } from '../collective/options.js';
import { TF_BACKENDS } from './backend.js';

/** The run's Redis stream as the task hands it to a worker or an agent. */
export const redisEndpointMessage = z.object({ url: z.string(), stream: z.string(), ca: z.string().nullable().optional() });

/** ctx.resized: the ring's size in the stage before this one, this one's, and why it changed. */
export const resizedSchema = z.object({ from: z.number().int(), to: z.number().int(), why: z.string() });
export type Resized = z.infer<typeof resizedSchema>;

/**
 * The settings a run gives its workers as they are (the spec's `worker`, client/jobs/job-spec.ts): the
 * task passes them on in `init` untouched, so a setting only the worker reads is declared here alone.
 */
export const workerSettingsSchema = z.object({
  /** --ring-interface: an interface name or a subnet (runtime/ring-address.ts); null: the executor's address. */
  ringInterface: z.string().nullable(),
  ...ringTimeoutFields,
  /**
   * --ring-encrypt: seal the ring's frames (collective/link-seal.ts). null: as the cluster's Spark RPC
   * (spark.network.crypto.enabled), which the driver reads before it starts the stage.
   */
  ringEncrypt: z.boolean().nullish(),
  /** --wire-precision: the gradients' format on the ring (collective/half-precision.ts); absent: fp32. */
  wirePrecision: z.enum(WIRE_PRECISIONS).optional(),
  /** Which TensorFlow to train on (runtime/backend.ts). */
  tfBackend: z.enum(TF_BACKENDS),
  /**
   * Set by the driver for a stage after an elastic resize (--min-workers, spark-plugin/sparkring/
   * driver/elastic.py): the size before, and why it changed. The client never writes it.
   */
  resized: resizedSchema.nullish(),
});
export type WorkerSettings = z.infer<typeof workerSettingsSchema>;

export const initMessage = z.object({
  type: z.literal('init'),
  runId: z.string(),
  entry: z.string(),
  rank: z.number().int().nonnegative(),
  worldSize: z.number().int().positive(),
  attempt: z.number().int().nonnegative(),
  secret: z.string(),
  gpus: z.array(z.string()),
  hparams: z.record(z.string(), z.unknown()),
  runDir: z.string(),
  /** The executor's host as Spark knows it: the ring's address unless ringInterface names another. */
  ringHost: z.string(),
  /** Every rank's executor host, by rank (Spark's task infos), for errors that name a peer. */
  hosts: z.array(z.string()).optional(),
  ...workerSettingsSchema.shape,
  redis: redisEndpointMessage.nullable(),
  /** base64 of an Arrow IPC stream: one batch of rows of zeros in the partition's schema (runtime/warm-up.ts). */
  rehearsal: z.string().nullish(),
});
export type InitMessage = z.infer<typeof initMessage>;

/** The worker's `result` message (runtime/main.ts), which its task passes on with the host and handoff added. */
export const workerResultFields = {
  result: z.unknown(),
  ringFormedAt: z.number(),
  /**
   * How this rank's data reached the next rank: 'shared memory' (both on one host), 'tcp' or
   * 'grpc' (the transport), 'none' for a ring of one (collective/ring.ts dataPath).
   */
  ringDataPath: z.string(),
  trainStartAt: z.number(),
  trainEndAt: z.number(),
  rows: z.number().int(),
  /** When the partition was parsed and usable here. */
  dataReadyAt: z.number(),
  tfjs: z.string(),
  /** `tensorflow 2.21.0 cpu`, `tensorflow 2.21.0 gpu`, `wasm` or `cpu` (runtime/backend.ts). */
  backend: z.string(),
  /** The intra-op threads of its TensorFlow (the task's spark.task.cpus), for native backends. */
  tfThreads: z.number().int().nullable(),
  /** The TensorFlow library the worker loaded (native only). */
  tfLibrary: z.string().nullable(),
  cudaVisibleDevices: z.string().nullable(),
};
export const workerResultMessage = z.object({ type: z.literal('result'), ...workerResultFields });
export type WorkerResultMessage = z.infer<typeof workerResultMessage>;

export const ringMessage = z.object({ type: z.literal('ring'), peers: z.array(z.string()) });

/**
 * The partition, written by the task as an Arrow IPC stream file (in shared memory when it can):
 * "chunk" after every few MiB of whole messages, "data" once the stream is complete.
 */
export const partitionMessage = z.discriminatedUnion('type', [
  z.object({ type: z.literal('chunk'), path: z.string(), end: z.number().int() }),
  z.object({ type: z.literal('data'), path: z.string(), end: z.number().int(), rows: z.number().int() }),
]);

export class ControlChannel {
  private readonly queue: unknown[] = [];
  private waiter: ((m: unknown) => void) | undefined;

  constructor(
    private readonly fd: number,
    onParentGone: () => void,
  ) {
    const rl = createInterface({ input: process.stdin });
    rl.on('line', (line) => {
      const m = JSON.parse(line) as unknown;
      const w = this.waiter;
      this.waiter = undefined;
      if (w) w(m);
      else this.queue.push(m);
    });
    rl.on('close', onParentGone);
  }

  async next<T>(schema: z.ZodType<T>): Promise<T> {
    const m = this.queue.shift() ?? (await new Promise<unknown>((resolve) => (this.waiter = resolve)));
    return schema.parse(m);
  }

  send(message: Record<string, unknown>): void {
    writeSync(this.fd, `${JSON.stringify(message)}\n`);
  }
}
