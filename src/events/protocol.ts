/**
 * Run events: JSON lines from the driver and the workers to the client over TCP. The first line
 * of a connection carries the run's token. (Issue 4 moves this onto a Redis stream.)
 */

export interface EventsEndpoint {
  host: string;
  port: number;
  token: string;
}

interface Base {
  source: string;
  at: number;
}

export type RunEvent =
  | (Base & { type: 'driver'; stage: string; [k: string]: unknown })
  | (Base & { type: 'log'; rank: number; line: string })
  | (Base & { type: 'metrics'; rank: number; step: number; metrics: Record<string, number>; samplesPerSec?: number })
  | (Base & { type: 'ring'; rank: number; formedAt: number })
  | (Base & { type: 'error'; rank: number; message: string; stack?: string });

export const encodeEvent = (e: Record<string, unknown>): string => `${JSON.stringify(e)}\n`;
