import type { Logger } from 'pino';
import type { IngestObserver } from '../admin/observer.js';
import { GatewayError, isGatewayError, toDimseStatus } from '../errors.js';
import type { InstanceAttributes, InstanceRecord } from '../index/instance-index.js';
import type { AssociationInfo, StoreRequest } from '../scp/association.js';

/** Counters for the admin endpoint and the shutdown summary. */
export interface IngestStats {
  received: number;
  stored: number;
  /** Acknowledged from the spool, waiting for (or past) their upload. */
  spooled: number;
  duplicates: number;
  failed: number;
  bytes: number;
}

/**
 * One instance's outcome, told once: the counters (IngestStats), the observer (metrics) and
 * the log event (instance.stored, instance.spooled, instance.duplicate counts, instance.failed),
 * with the timings of the answer's legs.
 */
export class OutcomeReporter {
  private readonly started = process.hrtime.bigint();
  /** ms from the first byte to the end of the data set (set by commitStarted). */
  private t0 = 0;
  private logFields: Record<string, unknown> = {};
  /**
   * ack: spooled, ms from the end of the data set: the spool file durable (file and directory
   * fsynced), and the index row committed. storeMs is the longer of the two.
   */
  readonly legs: { durableMs?: number; commitMs?: number } = {};

  constructor(
    private readonly o: {
      stats: IngestStats;
      observer: IngestObserver | undefined;
      log: Logger;
      assoc: AssociationInfo;
      req: StoreRequest;
    },
  ) {}

  /** The data set has been received and its commit begins; fixes the fields every event carries. */
  commitStarted(attrs: InstanceAttributes, bytes: number): Record<string, unknown> {
    this.t0 = this.elapsedMs();
    this.logFields = {
      sopInstanceUid: attrs.sopInstanceUid,
      seriesInstanceUid: attrs.seriesInstanceUid,
      studyInstanceUid: attrs.studyInstanceUid,
      sopClassUid: attrs.sopClassUid,
      transferSyntaxUid: this.o.req.transferSyntaxUid,
      bytes,
      // PS3.7 9.3.1.1: a C-MOVE sub-operation names the move it belongs to.
      moveOriginatorAeTitle: this.o.req.moveOriginatorAeTitle,
      moveOriginatorMessageId: this.o.req.moveOriginatorMessageId,
    };
    return this.logFields;
  }

  /** ms since the C-STORE request began. */
  elapsedMs(): number {
    return Number(process.hrtime.bigint() - this.started) / 1e6;
  }

  /** ms since the end of the data set, rounded for logs. */
  sinceCommitStart(): number {
    return round(this.elapsedMs() - this.t0);
  }

  /** Answered 0000 as new; `t1`: when the store (or spool) part ended and the index began. */
  acknowledged(
    rec: InstanceRecord,
    event: 'instance.stored' | 'instance.spooled',
    t1: number,
  ): void {
    const { stats, observer, log, assoc } = this.o;
    if (event === 'instance.stored') {
      stats.stored++;
      stats.bytes += rec.size;
    } else {
      stats.spooled++;
    }
    const now = this.elapsedMs();
    observer?.stored({
      callingAeTitle: assoc.callingAeTitle,
      sopClassUid: rec.attributes.sopClassUid,
      modality: rec.attributes.modality,
      bytes: rec.size,
      seconds: now / 1000,
      acknowledged: event === 'instance.spooled' ? 'spooled' : 'stored',
    });
    log.info(
      {
        event,
        ...this.logFields,
        key: rec.objectKey,
        ms: round(now),
        receiveMs: round(this.t0),
        storeMs: round(t1 - this.t0),
        indexMs: round(now - t1),
        ...this.legs,
      },
      event === 'instance.stored' ? 'instance stored' : 'instance spooled',
    );
  }

  /** Answered 0000 without a new object (the duplicate policy logs its own event). */
  duplicate(rec: InstanceRecord, identical: boolean): void {
    this.o.stats.duplicates++;
    this.o.observer?.duplicate({
      callingAeTitle: this.o.assoc.callingAeTitle,
      sopClassUid: rec.attributes.sopClassUid,
      modality: rec.attributes.modality,
      identical,
    });
  }

  /** Refused or failed: counted, observed, logged; returns the status to answer. */
  failed(e: GatewayError, datasetBytes: number): number {
    const { stats, observer, log, assoc, req } = this.o;
    stats.failed++;
    // A resolver's refusal carries its own status (GatewayError.status).
    const status = toDimseStatus(e);
    observer?.failed({
      callingAeTitle: assoc.callingAeTitle,
      sopClassUid: req.sopClassUid,
      status,
      code: e.code,
    });
    log.warn(
      {
        event: 'instance.failed',
        sopInstanceUid: req.sopInstanceUid,
        sopClassUid: req.sopClassUid,
        moveOriginatorAeTitle: req.moveOriginatorAeTitle,
        moveOriginatorMessageId: req.moveOriginatorMessageId,
        code: e.code,
        status: '0x' + status.toString(16).padStart(4, '0'),
        bytes: datasetBytes,
        err: e.message,
        cause: e.cause instanceof Error ? e.cause.message : undefined,
      },
      `instance not stored: ${e.message}`,
    );
    return status;
  }
}

export function asGatewayError(err: unknown, fallback: GatewayError['code']): GatewayError {
  if (isGatewayError(err)) return err;
  return new GatewayError(fallback, err instanceof Error ? err.message : String(err), {
    cause: err,
  });
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
