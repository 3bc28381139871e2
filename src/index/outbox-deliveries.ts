/**
 * Delivery of outbox events to the notify destinations, one state per (event, destination), so
 * one destination being down holds back none of the others.
 *
 * Which events a destination gets: every event of the outbox of the types it takes
 * (ClaimRequest.eventTypes), in transaction order. The index keeps
 * a cursor per destination; each claimDue first moves up to `limit` events past that cursor into
 * delivery rows (a destination claimed for the first time starts at the oldest event the outbox
 * holds), then claims due rows. Both steps read an index range of at most `limit` rows, so a
 * claim costs O(limit) however long the outbox or the history of deliveries. An event becomes
 * claimable once every transaction that began writing before it has ended (so the cursor can
 * never pass an event still being committed); a claim that finds nothing right after a wake-up
 * may find it a moment later, which the worker's slow poll covers.
 *
 * Guarantees: several processes may claim for the same destination at once; a claimed delivery
 * is given to no other claimer until its lease runs out. A claimer that dies without an answer
 * loses its lease, and the delivery is claimed again (at least once, not exactly once: a
 * destination must tolerate an event twice). Every write here is durable.
 */
import { INSTANCE_EVENT_TYPES } from './outbox-event.js';
import type { InstanceEventType, InstanceStoredEvent } from './outbox-event.js';
import { STUDY_STABLE, type StudyStableEvent } from './study-event.js';

export type DeliveryState = 'pending' | 'done' | 'dead';

/** Every type of event the outbox holds. */
export const OUTBOX_EVENT_TYPES = [...INSTANCE_EVENT_TYPES, STUDY_STABLE] as const;
export type OutboxEventType = (typeof OUTBOX_EVENT_TYPES)[number];

/** An event's type with its payload: instance events, or a study's `study.stable`. */
export type TypedEvent =
  | { type: InstanceEventType; payload: InstanceStoredEvent }
  | { type: typeof STUDY_STABLE; payload: StudyStableEvent };

/** One event for one destination, as claimDue and listDead return it. */
export type Delivery = TypedEvent & {
  /** The delivery's own id (complete/fail/dead take it). */
  id: number;
  destination: string;
  eventId: number;
  /** When the event was written. */
  createdAt: Date;
  /** Attempts started so far, the claim that returned this one included. */
  attempts: number;
  /** The previous attempt's error, if any. */
  lastError?: string;
};

export interface ClaimRequest {
  destination: string;
  /** At most this many deliveries (also the most events enqueued by this call). */
  limit: number;
  /** How long the claim holds; after it, another claimer may take the delivery again. */
  leaseMs: number;
  /** Who claims (e.g. host:pid): fail and dead only apply to the claimer's own claims. */
  owner: string;
  /** A delivery whose lease ran out on its last allowed attempt goes to 'dead' instead. */
  maxAttempts: number;
  /**
   * The event types this destination takes (default: the instance events). The cursor passes
   * every event; only these become deliveries.
   */
  eventTypes?: readonly OutboxEventType[];
}

export interface DeliveryFailure {
  id: number;
  owner: string;
  error: string;
  /** When it becomes due again (the worker's backoff with jitter). */
  retryAt: Date;
  /** When the attempt that failed was the last allowed one, the delivery goes to 'dead'. */
  maxAttempts: number;
}

export interface DeliveryCounts {
  destination: string;
  /** Waiting or in flight, events not yet enqueued for it included; at most OUTBOX_COUNT_CAP. */
  pending: number;
  pendingCapped: boolean;
  dead: number;
}

export interface OutboxDeliveries {
  /**
   * Enqueues new events for the destination, then claims up to `limit` due deliveries (the
   * oldest first, events in id order within the batch) with a lease. Uses FOR UPDATE SKIP
   * LOCKED: concurrent claimers never receive the same delivery. Durable.
   */
  claimDue(req: ClaimRequest): Promise<Delivery[]>;
  /** Marks deliveries done (whoever claimed them: the event did arrive); returns how many changed. Durable. */
  complete(ids: readonly number[]): Promise<number>;
  /**
   * Records a failed attempt: due again at `retryAt`, or 'dead' after maxAttempts. Returns the
   * new state, or undefined when the delivery is no longer this owner's claim (its lease ran
   * out and another claimer took it, or it is done): nothing changed then. Durable.
   */
  fail(f: DeliveryFailure): Promise<DeliveryState | undefined>;
  /** A failure no retry can mend (the destination refused the event): straight to 'dead'. Same rules as fail. Durable. */
  dead(id: number, owner: string, error: string): Promise<boolean>;
  /** Dead deliveries, oldest first, of one destination or all. */
  listDead(opts: { destination?: string; limit: number }): Promise<Delivery[]>;
  /** `notify retry`: dead deliveries become due now with their attempts reset; returns how many. Durable. */
  requeueDead(destination?: string): Promise<number>;
  /** Per destination that has ever claimed: what is pending and what is dead (status, /metrics). */
  deliveryCounts(): Promise<DeliveryCounts[]>;
  /**
   * Outbox retention: deletes the events written before `before` that every destination has
   * taken (each one's cursor has passed it, none of its deliveries is pending or dead), with
   * their deliveries; returns how many events. An event a destination still owes, or that a
   * dead delivery keeps for `notify retry`, stays. Works in batches (short transactions) in id
   * order and stops at the first batch that reaches events written since `before`. Absent: the
   * backend does not prune (YDB, for now). Durable.
   */
  pruneEvents?(before: Date): Promise<number>;
  /**
   * Calls `listener` when new events may be claimable: after a transaction that wrote events
   * commits (calls may be coalesced), and each time the wake-up channel is (re)established,
   * since events may have been written while it was down. While it is down nothing is called:
   * keep a slow poll as well. Returns the unsubscribe function. A listener must not throw.
   */
  onOutbox(listener: () => void): () => void;
}
