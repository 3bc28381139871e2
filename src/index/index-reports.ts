/**
 * The read-only side of the index: the summary behind /status, `dicom-gateway status` and the
 * outbox gauge, and the walk over stored objects behind `dicom-gateway verify`. Reads only; an
 * implementation runs them apart from the C-STORE path (PgIndex: its own small pools), so a slow
 * report never takes a connection an instance is waiting for.
 */

import type { DeliveryCounts } from './outbox-deliveries.js';

/**
 * The outbox counts stop here: a destination down for a day leaves a backlog of every instance
 * since, and counting millions of rows on every scrape would cost more than it tells.
 */
export const OUTBOX_COUNT_CAP = 100_000;

/**
 * The outbox backlog: deliveries waiting or in flight over every destination that has claimed
 * (events not yet enqueued for one included), from the per-destination counts. An outbox that
 * no destination reads (no `notify` configured) has no backlog.
 */
export function outboxBacklog(counts: readonly DeliveryCounts[]): {
  count: number;
  capped: boolean;
} {
  const total = counts.reduce((n, c) => n + c.pending, 0);
  const capped = total >= OUTBOX_COUNT_CAP || counts.some((c) => c.pendingCapped);
  return { count: Math.min(total, OUTBOX_COUNT_CAP), capped };
}

/** How many of the most recently received studies are searched for each AE's last study. */
export const RECENT_STUDIES = 200;

export interface LastStudy {
  callingAeTitle: string;
  studyInstanceUid: string;
  /** YYYY-MM-DD, when the data set had a Study Date. */
  studyDate?: string;
  modalities: string[];
  instances: number;
  /** The last instance of that study from that AE. */
  receivedAt: Date;
}

export interface IndexSummary {
  studies: number;
  series: number;
  instances: number;
  bytes: number;
  /** Indexed, acknowledged from the local spool, not yet in the object store. */
  pendingUpload: number;
  /**
   * Deliveries waiting or in flight, over every notify destination (outboxBacklog); at most
   * OUTBOX_COUNT_CAP (then `outboxPendingCapped`).
   */
  outboxPending: number;
  outboxPendingCapped: boolean;
  /**
   * Per calling AE title, its most recent study, among the RECENT_STUDIES most recently
   * received studies (an AE silent for longer is not listed).
   */
  lastStudyByCallingAe: LastStudy[];
}

/** An object the index says is in the store: a stored instance, or a version kept beside one. */
export interface StoredObject {
  sopInstanceUid: string;
  storeName: string;
  objectKey: string;
  size: number;
  sha256: string;
}

/** Which stored objects; every field narrows, none means all. */
export interface StoredObjectFilter {
  studyInstanceUid?: string;
  /** ISO dates (YYYY-MM-DD), inclusive, on the study's Study Date; a study without one is outside any range. */
  from?: string;
  to?: string;
}

export interface IndexReports {
  /**
   * Counts and the last study per calling AE. Cost independent of the archive's size (counters
   * and partial indexes). GW_ERR_CONFIG when the database has no gateway schema.
   */
  summary(): Promise<IndexSummary>;
  /** The summary's outbox backlog alone (a cheap gauge). */
  outboxPending(): Promise<{ count: number; capped: boolean }>;
  /**
   * Every stored object that matches, instances first then versions, in pages read as the
   * caller iterates (constant memory; rows added meanwhile may appear at the end). Instances
   * still 'pending-upload' are not in the store yet and are left out.
   */
  storedObjects(filter: StoredObjectFilter): AsyncIterable<StoredObject>;
  /** How many objects, and bytes, storedObjects(filter) would yield (for a progress bar). */
  countStoredObjects(filter: StoredObjectFilter): Promise<{ objects: number; bytes: number }>;
}
