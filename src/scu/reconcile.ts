/**
 * The reconcile job of `serve` (config `reconcile`, off by default): every intervalMinutes, the
 * same backfill run as `dicom-gateway backfill --days windowDays` (src/scu/backfill.ts) against
 * one source, received by this gateway's own SCP. Rounds never overlap (one loop); of several
 * gateways on one database only one runs a round at a time (a session advisory lock,
 * BackfillRuns.lockReconcile; the others count it as skipped). close() aborts a round in flight:
 * its moves are cancelled (C-CANCEL) and its run is recorded as interrupted, so the next round
 * of the same window (here or on another gateway) resumes it.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Metrics } from '../admin/metrics.js';
import {
  registerReconcileMetrics,
  type ReconcileObserver,
  type ReconcileResult,
} from '../admin/reconcile-metrics.js';
import type { Config } from '../config.js';
import type { InstanceIndex } from '../index/instance-index.js';
import { runBackfill } from './backfill.js';
import type { ReconcileConfig } from './reconcile-config.js';
import type { SharedSource } from './source-access.js';
import { lastDays } from './windows.js';

export interface ReconcileOptions {
  cfg: ReconcileConfig & { source: string };
  /** Our own AE title: the move destination. */
  aeTitle: string;
  index: InstanceIndex;
  source: SharedSource;
  observer: ReconcileObserver;
  log: Logger;
}

/** Starts the job `reconcile` configures; undefined when it is not enabled. */
export function startReconcile(
  cfg: Config,
  parts: {
    index: InstanceIndex;
    metrics: Metrics;
    sources: (ae: string, timeoutMs: number) => SharedSource;
    log: Logger;
  },
): ReconcileJob | undefined {
  const r = cfg.reconcile;
  if (!r.enabled || r.source === undefined) return undefined;
  const job = new ReconcileJob({
    cfg: { ...r, source: r.source },
    aeTitle: cfg.dicom.aeTitle,
    index: parts.index,
    source: parts.sources(r.source, r.timeoutSeconds * 1000),
    observer: registerReconcileMetrics(parts.metrics),
    log: parts.log.child({ component: 'reconcile' }),
  });
  job.start();
  return job;
}

export class ReconcileJob {
  private readonly stop = new AbortController();
  private loop?: Promise<void>;

  constructor(private readonly o: ReconcileOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  /**
   * Stops the loop; a round in flight is cancelled (C-CANCEL) and recorded as interrupted. A source
   * that goes on with its move regardless is waited for at most `waitMs`: then the round is left
   * as it is (its run, still unfinished in the index, is resumed all the same).
   */
  async close(waitMs = 30_000): Promise<void> {
    this.stop.abort();
    const ended = await Promise.race([
      this.loop?.then(() => true),
      delay(waitMs, false, { ref: false }),
    ]);
    if (ended === false) {
      this.o.log.warn(
        { event: 'reconcile.close_timeout', waitMs },
        'the reconcile round did not end after its moves were cancelled; not waiting for it',
      );
    }
  }

  private async run(): Promise<void> {
    const signal = this.stop.signal;
    let waitMs = this.o.cfg.firstRunAfterSeconds * 1000;
    for (;;) {
      await delay(waitMs, undefined, { signal }).catch(() => {});
      if (signal.aborted) return;
      const t0 = Date.now();
      await this.round();
      waitMs = Math.max(0, this.o.cfg.intervalMinutes * 60_000 - (Date.now() - t0));
    }
  }

  /** One round; never throws (the outcome is logged and counted). */
  async round(): Promise<ReconcileResult> {
    const { cfg, log, observer } = this.o;
    const source = cfg.source;
    let lock: { release(): Promise<void> } | undefined;
    try {
      lock = await this.o.index.lockReconcile(source);
    } catch (err) {
      return this.failed(err);
    }
    if (!lock) {
      log.info(
        { event: 'reconcile.skipped', source },
        `another gateway is reconciling against ${source}`,
      );
      observer.round('skipped');
      return 'skipped';
    }
    const window = lastDays(cfg.windowDays);
    const t0 = Date.now();
    let moved = 0;
    try {
      log.info(
        { event: 'reconcile.started', source, from: window.from, to: window.to },
        `reconciling ${window.from}..${window.to} against ${source}`,
      );
      const outcome = await this.o.source.with((pool) =>
        runBackfill({
          ...window,
          sourceAe: source,
          pool,
          index: this.o.index,
          destination: this.o.aeTitle,
          deep: cfg.deep,
          dryRun: false,
          maxResults: cfg.maxResults,
          findTimeoutMs: cfg.timeoutSeconds * 1000,
          signal: this.stop.signal,
          log,
          onStudy: (r) => {
            moved += r.moved;
            if (r.moved > 0) observer.moved(r.moved);
          },
        }),
      );
      const count = (o: string): number => outcome.studies.filter((s) => s.outcome === o).length;
      const incomplete = count('failed');
      const result = incomplete === 0 && outcome.unlisted.length === 0 ? 'complete' : 'incomplete';
      log[result === 'complete' ? 'info' : 'warn'](
        {
          event: 'reconcile.finished',
          source,
          result,
          run: outcome.run?.id,
          resumed: outcome.resumed,
          studies: outcome.studies.length,
          complete: count('complete'),
          backfilled: count('backfilled'),
          incomplete,
          unlistedWindows: outcome.unlisted.length,
          instancesMoved: moved,
          seconds: (Date.now() - t0) / 1000,
        },
        `reconcile against ${source}: ${outcome.studies.length} studies, ${moved} instances moved, ${incomplete} incomplete`,
      );
      observer.round(result, incomplete);
      return result;
    } catch (err) {
      if (this.stop.signal.aborted) {
        log.info(
          { event: 'reconcile.interrupted', source, instancesMoved: moved },
          'reconcile round interrupted by shutdown; the next round resumes it',
        );
        observer.round('interrupted');
        return 'interrupted';
      }
      return this.failed(err);
    } finally {
      await lock.release().catch(() => {});
    }
  }

  private failed(err: unknown): ReconcileResult {
    const message = err instanceof Error ? err.message : String(err);
    this.o.log.error(
      { event: 'reconcile.failed', source: this.o.cfg.source, err: message },
      `reconcile round failed: ${message}`,
    );
    this.o.observer.round('failed');
    return 'failed';
  }
}
