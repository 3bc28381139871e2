/**
 * A notify destination: something told about instances now in the object store (the cloud
 * Orthanc through its import plugin, an Orthanc's REST API, a webhook). Each type is its own
 * small strategy behind this one interface; the worker (./worker.ts) knows none of them.
 */
import type { OutboxEventType, TypedEvent } from '../index/outbox-deliveries.js';
import { isInstanceEventType } from '../index/outbox-event.js';

/** What a destination sees of one claimed delivery: the event, its id and type. */
export type NotifyEvent = TypedEvent & { eventId: number };
/** An instance event (instance.stored, instance.replaced): an object in the store. */
export type InstanceNotifyEvent = Extract<NotifyEvent, { payload: { key: string } }>;

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
  /** The event types it is given (notify.destinations[].events); the worker claims only these. */
  readonly events: readonly OutboxEventType[];
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

/**
 * For destinations that deliver instances (objects): the instance events of a batch go to
 * `deliver`, any other is ok at once (such a destination is not given study events: the
 * configuration refuses `study.stable` for it). Results come back in the batch's order.
 */
export async function instancesOnly(
  events: readonly NotifyEvent[],
  deliver: (events: InstanceNotifyEvent[]) => Promise<DeliveryResult[]>,
): Promise<DeliveryResult[]> {
  const instances = events.filter((e): e is InstanceNotifyEvent => isInstanceEventType(e.type));
  if (instances.length === events.length) return deliver(instances);
  const results = instances.length > 0 ? await deliver(instances) : [];
  let i = 0;
  return events.map((e) => (isInstanceEventType(e.type) ? (results[i++] ?? ok) : ok));
}
