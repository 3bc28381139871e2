/**
 * Metrics of the notify worker: counters it feeds (delivered, failed attempts, gone dead) and
 * gauges read at scrape time from the index (pending and dead per destination), all labelled
 * by destination name (a bounded set: the configured destinations).
 */
import { Counter, Gauge } from 'prom-client';
import type { OutboxDeliveries } from '../index/outbox-deliveries.js';
import type { NotifyObserver } from '../notify/worker.js';
import { withTimeout } from '../timeout.js';
import type { Metrics } from './metrics.js';

export function registerNotifyMetrics(
  metrics: Metrics,
  destinations: readonly string[],
  deliveries: Pick<OutboxDeliveries, 'deliveryCounts'>,
  collectTimeoutMs = 2_000,
): NotifyObserver {
  const registers = [metrics.registry];
  const labelNames = ['destination'] as const;
  const counter = (name: string, help: string): Counter<'destination'> => {
    const c = new Counter({ name, help, labelNames, registers });
    // Every destination's series exists from the start: rate() and alerts see a 0.
    for (const d of destinations) c.inc({ destination: d }, 0);
    return c;
  };
  const delivered = counter(
    'dicomgw_notify_delivered_total',
    'Events delivered to a notify destination',
  );
  const failed = counter(
    'dicomgw_notify_failed_total',
    'Delivery attempts that failed (retried later, or dead)',
  );
  const dead = counter(
    'dicomgw_notify_dead_total',
    'Deliveries that went dead (refused, or maxAttempts reached)',
  );
  const gauge = (name: string, help: string, pick: 'pending' | 'dead'): void => {
    new Gauge({
      name,
      help,
      labelNames,
      registers,
      async collect() {
        this.reset();
        const counts = await withTimeout(
          () => deliveries.deliveryCounts(),
          collectTimeoutMs,
          () => undefined,
        ).catch(() => undefined);
        for (const d of destinations) {
          const c = counts?.find((x) => x.destination === d);
          this.set({ destination: d }, counts ? (c?.[pick] ?? 0) : Number.NaN);
        }
      },
    });
  };
  gauge(
    'dicomgw_notify_pending',
    'Events waiting or in flight per destination (capped; NaN when the index is unreachable)',
    'pending',
  );
  gauge(
    'dicomgw_notify_dead',
    'Dead deliveries per destination, until `dicom-gateway notify retry` (NaN when the index is unreachable)',
    'dead',
  );
  return {
    delivered: (destination, n) => delivered.inc({ destination }, n),
    failed: (destination, n) => failed.inc({ destination }, n),
    dead: (destination, n) => dead.inc({ destination }, n),
  };
}
