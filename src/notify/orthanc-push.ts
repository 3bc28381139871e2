/**
 * `orthanc-push`: POSTs each object, read as stored from the store its event names, to an
 * Orthanc's REST `POST /instances` (the way for an fs store, or an Orthanc without the import
 * plugin). One request per instance (Orthanc takes one file per request); the worker runs
 * several batches at once. Orthanc answers 200 with `"Status": "Success"` or `"AlreadyStored"`
 * (a repeated delivery): ok. 400 (not DICOM to Orthanc): dead. Others by ./http.ts
 * classifyStatus.
 */
import { buffer } from 'node:stream/consumers';
import { getFromStore, type StoreLookup } from '../store/object-store.js';
import type {
  DeliveryResult,
  Destination,
  InstanceNotifyEvent,
  NotifyEvent,
} from './destination.js';
import { dead, instancesOnly, ok, retry } from './destination.js';
import { classifyStatus, excerpt, HttpTarget, type HttpTargetOptions } from './http.js';
import type { OutboxEventType } from '../index/outbox-deliveries.js';
import { INSTANCE_EVENT_TYPES } from '../index/outbox-event.js';

/** Instances per deliver() call; each is its own request. */
const PUSH_BATCH = 8;

export class OrthancPushDestination implements Destination {
  readonly type = 'orthanc-push';
  /** Set from the configuration by open-destinations.ts. */
  events: readonly OutboxEventType[] = INSTANCE_EVENT_TYPES;
  readonly maxBatch = PUSH_BATCH;
  private readonly http: HttpTarget;

  constructor(
    readonly name: string,
    http: HttpTargetOptions,
    /** The store each event's object is in (its storeName). */
    private readonly storeFor: StoreLookup,
  ) {
    this.http = new HttpTarget(http);
  }

  deliver(events: readonly NotifyEvent[], signal: AbortSignal): Promise<DeliveryResult[]> {
    return instancesOnly(events, (instances) => this.deliverInstances(instances, signal));
  }

  private async deliverInstances(
    events: readonly InstanceNotifyEvent[],
    signal: AbortSignal,
  ): Promise<DeliveryResult[]> {
    const results: DeliveryResult[] = [];
    for (const e of events) {
      signal.throwIfAborted();
      results.push(await this.pushOne(e, signal));
    }
    return results;
  }

  private async pushOne(e: InstanceNotifyEvent, signal: AbortSignal): Promise<DeliveryResult> {
    let bytes: Buffer;
    try {
      bytes = await buffer(await getFromStore(this.storeFor, e.payload.storeName, e.payload.key));
    } catch (err) {
      // The store down, not configured, or the object gone: the store may come back (retry;
      // dead after maxAttempts).
      const { storeName, key } = e.payload;
      return retry(`read ${key} from store ${storeName}: ${(err as Error).message}`);
    }
    const answer = await this.http.post('/instances', bytes, 'application/dicom', signal);
    if (answer.status === 200) return ok;
    const error = `POST /instances: HTTP ${answer.status}: ${excerpt(answer.text)}`;
    if (answer.status === 400) return dead(error);
    return classifyStatus(answer.status) === 'dead' ? dead(error) : retry(error);
  }

  close(): Promise<void> {
    return this.http.close();
  }
}
