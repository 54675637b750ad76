/**
 * The messages of a search's processes (no process starts when this is imported):
 *   search task (spark-plugin/sparkring/executor/search_tasks.py) -> agent (hpo/agent.ts): the AgentMessage on stdin;
 *   agent -> trial (hpo/trial.ts): the TrialMessage on stdin, later perhaps {"type":"stop"};
 *   trial -> agent: TrialReports on fd 3 (metrics, log lines, then the result or the error);
 *   agent -> the queue: a TrialOutcome per finished try (hpo/queue.ts keeps it as the trial's result).
 */
import { z } from 'zod';
import type { TfBackendChoice } from '../runtime/backend.js';
import { redisEndpointMessage } from '../runtime/control.js';

export const agentMessage = z.object({
  type: z.literal('agent'),
  searchId: z.string(),
  entry: z.string(),
  runDir: z.string(),
  metric: z.string(),
  leaseMs: z.number().int().positive(),
  maxAttempts: z.number().int().positive(),
  excludeAfter: z.number().int().positive(),
  executorId: z.string(),
  host: z.string(),
  gpus: z.array(z.string()),
  tfBackend: z.enum(['auto', 'native', 'cpu']).default('auto'),
  trialMain: z.string(),
  redis: redisEndpointMessage,
  /** The run's events key (events/keys.ts), hex: the agent signs the entries it adds to the stream. */
  eventsKey: z.string().regex(/^[0-9a-f]{64}$/),
});
export type AgentMessage = z.infer<typeof agentMessage>;

/** What a finished try reports, and what the queue keeps as the trial's result. */
export interface TrialOutcome {
  metric: number | null;
  steps: number;
  stoppedEarly: boolean;
  result: unknown;
  executor: string;
  /** The trial's TensorFlow backend, null when it never touched ctx.tf. */
  backend: string | null;
  /** Times (ms since the epoch) of this try: claimed, process spawned, train() ran, result in, recorded. */
  timings: {
    claimedAt: number;
    spawnedAt: number;
    trainStartAt: number;
    trainEndAt: number;
    resultAt: number;
    recordedAt: number;
  };
}

export type TrialReport =
  | { type: 'metrics'; step: number; metrics: Record<string, number> }
  | { type: 'log'; line: string }
  | {
      type: 'result';
      result: unknown;
      metric: number | null;
      steps: number;
      stopped: boolean;
      /** The trial's TensorFlow backend (runtime/backend.ts), null when it never touched ctx.tf. */
      backend: string | null;
      trainStartAt: number;
      trainEndAt: number;
    }
  | { type: 'error'; message: string; stack: string };

/** What the agent sends first (src/hpo/agent.ts builds it). */
export interface TrialMessage {
  type: 'trial';
  searchId: string;
  id: string;
  entry: string;
  hparams: Record<string, unknown>;
  /** 0 for the first try of this trial (ctx.attempt, as a run's). */
  attempt: number;
  dir: string;
  metric: string;
  gpus: string[];
  /** Which TensorFlow to train on (runtime/backend.ts); wasm is not offered to trials. */
  tfBackend?: TfBackendChoice;
}
