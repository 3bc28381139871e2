import type { Logger } from 'pino';
import type { IngestIndex, InstanceRecord } from '../index/instance-index.js';
import type { ObjectStore, PutResult } from '../store/object-store.js';
import type { Spool } from './spool.js';
import type { OutcomeReporter } from './outcome-reporter.js';

/**
 * The received Part-10 file as a commit sees it (Receiver). Its bytes may still be on their
 * way to the disk: whatever reads or publishes the file waits for written() or synced().
 */
export interface StagedFile {
  readonly path: string;
  readonly size: number;
  /** Content-MD5 (base64), when hashed while receiving (ReceiptHints.md5). */
  readonly md5: string | undefined;
  /**
   * The fsync of ready/ started when the file was created there (received in place in the
   * spool); the spool admits the file once it and the file's fsync are done.
   */
  readonly dirSynced: Promise<void> | undefined;
  /** Appends bytes after the Part-10 bytes (a spool record), before synced() begins. */
  appendTrailer(bytes: Buffer): void;
  /** Every received byte is in the file: a store is handed only a complete file. */
  written(): Promise<void>;
  /** The file's fsync (started early when the commit asked for it); GW_ERR_STORE_UNAVAILABLE. */
  synced(): Promise<void>;
  /** synced(), if the fsync was started early; a local store waits for it instead of its own. */
  syncedIfStarted(): Promise<void> | undefined;
  /** The file became a spool file or an object: it must not be deleted. */
  handedOver(): void;
}

/** Everything a commit strategy needs for one instance, once its duplicate check passed. */
export interface CommitContext {
  /** The row to write; objectKey, storeName and bucket come from the destination. */
  rec: InstanceRecord;
  store: ObjectStore;
  file: StagedFile;
  index: IngestIndex;
  log: Logger;
  /** Object metadata (objectMetadata), the same for every put of this instance. */
  metadata: Record<string, string>;
  report: OutcomeReporter;
  /** The index found the UID after all (a concurrent copy won): the duplicate policy answers. */
  duplicate(known: 'identical' | 'conflict'): Promise<number>;
}

/** What a commit wants of the receipt, decided before the header (and so the destination) is known. */
export interface ReceiptHints {
  /** Hash MD5 while receiving: the store sends the staged file itself with Content-MD5. */
  md5: boolean;
  /** fsync the staged file as soon as its last byte is written: the file itself is kept. */
  syncEarly: boolean;
  /** Receive in place under the spool's ready/ name, refusing early when it is full (A700). */
  inPlace?: Spool;
}

/**
 * How a received instance is made durable and indexed before the answer: direct (a local
 * store publishes the file, then the row), spooled (spool file ‖ pending row), stored (upload
 * before the answer, spool as fallback). Resolves to the DIMSE status to answer.
 */
export interface CommitStrategy {
  readonly receipt: ReceiptHints;
  commit(c: CommitContext): Promise<number>;
}

/** Create-only put; an object already under the key with other bytes was never acknowledged. */
export async function putStaged(c: CommitContext): Promise<PutResult> {
  const { store, rec, file, log } = c;
  await file.written();
  // A local store publishes the staged file itself: it waits for our fsync (ReceiptHints).
  const synced = file.syncedIfStarted();
  synced?.catch(() => undefined); // a store may not wait for it (remote, or key exists)
  const opts = { size: file.size, sha256: rec.sha256, md5: file.md5, metadata: c.metadata, synced };
  const put = await store.putFile(rec.objectKey, file.path, { ...opts, ifAbsent: true });
  if (!put.created && put.info.sha256 !== rec.sha256) {
    // Every acknowledged object has an index row (the answer follows the index commit), and
    // this SOP Instance UID has none: whatever is under the key is a leftover. Replace it.
    log.warn(
      {
        event: 'instance.unindexed_object_replaced',
        key: rec.objectKey,
        oldSha256: put.info.sha256,
      },
      'replacing an unindexed object left by an earlier failed attempt',
    );
    return store.putFile(rec.objectKey, file.path, { ...opts, ifAbsent: false });
  }
  return put;
}

/** Uploads the staged file under `key` (duplicate policies; not the ingest fast path). */
export async function putStagedAs(c: CommitContext, key: string, ifAbsent: boolean): Promise<void> {
  await c.file.written();
  await c.store.putFile(key, c.file.path, {
    size: c.file.size,
    sha256: c.rec.sha256,
    md5: c.file.md5, // absent: the store computes it (see PutFileOptions)
    metadata: c.metadata,
    ifAbsent,
  });
}
