/** `serve`'s notify part: the configured destinations, their metrics, the worker. */
import type { Logger } from 'pino';
import type { Metrics } from '../admin/metrics.js';
import { registerNotifyMetrics } from '../admin/notify-metrics.js';
import type { NotifyConfig } from '../config.js';
import type { OutboxDeliveries } from '../index/outbox-deliveries.js';
import type { ObjectStore } from '../store/object-store.js';
import { openDestinations } from './open-destinations.js';
import { NotifyWorker } from './worker.js';

/** Starts the worker; undefined when no destination is configured. */
export function startNotify(
  cfg: NotifyConfig,
  parts: {
    store: ObjectStore;
    deliveries: OutboxDeliveries;
    metrics: Metrics;
    log: Logger;
    aeTitle: string;
  },
): NotifyWorker | undefined {
  if (cfg.destinations.length === 0) return undefined;
  const destinations = openDestinations(cfg, parts.store, process.env, parts.aeTitle);
  const observer = registerNotifyMetrics(
    parts.metrics,
    destinations.map((d) => d.name),
    parts.deliveries,
  );
  const worker = new NotifyWorker({
    deliveries: parts.deliveries,
    destinations,
    maxAttempts: cfg.maxAttempts,
    batchSize: cfg.batchSize,
    concurrency: cfg.concurrency,
    leaseMs: cfg.leaseSeconds * 1000,
    pollMs: cfg.pollSeconds * 1000,
    backoff: { initialMs: cfg.backoff.initialSeconds * 1000, maxMs: cfg.backoff.maxSeconds * 1000 },
    log: parts.log,
    observer,
  });
  worker.start();
  return worker;
}
