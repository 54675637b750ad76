/**
 * Prometheus metrics of `sparkring serve` (GET /metrics): requests, failures, latency and queue
 * time, and the rows of each model call, per model and version. With --workers, each worker counts
 * its own and the primary adds them up (prom-client's AggregatorRegistry; cluster.ts).
 */
import { Counter, Histogram, Registry } from 'prom-client';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class ServeMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'sparkring_serve_requests_total',
    help: 'Inference requests answered, by model, version and protocol',
    labelNames: ['model', 'version', 'protocol'] as const,
    registers: [this.registry],
  });
  readonly failures = new Counter({
    name: 'sparkring_serve_failures_total',
    help: 'Inference requests refused or failed, by model, protocol and kind (invalid, not_found, internal...)',
    labelNames: ['model', 'protocol', 'kind'] as const,
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'sparkring_serve_request_seconds',
    help: 'Time from a request read to its answer, by model and version',
    labelNames: ['model', 'version', 'protocol'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly queue = new Histogram({
    name: 'sparkring_serve_queue_seconds',
    help: 'Time a request waited for its model call (dynamic batching), by model and version',
    labelNames: ['model', 'version'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly batchRows = new Histogram({
    name: 'sparkring_serve_batch_rows',
    help: 'Rows in each model call, by model and version',
    labelNames: ['model', 'version'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [this.registry],
  });
}
