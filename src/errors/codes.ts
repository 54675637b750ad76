/**
 * The machine-readable codes of sparkring's errors, as they cross process boundaries: the ring's
 * abort frame, the worker's control `error` message and event, the task's WorkerFailure, the
 * driver's result and the client's RunError. The client decides by code (kind, whether a retry
 * can help), never by message text. spark-plugin/sparkring/error_codes.py holds the same table; a test
 * fails where the two disagree.
 */

/** What went wrong, as the client reports it: the kind sets the exit status (input: 2, interrupted: 130, else 1). */
export type ErrorKind = 'setup' | 'input' | 'slots' | 'worker' | 'spark' | 'job' | 'interrupted';

export interface CodeRule {
  kind: ErrorKind;
  /** A retry on the same cluster would fail the same way: --max-attempts does not retry it. */
  final: boolean;
}

export const ERROR_CODES = {
  // Found in a worker: its own errors and the ring's.
  SR_ENTRY_FAILED: { kind: 'worker', final: false }, // the training module threw
  SR_ENTRY_LOAD: { kind: 'input', final: true }, // the entry could not be imported, or has no default export
  SR_DATA_COLUMN: { kind: 'input', final: true }, // a --features/--label column the data does not have or cannot give
  SR_FIT_MODEL: { kind: 'input', final: true }, // ctx.fit or ctx.saveModel got a model it cannot train or save
  SR_PREDICT_MODEL: { kind: 'input', final: true }, // predict got no model it can load (no model.json, weights or signature.json)
  SR_TF_BACKEND: { kind: 'worker', final: true }, // the --tf-backend asked for cannot load here
  SR_RING_INTERFACE: { kind: 'worker', final: true }, // --ring-interface names nothing on a host
  SR_RING_FORMATION: { kind: 'worker', final: false }, // the ring did not form in time
  SR_RING_HANDSHAKE: { kind: 'worker', final: false }, // a peer refused the handshake, or was refused
  SR_PEER_LOST: { kind: 'worker', final: false }, // a ring peer died, stalled or left
  SR_FRAME_REFUSED: { kind: 'worker', final: false }, // a peer sent a frame too long for its kind
  SR_RING_INTEGRITY: { kind: 'worker', final: false }, // a sealed frame (--ring-encrypt) was changed or forged on the way
  SR_COLLECTIVE_MISMATCH: { kind: 'worker', final: false }, // ranks ran different collectives
  SR_COLLECTIVE_TIMEOUT: { kind: 'worker', final: false }, // a collective made no progress in --collective-timeout
  SR_UNEVEN_STEPS: { kind: 'worker', final: true }, // ranks took different numbers of steps
  SR_RESIZE: { kind: 'worker', final: false }, // the ranks ended their stage at an epoch's end for a larger one (--min-workers)
  SR_RING_CLOSED: { kind: 'worker', final: false }, // a collective on a closed ring
  SR_RING: { kind: 'worker', final: false }, // any other ring failure
  // Found by the task or the driver.
  SR_WORKER_EXIT: { kind: 'worker', final: false }, // the Node worker exited or was killed
  SR_HANDOFF_SPACE: { kind: 'worker', final: false }, // the partition did not fit the handoff directory
  SR_EXECUTOR_LOST: { kind: 'worker', final: false }, // Spark lost a task's executor or Python worker
  SR_WORKER_SILENT: { kind: 'worker', final: false }, // a worker still training sent no heartbeat for the timeout
  SR_PHASE_TIMEOUT: { kind: 'worker', final: false }, // a checkpoint write or a teardown outlived its deadline (runtime/phase.ts)
  SR_HOST_LOST: { kind: 'worker', final: false }, // a host of the attempt's executors stopped answering (cut off, powered off)
  SR_RUNTIME_MISSING: { kind: 'setup', final: true }, // an executor has no Node, or not the shipped runtime
  SR_EXPERIMENTS_NOT_SHARED: { kind: 'setup', final: true }, // executor hosts do not see --experiments
  SR_DATA_PATH: { kind: 'input', final: true }, // --data cannot be read by the executors
  SR_SLOTS: { kind: 'slots', final: true }, // the cluster has too few task slots for --workers
  SR_DYNAMIC_ALLOCATION: { kind: 'job', final: true }, // barrier stages refuse dynamic allocation
  SR_SEARCH: { kind: 'job', final: true }, // a search could not go on (rounds failed, client gone)
  SR_SPARK_CONNECT: { kind: 'input', final: true }, // the Python API was given a Spark Connect session older than 4.0 (no barrier mapInArrow)
  // Serving (src/serve): the repository, the server, and a request it refused.
  SR_MODEL_REPO: { kind: 'input', final: true }, // a model name, version, source or policy the repository cannot take
  SR_SERVE: { kind: 'setup', final: true }, // sparkring serve could not start (a port taken, TLS files)
  SR_INFER: { kind: 'input', final: true }, // an inference request was refused (its HTTP/gRPC status says why)
  // Safety on a shared cluster: what a run refuses to do without the caller's say-so.
  SR_UNTRUSTED_SPEC: { kind: 'input', final: true }, // experiments rerun of another user's run without --trust-spec
  SR_INSECURE_RPC: { kind: 'setup', final: true }, // --require-encryption on a cluster whose Spark RPC is not encrypted
  SR_SPARK: { kind: 'spark', final: false }, // Spark failed the job for a reason of its own
  SR_INTERRUPTED: { kind: 'interrupted', final: true }, // the user stopped the job (Ctrl-C, a kill, an aborted signal)
} as const satisfies Record<string, CodeRule>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

/** The code an error carries (a `code` of ours), else SR_ENTRY_FAILED: the training module's own throw. */
export function codeOf(err: unknown): ErrorCode {
  const code = (err as { code?: unknown } | null)?.code;
  return isErrorCode(code) ? code : 'SR_ENTRY_FAILED';
}
