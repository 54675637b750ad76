#!/usr/bin/env node
/**
 * One search trial in a fresh Node process, started by the executor's agent (src/hpo/agent.ts).
 * stdin: the trial (one JSON line), later perhaps "stop". fd 3: metrics, log lines, then the
 * result or the error. Kept lean (no zod, no Redis, tfjs only when the trial touches ctx.tf): its
 * start-up is the per-trial overhead of a search (bench hpo).
 */
import { writeSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Ring } from '../collective/ring.js';
import { type LoadedTf, loadTfSync } from '../runtime/backend.js';
import { Checkpoints } from '../runtime/checkpoint.js';
import { createContext } from '../runtime/context.js';
import { PartitionData } from '../runtime/data.js';
import { loadEntry } from '../runtime/entry.js';
import type { TrialMessage } from './protocol.js';
import { trialMetric } from './trial-metric.js';

const CONTROL_FD = 3;
const send = (m: Record<string, unknown>): void => {
  writeSync(CONTROL_FD, `${JSON.stringify(m)}\n`);
};

const stop = new AbortController();
let trial: TrialMessage | undefined;
let settled = false;
const started = new Promise<TrialMessage>((resolve) => {
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const m = JSON.parse(line) as { type: string };
    if (m.type === 'trial' && !trial) {
      trial = m as TrialMessage;
      resolve(trial);
    } else if (m.type === 'stop') stop.abort(new Error('stopped early by the search'));
  });
  // The agent is gone (its executor died): nothing may outlive it.
  lines.on('close', () => {
    if (!settled) process.exit(137);
  });
});

try {
  const t = await started;
  const train = await loadEntry(t.entry);
  const checkpoints = new Checkpoints(t.dir, 0);
  const resumedStep = t.attempt > 0 ? ((await checkpoints.load())?.reportedStep ?? 0) : 0;
  let steps = resumedStep;
  let last: number | undefined;
  /** The TensorFlow the trial loaded, once it touched ctx.tf. */
  let loaded: LoadedTf | undefined;
  const { ctx, close } = createContext({
    rank: 0,
    worldSize: 1,
    attempt: t.attempt,
    gpus: t.gpus,
    hparams: t.hparams,
    data: PartitionData.empty(),
    logdir: join(t.dir, 'tensorboard'),
    modelDir: join(t.dir, 'model'),
    tf: () => {
      loaded = loadTfSync(t.gpus, t.tfBackend);
      if (loaded.fallback) send({ type: 'log', line: `trains on pure-JS tfjs: ${loaded.fallback}` });
      return loaded.tf;
    },
    ring: Ring.solo(`${t.searchId}/${t.id}`),
    events: {
      send(type, fields) {
        if (type === 'metrics') {
          const m = fields as { step: number; metrics: Record<string, number> };
          steps = m.step;
          const v = m.metrics[t.metric];
          if (typeof v === 'number') last = v;
          send({ type, step: m.step, metrics: m.metrics });
        } else send({ type, line: fields.line });
      },
    },
    checkpoints,
    resumedStep,
    trial: { id: t.id, group: t.id, stop: stop.signal },
  });
  const trainStartAt = Date.now();
  const result = await train(ctx);
  const trainEndAt = Date.now();
  close();
  settled = true;
  send({
    type: 'result',
    result: result === undefined ? null : result,
    metric: trialMetric(result, t.metric, last),
    steps,
    stopped: stop.signal.aborted,
    backend: loaded?.backend ?? null,
    trainStartAt,
    trainEndAt,
  });
  process.exit(0);
} catch (err) {
  const e = err instanceof Error ? err : new Error(String(err));
  settled = true;
  process.stderr.write(`${e.stack ?? e.message}\n`);
  try {
    send({ type: 'error', message: `${e.name}: ${e.message}`, stack: e.stack ?? '' });
  } catch {
    // the agent is gone already
  }
  process.exit(1);
}
