/**
 * The periodic sweep that writes `study.stable` events (src/index/stable-studies.ts): every
 * gateway with a study-level destination runs one; the index makes sure each quiet study is
 * announced once, whoever sweeps. It sleeps until the soonest open study comes due, at most
 * `pollMs` (a study held back by an instance pending upload, or re-opened by another gateway,
 * is seen again at the poll), and sweeps again at once when a sweep was full.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { StableStudies, StableSweep } from '../index/stable-studies.js';
import type { StableGate } from './stable-gate.js';

/** Studies announced per statement. */
const SWEEP_LIMIT = 100;
/** After the due time, so that the database's clock has passed it too. */
const DUE_SLACK_MS = 20;

export interface StableSweeperOptions {
  studies: StableStudies;
  quietMs: number;
  pollMs: number;
  log: Logger;
  /** notify.stableRequireComplete: only studies complete against the source are announced. */
  gate?: StableGate;
}

export class StableSweeper {
  private readonly stop = new AbortController();
  private loop?: Promise<void>;

  constructor(private readonly o: StableSweeperOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const signal = this.stop.signal;
    while (!signal.aborted) {
      let waitMs = this.o.pollMs;
      try {
        const sweep = await this.sweep();
        if (sweep.emitted > 0) {
          this.o.log.info(
            { event: 'notify.studies_stable', studies: sweep.emitted },
            `${sweep.emitted} stable studies announced`,
          );
        }
        if (sweep.emitted >= SWEEP_LIMIT || sweep.full) continue;
        if (sweep.nextDueMs !== undefined) {
          waitMs = Math.min(waitMs, sweep.nextDueMs + DUE_SLACK_MS);
        }
      } catch (err) {
        this.o.log.warn(
          { event: 'notify.stable_sweep_failed', err: String(err) },
          'cannot look for stable studies; trying again at the next poll',
        );
      }
      await delay(waitMs, undefined, { signal }).catch(() => {});
    }
  }

  /** One sweep; with a gate, the due studies are checked first and only those complete go. */
  private async sweep(): Promise<StableSweep & { full?: boolean }> {
    const { studies, quietMs, gate } = this.o;
    if (!gate) return studies.emitStableStudies(quietMs, SWEEP_LIMIT);
    const due = await studies.dueStableStudies(quietMs, SWEEP_LIMIT);
    const ready = await gate.ready(due);
    const sweep = await studies.emitStableStudies(quietMs, SWEEP_LIMIT, ready);
    return { ...sweep, full: due.length >= SWEEP_LIMIT };
  }
}
