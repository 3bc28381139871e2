/**
 * What the C-STORE path and the DICOM listener report as it happens, for metrics (and whatever
 * else wants to watch: an audit trail, a test). Plain interfaces with no dependency, so
 * src/ingest and src/scp can call them without importing prom-client.
 *
 * Contract for implementations: synchronous, cheap, never throw. Callers do not await them and
 * do not guard them: an observer must not be able to fail or slow a C-STORE.
 */

/** An instance answered 0000 as new: stored (or spooled, see `acknowledged`) and indexed. */
export interface InstanceStoredEvent {
  callingAeTitle: string;
  sopClassUid: string;
  /** (0008,0060) from the data set, when it has one. */
  modality?: string;
  /** Bytes of the Part-10 object written to the store (preamble + File Meta + data set). */
  bytes: number;
  /** From the C-STORE-RQ command to the moment the answer is sent. */
  seconds: number;
  /** 'spooled': answered once in the local spool (S3, ack: spooled); the upload follows. */
  acknowledged?: 'stored' | 'spooled';
}

/** An instance answered 0000 without a new object: the SOP Instance UID was known already. */
export interface InstanceDuplicateEvent {
  callingAeTitle: string;
  sopClassUid: string;
  modality?: string;
  /** false: the known instance has other bytes (the first one was kept). */
  identical: boolean;
}

/** An instance answered with a failure status (refused before or after its bytes arrived). */
export interface InstanceFailedEvent {
  callingAeTitle: string;
  /** Absent when the request was refused before its SOP class was known to be usable. */
  sopClassUid?: string;
  modality?: string;
  /** The C-STORE-RSP status (PS3.4 B.2.3), e.g. 0xa700. */
  status: number;
  /** The GatewayError code behind it (GW_ERR_*). */
  code: string;
}

export interface IngestObserver {
  stored(ev: InstanceStoredEvent): void;
  duplicate(ev: InstanceDuplicateEvent): void;
  failed(ev: InstanceFailedEvent): void;
}

export interface AssociationObserver {
  /** A-ASSOCIATE-AC sent. */
  accepted(ev: { callingAeTitle: string }): void;
  /** A-ASSOCIATE-RJ sent (PS3.8 9.3.4); `reason` is our own words, for logs. */
  rejected(ev: { callingAeTitle: string; reason: string }): void;
}

/** Both, as the Metrics class implements them. */
export type GatewayObserver = IngestObserver & AssociationObserver;
