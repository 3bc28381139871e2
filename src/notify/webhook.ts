/**
 * `webhook`: POSTs the events of a batch as one JSON document,
 * `{"events": [{"id", "type", ...the InstanceStoredEvent}]}`, to the url. Any 2xx: every event
 * is ok; otherwise the whole batch by ./http.ts classifyStatus. The receiver must tolerate an
 * event twice (`id` is the outbox event id, the same on every delivery of that event).
 */
import type { DeliveryResult, Destination, NotifyEvent } from './destination.js';
import { allOf, dead, ok, retry } from './destination.js';
import { classifyStatus, excerpt, HttpTarget, type HttpTargetOptions } from './http.js';
import type { OutboxEventType } from '../index/outbox-deliveries.js';
import { INSTANCE_EVENT_TYPES } from '../index/outbox-event.js';

export class WebhookDestination implements Destination {
  readonly type = 'webhook';
  /** Set from the configuration by open-destinations.ts. */
  events: readonly OutboxEventType[] = INSTANCE_EVENT_TYPES;
  private readonly http: HttpTarget;

  constructor(
    readonly name: string,
    http: HttpTargetOptions,
    readonly maxBatch: number,
  ) {
    this.http = new HttpTarget(http);
  }

  async deliver(events: readonly NotifyEvent[], signal: AbortSignal): Promise<DeliveryResult[]> {
    const body = JSON.stringify({
      events: events.map((e) => ({ id: e.eventId, type: e.type, ...e.payload })),
    });
    const answer = await this.http.post('', body, 'application/json', signal);
    const verdict = classifyStatus(answer.status);
    if (verdict === 'ok') return allOf(events.length, ok);
    const error = `HTTP ${answer.status}: ${excerpt(answer.text)}`;
    return allOf(events.length, verdict === 'dead' ? dead(error) : retry(error));
  }

  close(): Promise<void> {
    return this.http.close();
  }
}
