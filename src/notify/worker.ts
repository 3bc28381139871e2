/**
 * The outbox worker, started by `serve`: per destination, `concurrency` lanes each claim a
 * batch of due deliveries (FOR UPDATE SKIP LOCKED with a lease, src/index/outbox-deliveries.ts:
 * several gateways on one database share the work), deliver it, and record each event's result:
 * done, due again after a backoff with jitter (./backoff.ts), or dead after maxAttempts. A
 * destination that is down holds back only its own lanes.
 *
 * Lanes sleep until the index's LISTEN/NOTIFY says events were committed (delivery starts
 * within milliseconds) or the slow poll comes round (events not yet claimable at the wake-up,
 * retries coming due, a lost listener). A full batch is followed at once by the next claim.
 *
 * Only instances in the object store have events (the index writes `instance.stored` when the
 * object is uploaded, not when the C-STORE is answered), so nothing is announced early.
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Delivery, OutboxDeliveries } from '../index/outbox-deliveries.js';
import { backoffDelayMs, type BackoffOptions } from './backoff.js';
import type { DeliveryResult, Destination } from './destination.js';
import type { StableSweeper } from './stable-sweeper.js';
import { Wakeup } from './wakeup.js';

/** Retry times an idle lane keeps to wake for; beyond them the poll finds the rest. */
const MAX_TRACKED_RETRIES = 1000;

export interface NotifyObserver {
  delivered(destination: string, n: number): void;
  /** Attempts that failed (each retry and each final failure). */
  failed(destination: string, n: number): void;
  dead(destination: string, n: number): void;
}

export interface NotifyWorkerOptions {
  deliveries: OutboxDeliveries;
  destinations: readonly Destination[];
  maxAttempts: number;
  batchSize: number;
  concurrency: number;
  leaseMs: number;
  pollMs: number;
  backoff: BackoffOptions;
  log: Logger;
  observer?: NotifyObserver;
  /** Claimer id; default host:pid:random. */
  owner?: string;
  /** Writes study.stable events; started and closed with the worker. */
  sweeper?: StableSweeper;
}

export class NotifyWorker {
  private readonly stop = new AbortController();
  private readonly wakeups = new Map<string, Wakeup>();
  private readonly lanes: Array<Promise<void>> = [];
  private unsubscribe?: () => void;
  readonly owner: string;

  constructor(private readonly o: NotifyWorkerOptions) {
    this.owner = o.owner ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  }

  start(): void {
    for (const d of this.o.destinations) this.wakeups.set(d.name, new Wakeup());
    this.unsubscribe = this.o.deliveries.onOutbox(() => {
      for (const w of this.wakeups.values()) w.ring();
    });
    for (const d of this.o.destinations) {
      for (let i = 0; i < this.o.concurrency; i++) this.lanes.push(this.lane(d));
    }
    this.o.sweeper?.start();
    this.o.log.info(
      {
        event: 'notify.started',
        destinations: this.o.destinations.map((d) => `${d.name} (${d.type})`),
        owner: this.owner,
      },
      `notify worker delivering to ${this.o.destinations.length} destination(s)`,
    );
  }

  /**
   * Stops claiming, aborts deliveries in flight (their events are made due again at once, so a
   * restart or another gateway takes them without waiting for the lease), and waits for the
   * lanes at most `graceMs`. Then closes the destinations. Idempotent.
   */
  async close(graceMs: number): Promise<void> {
    if (this.stop.signal.aborted) return;
    this.unsubscribe?.();
    this.stop.abort();
    const sweeper = this.o.sweeper?.close();
    for (const w of this.wakeups.values()) w.ring();
    const cancel = new AbortController();
    await Promise.race([
      Promise.allSettled(this.lanes),
      delay(graceMs, undefined, { signal: cancel.signal }).catch(() => {}),
    ]);
    cancel.abort();
    await sweeper;
    await Promise.allSettled(this.o.destinations.map((d) => d.close()));
  }

  private async lane(d: Destination): Promise<void> {
    const wakeup = this.wakeups.get(d.name)!;
    const signal = this.stop.signal;
    const limit = Math.max(1, Math.min(this.o.batchSize, d.maxBatch));
    // When the retries this lane scheduled come due (pruned at each idle wait).
    let retries: number[] = [];
    while (!signal.aborted) {
      let claimed: Delivery[];
      try {
        claimed = await this.o.deliveries.claimDue({
          destination: d.name,
          limit,
          leaseMs: this.o.leaseMs,
          owner: this.owner,
          maxAttempts: this.o.maxAttempts,
          eventTypes: d.events,
        });
      } catch (err) {
        this.o.log.warn(
          { event: 'notify.claim_failed', destination: d.name, err: String(err) },
          'cannot claim outbox deliveries; trying again at the next poll',
        );
        await wakeup.wait(this.o.pollMs, signal);
        continue;
      }
      if (claimed.length === 0) {
        // Until the poll, or until the soonest retry this lane scheduled comes due.
        const now = Date.now();
        retries = retries.filter((at) => at > now);
        const untilRetry = retries.length > 0 ? Math.min(...retries) - now : this.o.pollMs;
        await wakeup.wait(Math.min(this.o.pollMs, untilRetry), signal);
        continue;
      }
      try {
        retries.push(...(await this.deliverBatch(d, claimed)));
        // Bounded: the soonest are kept; a later one is found by the poll.
        if (retries.length > MAX_TRACKED_RETRIES) {
          retries = retries.sort((a, b) => a - b).slice(0, MAX_TRACKED_RETRIES);
        }
      } catch (err) {
        // Recording the results failed (the index is down): the leases run out, the events
        // come back. Nothing was lost; wait for the index rather than spin.
        this.o.log.warn(
          { event: 'notify.record_failed', destination: d.name, err: String(err) },
          'cannot record delivery results; the events will be claimed again',
        );
        await wakeup.wait(this.o.pollMs, signal);
      }
    }
  }

  /** Delivers and records; returns when the retries it scheduled come due. */
  private async deliverBatch(d: Destination, claimed: Delivery[]): Promise<number[]> {
    const started = Date.now();
    // An event whose routing rule named other destinations is not for this one: done, unsent.
    const batch = claimed.filter(
      (b) => !('destinations' in b.payload) || (b.payload.destinations?.includes(d.name) ?? true),
    );
    if (batch.length < claimed.length) {
      await this.o.deliveries.complete(claimed.filter((b) => !batch.includes(b)).map((b) => b.id));
      if (batch.length === 0) return [];
    }
    let results: DeliveryResult[];
    try {
      results = await d.deliver(batch, this.stop.signal);
      if (results.length !== batch.length) {
        throw new Error(`${d.type} answered ${results.length} results for ${batch.length} events`);
      }
    } catch (err) {
      const error = this.stop.signal.aborted
        ? 'interrupted by shutdown'
        : err instanceof Error
          ? err.message
          : String(err);
      results = batch.map(() => ({ outcome: 'retry', error }));
    }
    const done = batch.filter((_, i) => results[i]!.outcome === 'ok').map((b) => b.id);
    if (done.length > 0) await this.o.deliveries.complete(done);
    let dead = 0;
    let failed = 0;
    const retries: number[] = [];
    for (const [i, r] of results.entries()) {
      const b = batch[i]!;
      if (r.outcome === 'ok') continue;
      failed++;
      let state: string | undefined;
      if (r.outcome === 'dead') {
        state = (await this.o.deliveries.dead(b.id, this.owner, r.error)) ? 'dead' : undefined;
      } else {
        // Shutdown: due again now (the attempt still counts); otherwise after the backoff.
        const wait = this.stop.signal.aborted ? 0 : backoffDelayMs(b.attempts, this.o.backoff);
        const retryAt = Date.now() + wait;
        state = await this.o.deliveries.fail({
          id: b.id,
          owner: this.owner,
          error: r.error,
          retryAt: new Date(retryAt),
          maxAttempts: this.o.maxAttempts,
        });
        if (state === 'pending') retries.push(retryAt);
      }
      if (state === 'dead') {
        dead++;
        this.o.log.error(
          {
            event: 'notify.dead',
            destination: d.name,
            eventId: b.eventId,
            ...(b.type === 'study.stable'
              ? { studyInstanceUid: b.payload.studyInstanceUid }
              : { sopInstanceUid: b.payload.sopInstanceUid }),
            attempts: b.attempts,
            error: r.error,
          },
          `delivery to ${d.name} is dead (dicom-gateway notify retry re-queues it)`,
        );
      }
    }
    const o = this.o.observer;
    if (done.length > 0) o?.delivered(d.name, done.length);
    if (failed > 0) o?.failed(d.name, failed);
    if (dead > 0) o?.dead(d.name, dead);
    const firstError = results.find(
      (r): r is Exclude<DeliveryResult, { outcome: 'ok' }> => r.outcome !== 'ok',
    );
    this.o.log[failed > 0 ? 'warn' : 'debug'](
      {
        event: 'notify.batch',
        destination: d.name,
        events: batch.length,
        delivered: done.length,
        failed,
        dead,
        ms: Date.now() - started,
        ...(firstError ? { error: firstError.error } : {}),
      },
      `${d.name}: ${done.length}/${batch.length} delivered`,
    );
    return retries;
  }
}
