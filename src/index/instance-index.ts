/**
 * The index: patients, studies, series and instances, plus the outbox of events and their
 * delivery state. PgIndex is the first implementation (open one with connectIndex or pgIndex,
 * ./open.ts); every implementation passes the same contract tests (`indexContract`,
 * test/helpers/index-contract.ts).
 *
 * Durability, as each method states it:
 * - durable: when the promise resolves the change is committed and flushed to the database's
 *   disk (synchronous commit); it survives a crash of the database server.
 * - committed, flush not awaited: visible to every reader at once, but a database crash within
 *   a fraction of a second after may lose it (PostgreSQL asynchronous commit, at most about
 *   3 x wal_writer_delay); the method says what repairs such a loss.
 * - reads promise nothing beyond seeing every change committed before they started.
 * Each write is one transaction. One rejected with GW_ERR_INDEX_UNAVAILABLE may still have
 * committed (the connection died around the commit); every write is idempotent, or harmless
 * to repeat, so the caller retries.
 */
import type { BackfillRuns } from './backfill-runs.js';
import type { CommitmentTransactions } from './commitment-transactions.js';
import type { IndexReports } from './index-reports.js';
import type { InstanceEventType, InstanceStoredEvent } from './outbox-event.js';
import type { OutboxDeliveries } from './outbox-deliveries.js';
import type { StableStudies } from './stable-studies.js';

/** Attributes read from a dataset's header, decoded to UTF-8, trimmed; undefined when absent or empty. */
export interface InstanceAttributes {
  specificCharacterSet?: string;
  patientId?: string;
  issuerOfPatientId?: string;
  patientName?: string;
  patientBirthDate?: string;
  patientSex?: string;
  studyInstanceUid: string;
  studyDate?: string;
  studyTime?: string;
  accessionNumber?: string;
  studyId?: string;
  studyDescription?: string;
  referringPhysicianName?: string;
  institutionName?: string;
  seriesInstanceUid: string;
  modality?: string;
  seriesNumber?: number;
  seriesDescription?: string;
  bodyPartExamined?: string;
  sopClassUid: string;
  sopInstanceUid: string;
  instanceNumber?: number;
  numberOfFrames?: number;
  rows?: number;
  columns?: number;
}

/** One received instance as the index records it. */
export interface InstanceRecord {
  attributes: InstanceAttributes;
  transferSyntaxUid: string;
  /** Which store holds it (its configured name), and under which key. */
  storeName: string;
  objectKey: string;
  /** S3 bucket holding the object; undefined for a local store. */
  bucket?: string;
  /** Labels the routing rule gave it (instances.labels). */
  labels?: readonly string[] | undefined;
  /** Notify destinations the routing rule named (instances.destinations, and the outbox event). */
  destinations?: readonly string[] | undefined;
  size: number;
  sha256: string;
  callingAeTitle: string;
  calledAeTitle: string;
  sourceAddress: string;
  receivedAt: Date;
  /** 'stored' once in the object store; 'pending-upload' while only in the local spool. */
  state: 'stored' | 'pending-upload';
  /** With 'pending-upload': the spool that holds the file (see Spool.owner). */
  pendingOwner?: string;
}

export interface RecordOptions {
  /**
   * false: do not wait for the commit's flush (PostgreSQL asynchronous commit; an index
   * without it flushes anyway). Default true.
   */
  flush?: boolean;
}

export interface ExistingInstance {
  sopInstanceUid: string;
  studyInstanceUid: string;
  seriesInstanceUid: string;
  storeName: string;
  objectKey: string;
  size: number;
  sha256: string;
  state: 'stored' | 'pending-upload';
}

export type RecordOutcome =
  /** A new row (and its outbox event) was committed. */
  | { kind: 'inserted' }
  /** A row with the same SOP Instance UID and the same sha256 exists: nothing changed. */
  | { kind: 'identical'; existing: ExistingInstance }
  /** A row with the same SOP Instance UID but other bytes exists: nothing changed, the duplicate was counted. */
  | { kind: 'conflict'; existing: ExistingInstance };

export interface StudySummary {
  studyInstanceUid: string;
  patientId?: string;
  patientName?: string;
  studyDate?: string;
  accessionNumber?: string;
  studyDescription?: string;
  modalitiesInStudy: string[];
  numberOfSeries: number;
  numberOfInstances: number;
  totalBytes: number;
  firstReceivedAt: Date;
  lastReceivedAt: Date;
}

/** An event of the outbox, as written with its instance. */
export interface OutboxEvent {
  id: number;
  type: InstanceEventType;
  payload: InstanceStoredEvent;
  createdAt: Date;
}

/** What the C-STORE path (ingest, spool uploader) uses. */
export interface IngestIndex {
  /** Applies pending migrations. Safe to call from several processes at once. Durable. */
  migrate(): Promise<void>;
  /**
   * Records an instance and, when `rec.state` is 'stored', its `instance.stored` outbox event,
   * in one transaction. Idempotent by SOP Instance UID: a second call never adds a row or an
   * event. Durable (the C-STORE-RSP is sent after this resolves), unless `opts.flush` is false:
   * then committed, flush not awaited, for a caller that keeps what restores the row itself
   * (the spool's record of a 'pending-upload' instance, see Spool).
   */
  recordInstance(rec: InstanceRecord, opts?: RecordOptions): Promise<RecordOutcome>;
  /**
   * Marks a 'pending-upload' instance as 'stored' once its object is in the store, and writes
   * its `instance.stored` outbox event in the same transaction. Idempotent; throws
   * GW_ERR_INTERNAL when no such instance is indexed.
   * Committed, flush not awaited: the object is already in the store and the sender was
   * answered long ago; a lost commit leaves the row 'pending-upload', and the uploader's
   * start-up recovery finds the object in the store (same sha256) and marks it again, which
   * writes the event then (one event in the end).
   */
  markStored(sopInstanceUid: string): Promise<void>;
  /**
   * Resolves once every commit that returned before this call is flushed (durable), those
   * made with `flush: false` included. An index whose commits are always flushed resolves at
   * once.
   */
  flushCommits(): Promise<void>;
  /**
   * Instances still 'pending-upload' in `owner`'s spool (the backlog after a restart), ordered
   * by SOP Instance UID; `after`: only those whose UID sorts after it (the last of the previous page).
   */
  listPending(owner: string, limit: number, after?: string): Promise<ExistingInstance[]>;
  /** Deletes a 'pending-upload' row that was never acknowledged; false when there was none. Durable. */
  forgetPending(sopInstanceUid: string): Promise<boolean>;
  /**
   * Duplicate policy 'overwrite': the stored instance's content was replaced under the same key;
   * update its row (sha256, size, transfer syntax, sender, time) and counters, and write an
   * `instance.replaced` event, in one transaction. Durable.
   */
  replaceInstance(rec: InstanceRecord): Promise<void>;
  /**
   * Duplicate policy 'keep-versions': other content of a stored instance was put under
   * `rec.objectKey` beside the first; record it as a version of that instance. Idempotent by
   * content (sha256). The instance row, its counters and its events stay as they are. Durable.
   */
  recordVersion(rec: InstanceRecord): Promise<void>;
  findInstance(sopInstanceUid: string): Promise<ExistingInstance | undefined>;
  getStudy(studyInstanceUid: string): Promise<StudySummary | undefined>;
  listInstances(studyInstanceUid: string): Promise<ExistingInstance[]>;
  /**
   * The instance events in the outbox, oldest first, whatever their deliveries (which
   * OutboxDeliveries keeps per destination).
   */
  instanceEvents(limit: number): Promise<OutboxEvent[]>;
  /** Checks the database is reachable (readiness). Throws GW_ERR_INDEX_UNAVAILABLE. */
  ping(): Promise<void>;
  /** Waits for calls in flight, closes connections and the outbox listener. Idempotent. */
  close(): Promise<void>;
}

/**
 * The whole index: the C-STORE path, the read-only reports (status, verify) and the outbox
 * deliveries (the notify worker). Errors: GW_ERR_INDEX_UNAVAILABLE when the database cannot be
 * reached or is overloaded (retry later), GW_ERR_INTERNAL otherwise.
 */
export interface InstanceIndex
  extends IngestIndex, IndexReports, OutboxDeliveries, StableStudies, BackfillRuns {
  /** Storage Commitment transactions (src/index/commitment-transactions.ts). */
  readonly commitments: CommitmentTransactions;
}
