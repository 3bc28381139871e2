/**
 * `dicom`: a C-STORE SCU (src/scu) to any AE title/host/port. One association per batch,
 * proposing for each SOP class of the batch exactly the transfer syntax its objects are stored
 * in, so nothing is transcoded (PS3.8 9.3.2.2; the stored file's own bytes go on the wire after
 * its File Meta, PS3.10 7.1). Results per instance by the C-STORE-RSP status (PS3.4 B.2.3):
 * Success or Warning (Bxxx): ok; A7xx (out of resources): retry; other failures (A9xx, Cxxx,
 * 0122, a context the peer refused): dead. No association (refused, aborted, unreachable,
 * a timeout): the whole batch is retried.
 */
import { buffer } from 'node:stream/consumers';
import { readPart10Header } from '../dicom/file-meta.js';
import { CommandField, Priority } from '../dimse/command.js';
import { RequestorAssociation } from '../scu/association.js';
import { getFromStore, type StoreLookup } from '../store/object-store.js';
import type {
  DeliveryResult,
  Destination,
  InstanceNotifyEvent,
  NotifyEvent,
} from './destination.js';
import { dead, instancesOnly, ok, retry } from './destination.js';
import type { OutboxEventType } from '../index/outbox-deliveries.js';
import { INSTANCE_EVENT_TYPES } from '../index/outbox-event.js';

export interface DicomDestinationOptions {
  name: string;
  host: string;
  port: number;
  calledAeTitle: string;
  callingAeTitle: string;
  timeoutMs: number;
  maxBatch: number;
  /** The store each event's object is in (its storeName). */
  storeFor: StoreLookup;
}

export class DicomDestination implements Destination {
  readonly type = 'dicom';
  /** Set from the configuration by open-destinations.ts. */
  events: readonly OutboxEventType[] = INSTANCE_EVENT_TYPES;
  readonly name: string;
  readonly maxBatch: number;

  constructor(private readonly o: DicomDestinationOptions) {
    this.name = o.name;
    this.maxBatch = o.maxBatch;
  }

  deliver(events: readonly NotifyEvent[], signal: AbortSignal): Promise<DeliveryResult[]> {
    return instancesOnly(events, (instances) => this.deliverInstances(instances, signal));
  }

  private async deliverInstances(
    events: readonly InstanceNotifyEvent[],
    signal: AbortSignal,
  ): Promise<DeliveryResult[]> {
    const pairs = new Map<string, { abstractSyntaxUid: string; transferSyntaxUids: string[] }>();
    for (const e of events) {
      const k = `${e.payload.sopClassUid}|${e.payload.transferSyntaxUid}`;
      pairs.set(k, {
        abstractSyntaxUid: e.payload.sopClassUid,
        transferSyntaxUids: [e.payload.transferSyntaxUid],
      });
    }
    const t = this.o.timeoutMs;
    const assoc = await RequestorAssociation.open({
      host: this.o.host,
      port: this.o.port,
      callingAeTitle: this.o.callingAeTitle,
      calledAeTitle: this.o.calledAeTitle,
      contexts: [...pairs.values()],
      timeouts: { connectMs: t, associateMs: t, responseMs: t, releaseMs: t },
    });
    const results: DeliveryResult[] = [];
    try {
      for (const e of events) {
        signal.throwIfAborted();
        results.push(await this.storeOne(assoc, e));
      }
      await assoc.release();
    } catch (err) {
      assoc.abort();
      // What was answered stays answered; the rest is retried.
      const error = err instanceof Error ? err.message : String(err);
      while (results.length < events.length) results.push(retry(error));
    }
    return results;
  }

  private async storeOne(
    assoc: RequestorAssociation,
    e: InstanceNotifyEvent,
  ): Promise<DeliveryResult> {
    const p = e.payload;
    const pc = assoc.contextFor(p.sopClassUid, p.transferSyntaxUid);
    if (!pc) return dead(`${p.sopClassUid} in ${p.transferSyntaxUid} refused by the peer`);
    let file: Buffer;
    try {
      file = await buffer(await getFromStore(this.o.storeFor, p.storeName, p.key));
    } catch (err) {
      return retry(`read ${p.key} from store ${p.storeName}: ${(err as Error).message}`);
    }
    const dataset = file.subarray(readPart10Header(file).datasetOffset);
    const rsp = await assoc.send(
      pc,
      {
        commandField: CommandField.CStoreRq,
        affectedSopClassUid: p.sopClassUid,
        affectedSopInstanceUid: p.sopInstanceUid,
        priority: Priority.Medium,
      },
      dataset,
    );
    const status = rsp.command.status ?? -1;
    if (status === 0 || (status & 0xf000) === 0xb000) return ok;
    const error = `C-STORE status 0x${status.toString(16).padStart(4, '0')}${rsp.command.errorComment ? `: ${rsp.command.errorComment}` : ''}`;
    return (status & 0xff00) === 0xa700 ? retry(error) : dead(error);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
