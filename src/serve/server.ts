/**
 * One `sparkring serve` process: the model store on the repository, the inference service, the REST
 * and gRPC servers, the metrics and the inference log. `drain()` is the SIGTERM path: readiness goes
 * false first, requests go on being answered through the grace period (so a load balancer that
 * polls readiness stops sending), then the listeners close and the requests in flight finish.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { loadTf, type TfBackendChoice } from '../runtime/backend.js';
import { packageFile } from '../util/package-file.js';
import { ServeError } from './errors.js';
import { grpcCredentials, grpcServer } from './grpc.js';
import { restServer } from './http.js';
import { InferenceService } from './inference.js';
import { InferenceLog, type LogPayload } from './inference-log.js';
import { ServeMetrics } from './metrics.js';
import { ModelStore } from './model-store.js';

export interface ServeOptions {
  repo: string;
  host: string;
  httpPort: number;
  grpcPort: number;
  workers: number;
  maxBatchSize: number;
  maxQueueDelayMs: number;
  maxBodyBytes: number;
  pollMs: number;
  drainMs: number;
  token: string | null;
  tls: { cert: string; key: string } | null;
  logRedis: string | null;
  logMaxLen: number;
  logPayload: LogPayload;
  tfBackend: TfBackendChoice;
}

export interface RunningServer {
  httpPort: number;
  grpcPort: number;
  backend: string;
  models: () => string;
  metrics: ServeMetrics;
  drain: () => Promise<void>;
}

const version = (): string => (JSON.parse(readFileSync(packageFile('package.json'), 'utf8')) as { version: string }).version;

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new ServeError(
          err.code === 'EADDRINUSE' ? `port ${port} is taken: pass --http-port with a free one` : `REST listener: ${err.message}`,
        ),
      ),
    );
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

function bindGrpc(server: grpc.Server, host: string, port: number, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${port}`, creds, (err, bound) => {
      if (err) reject(new ServeError(`gRPC listener on port ${port}: ${err.message} (pass --grpc-port with a free one)`));
      else resolve(bound);
    });
  });
}

/**
 * Starts one serving process. `metricsText` gives the metrics /metrics shows: this process's own,
 * or, in a worker of --workers, every worker's summed by the primary.
 */
export async function startServer(
  o: ServeOptions,
  say: (line: string) => void,
  metricsText?: (own: ServeMetrics) => Promise<string>,
): Promise<RunningServer> {
  const tls = o.tls ? { cert: readFileSync(o.tls.cert), key: readFileSync(o.tls.key) } : null;
  const loaded = await loadTf([], o.tfBackend);
  if (loaded.fallback) say(`sparkring serve: ${loaded.fallback}`);
  const metrics = new ServeMetrics();
  const store = new ModelStore(
    o.repo,
    loaded.tf,
    { maxBatchSize: o.maxBatchSize, maxQueueDelayMs: o.maxQueueDelayMs },
    { say, onBatch: (model, v, rows) => metrics.batchRows.observe({ model, version: String(v) }, rows) },
  );
  await store.start(o.pollMs);
  let log: InferenceLog | null = null;
  if (o.logRedis) {
    const redis = new Redis(o.logRedis, { maxRetriesPerRequest: 2 });
    // Connection trouble shows in the log's own line (its first failed write); ioredis reconnects.
    redis.on('error', () => {});
    log = new InferenceLog(redis, { maxLen: o.logMaxLen, payload: o.logPayload, say });
  }
  const service = new InferenceService(store, metrics, log);
  let accepting = true;
  const common = { maxBodyBytes: o.maxBodyBytes, token: o.token, tls, version: version(), accepting: () => accepting };
  const http = restServer(service, {
    ...common,
    metricsText: () => (metricsText ? metricsText(metrics) : metrics.registry.metrics()),
  });
  const grpcs = grpcServer(service, common);
  let httpPort: number;
  let grpcPort: number;
  try {
    httpPort = await listen(http, o.host, o.httpPort);
    grpcPort = await bindGrpc(grpcs, o.host, o.grpcPort, grpcCredentials(tls));
  } catch (err) {
    http.close();
    grpcs.forceShutdown();
    store.stop();
    await log?.close();
    throw err;
  }
  const models = (): string =>
    store
      .names()
      .map(
        (n) =>
          `${n} ${
            store
              .inService(n)
              .map((v) => `v${v}`)
              .join(',') || '(loading)'
          }`,
      )
      .join('; ') || 'none yet';
  const drain = async (): Promise<void> => {
    accepting = false;
    await sleep(o.drainMs);
    const httpClosed = new Promise<void>((resolve) => http.close(() => resolve()));
    http.closeIdleConnections();
    const grpcClosed = new Promise<void>((resolve) => grpcs.tryShutdown(() => resolve()));
    const deadline = Date.now() + 30_000;
    while (service.inFlight > 0 && Date.now() < deadline) await sleep(10);
    await Promise.race([Promise.all([httpClosed, grpcClosed]), sleep(Math.max(0, deadline - Date.now()))]);
    grpcs.forceShutdown();
    http.closeAllConnections();
    store.stop();
    await log?.close();
  };
  return { httpPort, grpcPort, backend: loaded.backend, models, metrics, drain };
}
