/** Run events: what the driver and the workers append to the run's Redis stream (see redis.ts). */

interface Base {
  source: string;
  at: number;
}

export type RunEvent =
  | (Base & { type: 'driver'; stage: string; [k: string]: unknown })
  | (Base & { type: 'heartbeat'; rank: number })
  | (Base & { type: 'done'; rank: number })
  | (Base & { type: 'log'; rank: number; line: string; trial?: string })
  | (Base & {
      type: 'metrics';
      rank: number;
      step: number;
      metrics: Record<string, number>;
      samplesPerSec?: number;
      /** Set in a search: the trial that reported (rank is then 0). */
      trial?: string;
      attempt?: number;
    })
  | (Base & {
      type: 'trial';
      stage: 'started' | 'done' | 'requeued' | 'failed' | 'lost' | 'excluded';
      id?: string;
      attempt?: number;
      executor: string;
      hparams?: Record<string, unknown>;
      metric?: number | null;
      steps?: number;
      stoppedEarly?: boolean;
      error?: string;
      after?: number;
    })
  | (Base & { type: 'ring'; rank: number; formedAt: number })
  | (Base & {
      type: 'error';
      rank: number;
      message: string;
      stack?: string;
      /** The error's name (UnevenStepsError, PeerFailedError...): the client decides by it, not by the message. */
      name?: string;
    });
