#!/usr/bin/env node
/**
 * The search agent: one per executor, started by the long-lived Spark task of a search
 * (spark-plugin/sparkring/executor/search_tasks.py). It takes trials from the Redis queue one at a time, runs
 * each in a fresh Node process (src/hpo/trial.ts), keeps the trial's lease while it runs,
 * passes early-stopping requests on, and records exactly one outcome per try. It leaves when no
 * trial waits (so the executor can go back to the cluster) or when its executor is excluded.
 *
 * stdin: the agent message (one JSON line); closing it (the task is gone) ends the agent and its
 * trial. SPARKRING_CONTROL_FD: {type: 'finished', trials, excluded} or {type: 'error'}.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Redis } from 'ioredis';
import type { RunEventFields, RunEventType } from '../events/protocol.js';
import { connectRedis } from '../events/redis.js';
import { EventSender } from '../events/sender.js';
import { EventWriter } from '../experiments/tensorboard.js';
import { ControlChannel } from '../runtime/control.js';
import { type AgentMessage, agentMessage, type TrialMessage, type TrialOutcome, type TrialReport } from './protocol.js';
import { type Claim, TrialQueue } from './queue.js';
import { renewEveryMs, retryHere } from './retry-policy.js';

let current: ChildProcess | undefined;
const control = new ControlChannel(Number(process.env.SPARKRING_CONTROL_FD), () => {
  current?.kill('SIGKILL');
  process.exit(137);
});

class Agent {
  private readonly queue: TrialQueue;
  private readonly owner: string;
  private readonly events: EventSender;
  readonly ran: string[] = [];

  constructor(
    private readonly config: AgentMessage,
    private readonly redis: Redis,
  ) {
    this.queue = new TrialQueue(redis, config.searchId, config);
    this.events = EventSender.over(
      redis,
      Buffer.from(config.eventsKey, 'hex'),
      config.redis.stream,
      `executor-${config.executorId}`,
    );
    this.owner = `executor ${config.executorId} on ${config.host}`;
  }

  private event<T extends RunEventType>(type: T, fields: RunEventFields<T>): void {
    this.events.send(type, fields);
  }

  /** Runs trials until none waits; true when this executor was excluded for failing trials. */
  async run(): Promise<boolean> {
    let onlyOwnFailuresSince: number | undefined;
    for (;;) {
      await this.queue.reap();
      if (await this.queue.excluded(this.owner)) {
        this.event('trial', { stage: 'excluded', executor: this.owner, after: this.config.excludeAfter });
        return true;
      }
      const claimedAt = Date.now();
      const claim = await this.queue.claim(this.owner, retryHere(this.config, onlyOwnFailuresSince, claimedAt));
      if (claim) {
        onlyOwnFailuresSince = undefined;
        this.ran.push(claim.id);
        await this.runTrial(claim, claimedAt);
        continue;
      }
      if ((await this.queue.pendingCount()) === 0) return false;
      onlyOwnFailuresSince ??= claimedAt;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  private async runTrial(c: Claim, claimedAt: number): Promise<void> {
    const dir = join(this.config.runDir, `trial-${c.id}`);
    await mkdir(join(dir, 'logs'), { recursive: true });
    await writeFile(join(dir, 'hparams.json'), `${JSON.stringify(c.hparams, null, 2)}\n`);
    this.event('trial', { stage: 'started', id: c.id, attempt: c.attempt, executor: this.owner, hparams: c.hparams });
    const log = await open(join(dir, 'logs', 'trial.log'), 'a');
    const spawnedAt = Date.now();
    const child = spawn(process.execPath, [this.config.trialMain], {
      stdio: ['pipe', log.fd, log.fd, 'pipe'],
      env: { ...process.env, SPARKRING_EXECUTOR_ID: this.config.executorId },
    });
    current = child;
    const message: TrialMessage = {
      type: 'trial',
      searchId: this.config.searchId,
      id: c.id,
      entry: this.config.entry,
      hparams: c.hparams,
      attempt: c.attempt,
      dir,
      metric: this.config.metric,
      gpus: this.config.gpus,
      tfBackend: this.config.tfBackend,
    };
    child.stdin?.on('error', () => undefined);
    child.stdin?.write(`${JSON.stringify(message)}\n`);
    let final: TrialReport | undefined;
    let resultAt = 0;
    const reports = createInterface({ input: child.stdio[3] as NodeJS.ReadableStream });
    reports.on('line', (line) => {
      let r: TrialReport;
      try {
        r = JSON.parse(line) as TrialReport;
      } catch {
        return; // not ours: only the trial runtime writes fd 3
      }
      if (r.type === 'metrics')
        this.event('metrics', { trial: c.id, attempt: c.attempt, rank: 0, step: r.step, metrics: r.metrics });
      else if (r.type === 'log') this.event('log', { trial: c.id, rank: 0, line: r.line });
      else {
        final = r;
        resultAt = Date.now();
      }
    });
    let lost = false;
    let stopSent = false;
    const leaseRenewal = setInterval(async () => {
      try {
        if (!(await this.queue.renew(c.id, this.owner))) {
          lost = true;
          child.kill('SIGKILL');
        } else if (!stopSent && (await this.queue.stopRequested(c.id))) {
          stopSent = true;
          child.stdin?.write(`${JSON.stringify({ type: 'stop' })}\n`);
        }
      } catch {
        // Redis restarting: the lease outlives a short outage; the next tick tries again.
      }
    }, renewEveryMs(this.config));
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.on('close', (co, si) => resolve([co, si])),
    );
    clearInterval(leaseRenewal);
    current = undefined;
    await log.close();
    if (lost) {
      this.event('trial', { stage: 'lost', id: c.id, attempt: c.attempt, executor: this.owner });
      return;
    }
    const outcome = final as TrialReport | undefined;
    if (outcome?.type === 'result') {
      const record: TrialOutcome = {
        metric: outcome.metric,
        steps: outcome.steps,
        stoppedEarly: outcome.stopped,
        result: outcome.result,
        executor: this.owner,
        backend: outcome.backend ?? null,
        timings: {
          claimedAt,
          spawnedAt,
          trainStartAt: outcome.trainStartAt,
          trainEndAt: outcome.trainEndAt,
          resultAt,
          recordedAt: 0,
        },
      };
      record.timings.recordedAt = Date.now();
      if (await this.queue.complete(c.id, this.owner, record)) {
        await writeFile(
          join(dir, 'result.json'),
          `${JSON.stringify({ id: c.id, status: 'done', attempts: c.attempt + 1, ...record }, null, 2)}\n`,
        );
        endSession(dir, 'done');
        this.event('trial', {
          stage: 'done',
          id: c.id,
          attempt: c.attempt,
          executor: this.owner,
          metric: record.metric,
          steps: record.steps,
          stoppedEarly: record.stoppedEarly,
        });
      }
      return;
    }
    const error =
      outcome?.type === 'error'
        ? outcome.message
        : `its Node process ended ${signal ? `by ${signal}` : `with status ${code}`} before reporting`;
    const verdict = await this.queue.fail(c.id, this.owner, error);
    if (verdict === 'failed') {
      await writeFile(
        join(dir, 'result.json'),
        `${JSON.stringify({ id: c.id, status: 'failed', attempts: c.attempt + 1, error, executor: this.owner }, null, 2)}\n`,
      );
      endSession(dir, 'failed');
    }
    this.event('trial', {
      stage: verdict === 'requeued' ? 'requeued' : 'failed',
      id: c.id,
      attempt: c.attempt,
      executor: this.owner,
      error,
      stack: outcome?.type === 'error' ? outcome.stack : undefined,
    });
  }
}

/** The hparams plugin's session end, so TensorBoard shows how each trial ended. */
function endSession(trialDir: string, status: 'done' | 'failed'): void {
  const board = new EventWriter(join(trialDir, 'tensorboard'), '.end');
  board.sessionEnd(status === 'done' ? 'success' : 'failure');
  board.close();
}

let redis: Redis | undefined;
try {
  const a = await control.next(agentMessage);
  redis = connectRedis(a.redis, { maxRetriesPerRequest: null });
  redis.on('error', () => undefined);
  await redis.connect();
  const agent = new Agent(a, redis);
  const excluded = await agent.run();
  control.send({ type: 'finished', trials: agent.ran, excluded });
  redis.disconnect();
  process.exit(0);
} catch (err) {
  const e = err instanceof Error ? err : new Error(String(err));
  process.stderr.write(`${e.stack ?? e.message}\n`);
  current?.kill('SIGKILL');
  try {
    control.send({ type: 'error', message: `${e.name}: ${e.message}`, stack: e.stack ?? '' });
  } catch {
    // the task is gone already
  }
  redis?.disconnect();
  process.exit(1);
}
