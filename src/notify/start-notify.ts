/** `serve`'s notify part: the configured destinations, their metrics, the worker. */
import type { Logger } from 'pino';
import type { Metrics } from '../admin/metrics.js';
import { registerNotifyMetrics } from '../admin/notify-metrics.js';
import type { NotifyConfig } from '../config.js';
import type { InstanceIndex } from '../index/instance-index.js';
import type { OutboxDeliveries } from '../index/outbox-deliveries.js';
import type { StableStudies } from '../index/stable-studies.js';
import type { ObjectStore, StoreLookup } from '../store/object-store.js';
import { ArchiveDestination } from './archive.js';
import type { Destination } from './destination.js';
import { openDestinations } from './open-destinations.js';
import type { StableGate } from './stable-gate.js';
import { StableSweeper } from './stable-sweeper.js';
import { NotifyWorker } from './worker.js';

/** Starts the worker; undefined when no destination is configured. */
export function startNotify(
  cfg: NotifyConfig,
  parts: {
    /** The store an instance is in, by the store name of its row or event. */
    storeFor: StoreLookup;
    deliveries: OutboxDeliveries;
    /** Stable studies and the objects of a study (notify.archive). */
    studies: StableStudies & Pick<InstanceIndex, 'listInstances'>;
    /** The archive bucket, on the store's endpoint (notify.archive; s3 stores only). */
    openArchiveStore: (bucket: string | undefined) => ObjectStore;
    metrics: Metrics;
    log: Logger;
    aeTitle: string;
    /** notify.stableRequireComplete (stable-gate.ts). */
    gate?: StableGate | undefined;
  },
): NotifyWorker | undefined {
  if (cfg.destinations.length === 0 && !cfg.archive) return undefined;
  const destinations: Destination[] = openDestinations(
    cfg,
    parts.storeFor,
    process.env,
    parts.aeTitle,
  );
  if (cfg.archive) {
    const prefix = cfg.archive.prefix;
    destinations.push(
      new ArchiveDestination({
        name: cfg.archive.name,
        studies: parts.studies,
        storeFor: parts.storeFor,
        target: parts.openArchiveStore(cfg.archive.bucket),
        prefix: prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`,
        log: parts.log,
      }),
    );
  }
  // study.stable is written only when someone takes it.
  const sweeper = destinations.some((d) => d.events.includes('study.stable'))
    ? new StableSweeper({
        studies: parts.studies,
        quietMs: cfg.stableAfterSeconds * 1000,
        pollMs: cfg.pollSeconds * 1000,
        log: parts.log,
        gate: parts.gate,
      })
    : undefined;
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
    sweeper,
  });
  worker.start();
  return worker;
}
