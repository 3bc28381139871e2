/**
 * A notify destination: something told about instances now in the object store (the cloud
 * Orthanc through its import plugin, an Orthanc's REST API, a webhook). Each type is its own
 * small strategy behind this one interface; the worker (./worker.ts) knows none of them.
 */
import type { Delivery } from '../index/outbox-deliveries.js';

/** What a destination sees of one claimed delivery: the event, its id and type. */
export type NotifyEvent = Pick<Delivery, 'eventId' | 'type' | 'payload'>;

/**
 * What became of one event: `ok` (done; also when the destination had it already), `retry`
 * (a fault that may pass: network, 5xx, timeout; again after a backoff), `dead` (the
 * destination refused it for good: no retry can mend it; `notify retry` re-queues it by hand).
 */
export type DeliveryResult =
  { outcome: 'ok' } | { outcome: 'retry'; error: string } | { outcome: 'dead'; error: string };

export interface Destination {
  readonly name: string;
  readonly type: string;
  /** Most events per deliver() call: 1 when the destination takes one event per request. */
  readonly maxBatch: number;
  /**
   * Delivers the events (at most maxBatch, in outbox order) and answers one result per event,
   * in the same order. May throw: every event of the batch is then a retry with that error.
   * Stops (throws) when `signal` aborts. Must tolerate an event it has seen before (delivery
   * is at least once). No error it returns may contain a secret.
   */
  deliver(events: readonly NotifyEvent[], signal: AbortSignal): Promise<DeliveryResult[]>;
  /** Releases connections. */
  close(): Promise<void>;
}

export const ok: DeliveryResult = { outcome: 'ok' };
export const retry = (error: string): DeliveryResult => ({ outcome: 'retry', error });
export const dead = (error: string): DeliveryResult => ({ outcome: 'dead', error });

/** The same result for every event of a batch (a request that failed as a whole). */
export function allOf(n: number, r: DeliveryResult): DeliveryResult[] {
  return Array.from({ length: n }, () => r);
}
