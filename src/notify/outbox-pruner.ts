/**
 * Outbox retention (`notify.retentionDays`): every hour, and once shortly after start, the
 * events written more than retentionDays ago that every destination has taken are deleted,
 * with their deliveries (OutboxDeliveries.pruneEvents). The outbox is written whether or not
 * a destination is configured, so `serve` runs this in either case. An event a destination
 * still owes (pending), or that a dead delivery keeps for `notify retry`, stays until it is
 * delivered; a destination that has fallen behind holds back the events it has not taken.
 * Several gateways on one database may prune at once: each deletes what the others left.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Metrics } from '../admin/metrics.js';
import type { OutboxDeliveries } from '../index/outbox-deliveries.js';

const DAY_MS = 86_400_000;

export interface OutboxPrunerOptions {
  outbox: Required<Pick<OutboxDeliveries, 'pruneEvents'>>;
  retentionDays: number;
  log: Logger;
  /** The first prune, after start (the start's own work first). */
  firstAfterMs?: number;
  everyMs?: number;
  /** Counts the events deleted (dicomgw_outbox_pruned_total). */
  pruned?: (events: number) => void;
}

export class OutboxPruner {
  private readonly stop = new AbortController();
  private loop?: Promise<void>;

  constructor(private readonly o: OutboxPrunerOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
  }

  /** One prune: the events written before now − retentionDays. Returns how many went. */
  async pruneOnce(): Promise<number> {
    const started = Date.now();
    const before = new Date(started - this.o.retentionDays * DAY_MS);
    const events = await this.o.outbox.pruneEvents(before);
    this.o.pruned?.(events);
    if (events > 0) {
      this.o.log.info(
        { event: 'notify.outbox_pruned', events, before, ms: Date.now() - started },
        `${events} outbox events older than ${this.o.retentionDays} days, taken by every destination, deleted`,
      );
    }
    return events;
  }

  private async run(): Promise<void> {
    const signal = this.stop.signal;
    let waitMs = this.o.firstAfterMs ?? 60_000;
    for (;;) {
      await delay(waitMs, undefined, { signal }).catch(() => {});
      if (signal.aborted) return;
      waitMs = this.o.everyMs ?? 3_600_000;
      await this.pruneOnce().catch((err: unknown) => {
        this.o.log.warn(
          { event: 'notify.outbox_prune_failed', err: String(err) },
          'cannot prune the outbox; trying again in an hour',
        );
      });
    }
  }
}

/**
 * `serve`'s retention job, with its counter; undefined when `retentionDays` is 0 or the index
 * cannot prune (then said once in the log: its outbox keeps every event).
 */
export function startOutboxPruner(
  retentionDays: number,
  outbox: OutboxDeliveries,
  metrics: Metrics,
  log: Logger,
): OutboxPruner | undefined {
  if (retentionDays === 0) return undefined;
  const prune = outbox.pruneEvents?.bind(outbox);
  if (!prune) {
    log.info(
      { event: 'notify.outbox_retention_unsupported' },
      'this index does not prune its outbox: notify.retentionDays is not applied',
    );
    return undefined;
  }
  let total = 0;
  metrics.addCounter({
    name: 'dicomgw_outbox_pruned_total',
    help: 'Outbox events deleted by the retention (notify.retentionDays), taken by every destination',
    read: () => total,
  });
  const pruner = new OutboxPruner({
    outbox: { pruneEvents: prune },
    retentionDays,
    log,
    pruned: (n) => (total += n),
  });
  pruner.start();
  return pruner;
}
