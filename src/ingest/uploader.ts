import { truncate } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { isGatewayError } from '../errors.js';
import { SharedFlush } from '../shared-flush.js';
import type { IngestIndex } from '../index/instance-index.js';
import { fileDigests } from '../store/file-digests.js';
import type { ObjectStore } from '../store/object-store.js';
import { objectMetadataOfFile } from './object-metadata.js';
import type { Spool } from './spool.js';
import type { SpoolRecord } from './spool-record.js';

export interface UploadItem {
  sopInstanceUid: string;
  key: string;
  size: number;
  sha256: string;
  metadata?: Record<string, string>;
  /**
   * The file was received and fsynced into the spool by this process before its answer, so
   * it holds the acknowledged bytes and is durable. Not set for files found at start (a
   * crash may have come between a row's commit and its file's fsync): those are read and
   * checked against the row before anything is published.
   */
  fresh?: boolean;
  /**
   * The spool file carries its spool record after the `size` Part-10 bytes: the uploader cuts
   * it off before the upload, once the row's commit is flushed (the record is what restored
   * the row until then).
   */
  trailer?: boolean;
  /** Set by the uploader once it cut the trailer (the file's new length is not fsynced). */
  cut?: boolean;
}

/** What a fresh spool file's `synced` is: its fsync happened before the answer. */
const DURABLE = Promise.resolve();

const MAX_BACKOFF_MS = 60_000;

/**
 * Drains the spool into the object store with bounded concurrency, in arrival order:
 * upload (create-only; the store proves the object holds the bytes acknowledged, the index
 * row's sha256: see PutFileOptions.md5), then mark the row 'stored'
 * (which writes its outbox event), then delete the spool file, so a crash at any point leaves
 * the file to be uploaded again, and the create-only upload of identical bytes is a no-op.
 */
export class Uploader {
  private readonly queue: UploadItem[] = [];
  private readonly queued = new Set<string>();
  private active = 0;
  private backoffMs = 0;
  private closed = false;
  private idleWaiters: Array<() => void> = [];
  private receiving: () => boolean = () => false;
  private recheck: NodeJS.Timeout | undefined;
  readonly stats = { uploaded: 0, failures: 0, held: 0 };
  /** index.flushCommits shared by the items that wait for it at the same time. */
  private readonly rowsFlushed = new SharedFlush(() => this.o.index.flushCommits());

  constructor(
    private readonly o: {
      store: ObjectStore;
      index: IngestIndex;
      spool: Spool;
      concurrency: number;
      /**
       * Upload workers while C-STOREs are being received and the spool holds more than
       * `burstBytes`. Uploads share the CPU, the disk and the index with the ingest path; a
       * sender waiting for its answers comes first, and the spool (bounded, A700 when full)
       * takes the difference until the senders pause.
       */
      concurrencyWhileReceiving?: number;
      /**
       * Backlog the spool may build while C-STOREs arrive before any upload starts: a burst
       * (a study) is taken at full speed and uploaded right after. 0: never defer.
       */
      burstBytes?: number;
      /** Pending rows read at a time by recover() (listPending). Default 1000. */
      recoverPageSize?: number;
      log: Logger;
    },
  ) {}

  /** `busy` tells whether C-STOREs are being received now (Ingest.receiving). */
  yieldTo(busy: () => boolean): void {
    this.receiving = busy;
  }

  get pending(): number {
    return this.queue.length + this.active;
  }

  enqueue(item: UploadItem): void {
    if (this.closed || this.queued.has(item.sopInstanceUid)) return;
    this.queued.add(item.sopInstanceUid);
    this.queue.push(item);
    this.pump();
  }

  /**
   * Start-up reconciliation of the spool with the index (the index is the truth, restored from
   * the spool record where it lost a row): a ready file with a 'stored' row was uploaded
   * before a crash (dropped); with a pending row it is queued. Without a row, a file whose
   * record matches its bytes was acknowledged and its row lost (committed without waiting for
   * the flush, then a database crash): the row is written again from the record and the file
   * queued. Any other file without a row was never acknowledged (dropped). A pending row of
   * this spool without a file (stored-mode crash mid-upload) is marked stored if the object is
   * in the bucket with the same sha256, else forgotten: it was never acknowledged.
   */
  async recover(
    readyUids: string[],
  ): Promise<{ queued: number; dropped: number; settled: number; restored: number }> {
    const { index, spool, store, log } = this.o;
    let queued = 0; // uploads begin as they are queued: some may be done before the log line
    let dropped = 0;
    let settled = 0;
    let restored = 0;
    for (const uid of readyUids) {
      let row = await index.findInstance(uid);
      const record = await spool.readRecord(uid);
      if (!row && record && (await this.restoreRow(record))) {
        row = await index.findInstance(uid);
        if (row) restored++;
      }
      if (!row || row.state === 'stored') {
        await spool.remove(uid);
        dropped++;
        continue;
      }
      const { objectKey: key, size, sha256 } = row;
      // A record of the row's bytes: its metadata saves a parse, and it is cut off before the
      // upload. A record of other bytes leaves the file as it is, for the checks in upload().
      const own = record?.rec.sha256 === sha256 && record.rec.size === size ? record : undefined;
      this.enqueue({
        sopInstanceUid: uid,
        key,
        size,
        sha256,
        metadata: own?.metadata,
        trailer: own !== undefined,
      });
      queued++;
    }
    // Paged by UID: rows with a spool file stay pending (queued above), so a page is never
    // emptied by settling it, and a page without orphans must not end the walk.
    const pageSize = this.o.recoverPageSize ?? 1000;
    let after: string | undefined;
    for (;;) {
      const page = await index.listPending(spool.owner, pageSize, after);
      after = page.at(-1)?.sopInstanceUid;
      for (const row of page.filter((r) => !spool.has(r.sopInstanceUid))) {
        const info = await store.head(row.objectKey);
        if (info && info.sha256 === row.sha256) {
          await index.markStored(row.sopInstanceUid);
          settled++;
        } else {
          await index.forgetPending(row.sopInstanceUid);
          log.warn(
            {
              event: 'spool.pending_forgotten',
              sopInstanceUid: row.sopInstanceUid,
              key: row.objectKey,
            },
            'pending row without spool file or object: it was never acknowledged; removed',
          );
          dropped++;
        }
      }
      if (page.length < pageSize) break;
    }
    log.info(
      { event: 'spool.recovered', queued, dropped, settled, restored, ...spool.stats() },
      'spool reconciled',
    );
    return { queued, dropped, settled, restored };
  }

  /**
   * Writes the row of a spool file again from its record, when the index has none: only if
   * the file holds exactly the bytes the record names (Part-10 size and sha256), which is true
   * of every acknowledged instance and of no receipt cut short. Returns whether it wrote it.
   */
  private async restoreRow(record: SpoolRecord): Promise<boolean> {
    const { index, spool, log } = this.o;
    const uid = record.rec.attributes.sopInstanceUid;
    const found = await fileDigests(spool.pathFor(uid), record.rec.size);
    if (found.sha256 !== record.rec.sha256 || found.size !== record.rec.size) return false;
    const rec = { ...record.rec, state: 'pending-upload' as const, pendingOwner: spool.owner };
    const outcome = await index.recordInstance(rec);
    log.warn(
      {
        event: 'spool.row_restored',
        sopInstanceUid: uid,
        key: rec.objectKey,
        outcome: outcome.kind,
      },
      'the index had lost the row of an acknowledged instance (committed without waiting for the flush, then the database stopped): written again from the spool record',
    );
    return outcome.kind === 'inserted';
  }

  /** Resolves when nothing is queued or uploading (tests, shutdown), or after `timeoutMs`. */
  async idle(timeoutMs: number): Promise<boolean> {
    if (this.pending === 0) return true;
    const drained = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    const settled = new AbortController(); // ends the timer once drained
    try {
      return await Promise.race([drained, sleep(timeoutMs, false, { signal: settled.signal })]);
    } finally {
      settled.abort();
    }
  }

  /** Stops taking work; uploads in flight finish (their files stay if they fail). */
  async close(timeoutMs = 10_000): Promise<void> {
    this.closed = true;
    clearTimeout(this.recheck);
    this.queue.length = 0;
    await this.idle(timeoutMs);
  }

  private pump(): void {
    const { concurrency, concurrencyWhileReceiving = concurrency, burstBytes = 0, spool } = this.o;
    // Senders first while the spool has room; the fuller it gets, the more uploads run, so it
    // drains before it refuses anyone (A700): none below burstBytes (at most a quarter of
    // maxBytes), concurrencyWhileReceiving above it, all from half of maxBytes.
    const backlog = spool.backlogBytes;
    const limit =
      !this.receiving() || backlog >= spool.maxBytes / 2
        ? concurrency
        : backlog < Math.min(burstBytes, spool.maxBytes / 4)
          ? 0
          : Math.min(concurrency, concurrencyWhileReceiving);
    if (limit < concurrency && this.queue.length > 0 && !this.closed && !this.recheck) {
      // Take up the full concurrency again soon after the senders pause.
      this.recheck = setTimeout(() => {
        this.recheck = undefined;
        this.pump();
      }, 250);
      this.recheck.unref();
    }
    while (!this.closed && this.active < limit && this.queue.length > 0) {
      const item = this.queue.shift()!;
      this.active++;
      void this.run(item).finally(() => {
        this.active--;
        if (this.pending === 0) {
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          waiters.forEach((w) => w());
        }
        this.pump();
      });
    }
  }

  private async run(item: UploadItem): Promise<void> {
    if (this.backoffMs > 0) await sleep(this.backoffMs);
    const started = process.hrtime.bigint();
    try {
      if ((await this.upload(item)) === 'held') {
        // Stays in `queued`: not taken again before the next start's reconciliation.
        this.stats.held++;
        return;
      }
      this.queued.delete(item.sopInstanceUid);
      this.backoffMs = 0;
      this.stats.uploaded++;
      this.o.log.info(
        {
          event: 'instance.uploaded',
          sopInstanceUid: item.sopInstanceUid,
          key: item.key,
          bytes: item.size,
          ms: Number(process.hrtime.bigint() - started) / 1e6,
        },
        'spooled instance uploaded',
      );
    } catch (err) {
      this.stats.failures++;
      // Exponential backoff with jitter, shared by all workers: when the store is down,
      // every upload would fail the same way.
      this.backoffMs =
        Math.min(MAX_BACKOFF_MS, Math.max(500, this.backoffMs * 2)) * (0.75 + Math.random() / 2);
      this.o.log.warn(
        {
          event: 'instance.upload_failed',
          sopInstanceUid: item.sopInstanceUid,
          code: isGatewayError(err) ? err.code : undefined,
          err: err instanceof Error ? err.message : String(err),
          retryInMs: Math.round(this.backoffMs),
        },
        'upload from the spool failed; will retry',
      );
      if (!this.closed) this.queue.unshift(item);
    }
  }

  /**
   * 'held': the file does not hold the acknowledged bytes and the bucket has no copy; it is
   * left in the spool (row pending) for an operator and tried again at the next start.
   */
  private async upload(item: UploadItem): Promise<'uploaded' | 'settled' | 'held'> {
    const { store, index, spool } = this.o;
    const path = spool.pathFor(item.sopInstanceUid);
    if (item.trailer) await this.cutTrailer(item, path);
    const metadata = item.metadata ?? (await objectMetadataOfFile(path));
    let md5: string | undefined;
    if (!item.fresh) {
      // Found at start: prove the file holds the row's bytes before any store takes it (a
      // local store links the file as it is); the same read gives the Content-MD5.
      const found = await fileDigests(path);
      if (found.sha256 !== item.sha256 || found.size !== item.size) {
        return (await this.alreadyStored(item, path, found)) ? 'settled' : 'held';
      }
      md5 = found.md5;
    }
    // A fresh file without MD5: a remote store has the server check it against the sha256
    // (signed payload), or computes Content-MD5 in a read that checks it (PutFileOptions.md5);
    // a local store links it, fsynced already.
    // A cut file's new length is not fsynced: a local store that publishes it fsyncs it.
    const synced = item.fresh && !item.cut ? DURABLE : undefined;
    const opts = { size: item.size, sha256: item.sha256, metadata, md5, synced };
    try {
      const put = await store.putFile(item.key, path, { ...opts, ifAbsent: true });
      if (!put.created && put.info.sha256 !== item.sha256) {
        // The row is pending, so whatever holds the key was never acknowledged: replace it.
        await store.putFile(item.key, path, { ...opts, ifAbsent: false });
      }
    } catch (err) {
      if (!isGatewayError(err) || err.code !== 'GW_ERR_STORE_INTEGRITY') throw err;
      const found = await fileDigests(path);
      // The file is intact: the upload itself was refused (BadDigest in transit); retried.
      if (found.sha256 === item.sha256 && found.size === item.size) throw err;
      return (await this.alreadyStored(item, path, found)) ? 'settled' : 'held';
    }
    await index.markStored(item.sopInstanceUid);
    await spool.remove(item.sopInstanceUid);
    return 'uploaded';
  }

  /**
   * Cuts the spool record off the file, once the commit of its row is flushed (shared by
   * every item waiting at the same time): from then on the row is what describes the file.
   * A crash before the cut leaves the record; after it, a flushed row.
   */
  private async cutTrailer(item: UploadItem, path: string): Promise<void> {
    await this.rowsFlushed.sync();
    await truncate(path, item.size);
    // A retry after a failed upload must not wait or cut again.
    item.trailer = false;
    item.cut = true;
  }

  /**
   * The spool file differs from its row. One known way: the row's earlier copy was uploaded,
   * its 'stored' mark was lost in a crash (asynchronous commit) after its file was removed, and
   * a resend of the UID was cut short by the crash while being received in place. The bucket
   * then holds the acknowledged bytes: settle the row and drop the partial file. Otherwise
   * the file stays for an operator, logged as an error, and is tried again at the next start:
   * it was damaged after its acknowledgement, or a power loss cut it short between its row's
   * commit and its fsync, before any answer (the two cannot be told apart from here).
   */
  private async alreadyStored(
    item: UploadItem,
    path: string,
    found: { sha256: string; size: number },
  ): Promise<boolean> {
    const { store, index, spool, log } = this.o;
    const info = await store.head(item.key);
    if (!info || info.sha256 !== item.sha256) {
      log.error(
        {
          event: 'spool.file_mismatch',
          sopInstanceUid: item.sopInstanceUid,
          path,
          key: item.key,
          sha256: found.sha256,
          size: found.size,
          indexSha256: item.sha256,
          indexSize: item.size,
        },
        'spool file differs from its index row and the bucket has no copy: kept in the spool, not uploaded (damaged after its acknowledgement, or cut short by a power loss before it)',
      );
      return false;
    }
    await index.markStored(item.sopInstanceUid);
    await spool.remove(item.sopInstanceUid);
    log.warn(
      { event: 'spool.stale_file_dropped', sopInstanceUid: item.sopInstanceUid, key: item.key },
      'spool file differed from the index, but the bucket holds the acknowledged bytes: settled',
    );
    return true;
  }
}
