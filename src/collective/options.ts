import { z } from 'zod';
import { WIRE_PRECISIONS } from './half-precision.js';

export const TRANSPORTS = ['tcp', 'grpc'] as const;
export type Transport = (typeof TRANSPORTS)[number];

const MiB = 1024 * 1024;

/** The ring's own timeouts by default (ringTimeoutFields). */
export const RING_TIMEOUT_DEFAULTS = {
  formationTimeoutMs: 60_000,
  peerTimeoutMs: 30_000,
  collectiveTimeoutMs: 600_000,
} as const;

/**
 * The ring's timeouts, each declared once with its default: the ring's options, the worker settings
 * a run hands its workers (runtime/control.ts) and a run's options (client/jobs/options.ts) take
 * them from here.
 */
export const ringTimeoutFields = {
  /** The ring must form within this long, else the attempt fails naming the ranks not reached. */
  formationTimeoutMs: z.number().int().positive().default(RING_TIMEOUT_DEFAULTS.formationTimeoutMs),
  /** A neighbour silent for this long while a collective waits is reported as stalled. */
  peerTimeoutMs: z.number().int().positive().default(RING_TIMEOUT_DEFAULTS.peerTimeoutMs),
  /**
   * A collective that makes no progress for this long ends the attempt on every rank, naming the
   * ranks that did not arrive (alive, heartbeats coming, but never entering it).
   */
  collectiveTimeoutMs: z.number().int().positive().default(RING_TIMEOUT_DEFAULTS.collectiveTimeoutMs),
};

export const ringOptionsSchema = z
  .object({
    /** Identifies the job; peers of another job are refused. */
    jobId: z.string().min(1),
    rank: z.number().int().nonnegative(),
    worldSize: z.number().int().positive(),
    /** Retry counter of the job; peers of another attempt are refused. */
    attempt: z.number().int().nonnegative().default(0),
    /** Per-job secret that every rank proves it holds; it never crosses the wire. */
    secret: z.union([z.string().min(1), z.instanceof(Uint8Array)]),
    /** Address to bind and advertise. */
    host: z.string().min(1).default('127.0.0.1'),
    /**
     * Every rank's host as the cluster names it (by rank): errors name a peer's host with it, and the
     * ring puts the ranks of one host side by side (ring-order.ts).
     */
    hosts: z.array(z.string()).optional(),
    /** How `host` was chosen and how to choose another, for the formation error. */
    addressNote: z.string().optional(),
    /** Data plane: raw TCP (default, fastest) or the gRPC Link stream. gRPC always does the handshake. */
    transport: z.enum(TRANSPORTS).default('tcp'),
    ...ringTimeoutFields,
    /**
     * Ranks on one host send large payloads through shared memory (shared-memory.ts) instead of
     * their TCP socket; ranks on other hosts cannot, and stay on TCP. Raw TCP data plane only.
     */
    sharedMemory: z.boolean().default(true),
    /**
     * Seal every frame of the data links with AES-256-GCM (link-seal.ts): an on-path attacker can
     * neither read nor change gradients. Raw TCP data plane only.
     */
    encrypt: z.boolean().default(false),
    /**
     * Gradients on the wire (allreduceGradients, and allreduceInPlace given their name): fp32 as
     * they are, or fp16 / bf16 in half the bytes, with error feedback (half-precision.ts).
     */
    wirePrecision: z.enum(WIRE_PRECISIONS).default('fp32'),
    /** Size of the pipelined pieces of an allreduce. */
    chunkBytes: z.number().int().min(1024).default(MiB),
    /** Tensor fusion: many tensors are packed into buffers of up to this many bytes. */
    fusionThresholdBytes: z
      .number()
      .int()
      .positive()
      .default(64 * MiB),
    log: z.custom<(message: string) => void>((v) => typeof v === 'function').optional(),
  })
  .refine((o) => o.rank < o.worldSize, {
    message: 'rank must be below worldSize',
    path: ['rank'],
  })
  .refine((o) => !o.encrypt || o.transport === 'tcp', {
    message: 'encryption seals the raw TCP data plane: use transport "tcp" with encrypt',
    path: ['encrypt'],
  });

export type RingOptionsInput = z.input<typeof ringOptionsSchema>;

export type RingOptions = z.output<typeof ringOptionsSchema>;

export function parseRingOptions(input: RingOptionsInput): RingOptions {
  const parsed = ringOptionsSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`);
    throw new TypeError(`invalid ring options: ${issues.join('; ')}`);
  }
  return parsed.data;
}
