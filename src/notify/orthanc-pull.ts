/**
 * `orthanc-pull`: tells the cloud Orthanc's import plugin (orthanc/plugin/gateway_import.py)
 * which objects to import from the bucket, a whole batch in one `POST /gateway/import
 * {"items": [...]}`. The plugin answers one result per item (orthanc/README.md), mapped here:
 *
 * - 200 (`Success`, `AlreadyStored`): ok. A repeated delivery is an `AlreadyStored`.
 * - 404 `ObjectNotFound`: retry. An event is written only once its object is in the bucket
 *   (the index's markStored), so a missing object means the plugin reads another endpoint or
 *   bucket, or a store not yet consistent: something that may pass. After maxAttempts it is dead.
 * - 413 `ObjectTooLarge`, 422 `Sha256Mismatch`, other 4xx: dead (no retry changes the object).
 * - 5xx (`S3Error`, `ImportFailed`, items not tried): retry.
 *
 * An answer without items (Orthanc's own 401, a proxy's 502, no plugin: 404) applies to every
 * event of the batch by its HTTP status (./http.ts classifyStatus).
 */
import type {
  DeliveryResult,
  Destination,
  InstanceNotifyEvent,
  NotifyEvent,
} from './destination.js';
import { allOf, dead, instancesOnly, ok, retry } from './destination.js';
import { classifyStatus, excerpt, HttpTarget, type HttpTargetOptions } from './http.js';
import type { OutboxEventType } from '../index/outbox-deliveries.js';
import { INSTANCE_EVENT_TYPES } from '../index/outbox-event.js';

/** The plugin takes at most this many items per request. */
export const PLUGIN_MAX_ITEMS = 1000;

interface ItemResult {
  httpStatus?: unknown;
  status?: unknown;
  error?: unknown;
  message?: unknown;
}

export class OrthancPullDestination implements Destination {
  readonly type = 'orthanc-pull';
  /** Set from the configuration by open-destinations.ts. */
  events: readonly OutboxEventType[] = INSTANCE_EVENT_TYPES;
  readonly maxBatch: number;
  private readonly http: HttpTarget;

  constructor(
    readonly name: string,
    http: HttpTargetOptions,
    maxBatch: number,
  ) {
    this.http = new HttpTarget(http);
    this.maxBatch = Math.min(maxBatch, PLUGIN_MAX_ITEMS);
  }

  deliver(events: readonly NotifyEvent[], signal: AbortSignal): Promise<DeliveryResult[]> {
    return instancesOnly(events, (instances) => this.deliverInstances(instances, signal));
  }

  private async deliverInstances(
    events: readonly InstanceNotifyEvent[],
    signal: AbortSignal,
  ): Promise<DeliveryResult[]> {
    const results: Array<DeliveryResult | undefined> = events.map((e) =>
      e.payload.bucket ? undefined : dead('the event names no bucket (not an s3 store)'),
    );
    const sent = events.filter((_, i) => results[i] === undefined);
    if (sent.length === 0) return results as DeliveryResult[];
    const items = sent.map((e) => ({
      bucket: e.payload.bucket,
      key: e.payload.key,
      sha256: e.payload.sha256,
    }));
    const answer = await this.http.post(
      '/gateway/import',
      JSON.stringify({ items }),
      'application/json',
      signal,
    );
    const mapped = mapImportAnswer(answer.status, answer.text, sent.length);
    let j = 0;
    return results.map((r) => r ?? mapped[j++]!);
  }

  close(): Promise<void> {
    return this.http.close();
  }
}

/** The plugin's answer to a batch of `n` items, as one result per item (pure; unit-tested). */
export function mapImportAnswer(status: number, text: string, n: number): DeliveryResult[] {
  let items: ItemResult[] | undefined;
  try {
    const body = JSON.parse(text) as { items?: unknown };
    if (Array.isArray(body.items) && body.items.length === n) items = body.items as ItemResult[];
  } catch {
    // Not the plugin's JSON: judged by the HTTP status below.
  }
  if (status === 200 && items === undefined) {
    return allOf(n, retry(`HTTP 200 without ${n} item results: ${excerpt(text)}`));
  }
  if (items === undefined) {
    const whole = `HTTP ${status}: ${excerpt(text)}`;
    return allOf(n, classifyStatus(status) === 'dead' ? dead(whole) : retry(whole));
  }
  return items.map(mapItem);
}

function mapItem(item: ItemResult): DeliveryResult {
  const status = typeof item.httpStatus === 'number' ? item.httpStatus : 0;
  if (status === 200) return ok;
  const what = [item.error, item.message].filter((x) => typeof x === 'string').join(': ');
  const error = `import ${status || 'without httpStatus'}${what ? ` ${what}` : ''}`;
  // See the header: a missing object may still appear; other 4xx are final.
  if (status === 404 || status >= 500 || status === 0) return retry(error);
  return dead(error);
}
