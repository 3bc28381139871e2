/**
 * Index retention (config `retention`): every hour, and a minute after start, `serve` deletes
 * the history the index no longer needs, each kind older than its own number of days:
 * - outbox events every notify destination has taken, with their deliveries
 *   (OutboxDeliveries.pruneEvents; an event a destination still owes, or that a dead delivery
 *   keeps for `notify retry`, stays);
 * - backfill and reconcile runs that ended, with their study outcomes
 *   (BackfillRuns.pruneBackfillRuns);
 * - storage commitment transactions reported or abandoned
 *   (CommitmentTransactions.pruneCommitments).
 * Instances, studies and their counters are never touched. Several gateways on one database may
 * prune at once: each deletes what the others left. A backend without a prune keeps that kind.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import type { Metrics } from '../admin/metrics.js';
import type { RetentionConfig } from '../config.js';
import type { InstanceIndex } from './instance-index.js';

const DAY_MS = 86_400_000;

/** A kind as the log's messages name it ('outbox events'). */
const words = (kind: RetentionKind): string => kind.replace('_', ' ');

export type RetentionKind = 'outbox_events' | 'backfill_runs' | 'commitments';

/** One kind of history: how old it may get, and the prune that deletes what is older. */
export interface Retained {
  kind: RetentionKind;
  days: number;
  prune: (before: Date) => Promise<number>;
}

export interface RetentionJobOptions {
  kinds: readonly Retained[];
  log: Logger;
  /** The first prune, after start (the start's own work first). */
  firstAfterMs?: number;
  everyMs?: number;
  /** Counts what each prune deleted (dicomgw_index_pruned_total). */
  pruned?: (kind: RetentionKind, n: number) => void;
}

export class RetentionJob {
  private readonly stop = new AbortController();
  private loop?: Promise<void>;

  constructor(private readonly o: RetentionJobOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
  }

  /**
   * One prune of every kind, each older than now minus its days. Returns how many of each
   * went; a kind whose prune failed is logged and left out (the others still run).
   */
  async pruneOnce(): Promise<Partial<Record<RetentionKind, number>>> {
    const started = Date.now();
    const deleted: Partial<Record<RetentionKind, number>> = {};
    for (const k of this.o.kinds) {
      try {
        const n = await k.prune(new Date(started - k.days * DAY_MS));
        deleted[k.kind] = n;
        this.o.pruned?.(k.kind, n);
      } catch (err) {
        this.o.log.warn(
          { event: 'index.prune_failed', kind: k.kind, err: String(err) },
          `cannot prune ${words(k.kind)} older than ${k.days} days; trying again in an hour`,
        );
      }
    }
    if (Object.values(deleted).some((n) => n > 0)) {
      const what = this.o.kinds
        .filter((k) => (deleted[k.kind] ?? 0) > 0)
        .map((k) => `${deleted[k.kind]} ${words(k.kind)} older than ${k.days} days`);
      this.o.log.info(
        { event: 'index.pruned', ...deleted, ms: Date.now() - started },
        `index history deleted: ${what.join(', ')}`,
      );
    }
    return deleted;
  }

  private async run(): Promise<void> {
    const signal = this.stop.signal;
    let waitMs = this.o.firstAfterMs ?? 60_000;
    for (;;) {
      await delay(waitMs, undefined, { signal }).catch(() => {});
      if (signal.aborted) return;
      waitMs = this.o.everyMs ?? 3_600_000;
      await this.pruneOnce();
    }
  }
}

/**
 * `serve`'s retention job, with its counter; undefined when every kind is kept for good (0
 * days) or the index cannot prune any. A kind the index cannot prune is said once in the log.
 */
export function startRetention(
  cfg: RetentionConfig,
  index: InstanceIndex,
  metrics: Metrics,
  log: Logger,
): RetentionJob | undefined {
  const offered: Array<[RetentionKind, number, ((before: Date) => Promise<number>) | undefined]> = [
    ['outbox_events', cfg.outboxDays, index.pruneEvents?.bind(index)],
    ['backfill_runs', cfg.backfillRunsDays, index.pruneBackfillRuns?.bind(index)],
    [
      'commitments',
      cfg.commitmentsDays,
      index.commitments.pruneCommitments?.bind(index.commitments),
    ],
  ];
  const kinds: Retained[] = [];
  for (const [kind, days, prune] of offered) {
    if (days === 0) continue;
    if (!prune) {
      log.info(
        { event: 'index.retention_unsupported', kind },
        `this index does not prune ${words(kind)}: they are kept`,
      );
      continue;
    }
    kinds.push({ kind, days, prune });
  }
  if (kinds.length === 0) return undefined;
  const counter = new Counter({
    name: 'dicomgw_index_pruned_total',
    help: 'Rows of index history deleted by the retention (config retention), by kind',
    labelNames: ['kind'],
    registers: [metrics.registry],
  });
  // Each kind's series exists from the start: rate() and alerts see a 0.
  for (const k of kinds) counter.inc({ kind: k.kind }, 0);
  const job = new RetentionJob({
    kinds,
    log,
    pruned: (kind, n) => counter.inc({ kind }, n),
  });
  job.start();
  return job;
}
