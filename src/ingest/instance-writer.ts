import { createHash, type Hash } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import type { Logger } from 'pino';
import { extractAttributes, LAST_INDEXED_TAG } from '../dicom/attributes.js';
import { buildPart10Header } from '../dicom/file-meta.js';
import { DatasetReader } from '../dicom/header-reader.js';
import { DimseStatus, GatewayError, isGatewayError, toDimseStatus } from '../errors.js';
import type {
  ExistingInstance,
  InstanceAttributes,
  InstanceRecord,
  RecordOutcome,
} from '../index/instance-index.js';
import type { AssociationInfo, InstanceSink, StoreRequest } from '../scp/association.js';
import { instanceKey, versionKey } from '../store/keys.js';
import type { PutResult } from '../store/object-store.js';
import type { IngestOptions, IngestStats } from './ingest.js';
import { StagingFile } from './staging-file.js';

export interface InstanceWriterOptions extends IngestOptions {
  assoc: AssociationInfo;
  req: StoreRequest;
  log: Logger;
  stagingPath: string;
  /** `stagingPath` is the spool's ready/ path claimed for this UID (Spool.beginReceiving). */
  inPlace?: boolean;
  stats: IngestStats;
  /** Serialises commits of one SOP Instance UID within this process (Ingest.withUidLock). */
  lock: <T>(uid: string, fn: () => Promise<T>) => Promise<T>;
  /** Ingest.startLookup: whether an early index lookup is still valid at commit time. */
  startLookup: (owner: object) => { changedSince: (uid: string) => boolean; done: () => void };
}

/**
 * Receives one C-STORE data set. While bytes arrive it writes preamble + File Meta
 * + the data set bytes unchanged to a staging file, hashes them (sha256 always,
 * MD5 for S3's Content-MD5 when it uploads the file itself, ack: stored) and feeds
 * the header reader; nothing but stream buffers is held in memory, whatever the
 * instance's size. On finish() the file goes to the store and the row to the index,
 * and only then is success answered.
 */
export class InstanceWriter implements InstanceSink {
  private readonly file: StagingFile;
  private readonly sha256: Hash = createHash('sha256');
  private readonly md5: Hash | undefined;
  private readonly reader: DatasetReader;
  private size = 0;
  private datasetBytes = 0;
  /** First error seen while receiving; later bytes are read and dropped. */
  private failure: GatewayError | undefined;
  /**
   * The fsync of the staged file, started as soon as the last byte is written when the file
   * itself becomes the stored copy (FsStore, ack: spooled), so it runs beside the index lookup.
   */
  private syncing: Promise<void> | undefined;
  private readonly lookup: Promise<ExistingInstance | undefined>;
  private readonly lookupState: { changedSince: (uid: string) => boolean; done: () => void };
  private readonly started = process.hrtime.bigint();
  /**
   * The fsync of ready/ after the file was created there (received in place), run while
   * the data set arrives; the spool admits the file once it and the file's fsync are done.
   */
  private readonly dirSynced: Promise<void> | undefined;
  private md5Digest: string | undefined;
  /** The staging file became a spool file: finish() must not try to delete it. */
  private moved = false;
  private metadata: Record<string, string> = {};

  constructor(private readonly o: InstanceWriterOptions) {
    // Content-MD5 is for stores that verify uploads (S3, and MemoryStore which mimics it).
    // FsStore links the staged file itself, and the spool's uploader reads the file anyway
    // (it checks the sha256): hashing here would put MD5 on the path to the answer for nothing.
    this.md5 = o.store.kind === 'fs' || o.spool?.ack === 'spooled' ? undefined : createHash('md5');
    this.reader = new DatasetReader({
      transferSyntaxUid: o.req.transferSyntaxUid,
      lastTag: LAST_INDEXED_TAG,
    });
    this.file = new StagingFile(o.stagingPath);
    if (o.inPlace && o.spool) {
      const spool = o.spool.spool;
      this.dirSynced = this.file.opened().then(() => spool.syncReadyDir());
      this.dirSynced.catch(() => undefined); // awaited (and reported) by the spool's admit
    }
    // The index lookup for duplicates runs while the data set arrives, off the answer's path.
    this.lookupState = o.startLookup(this);
    this.lookup = o.index.findInstance(o.req.sopInstanceUid);
    this.lookup.catch(() => undefined); // awaited, or asked again, in commit()
    let header: Buffer;
    try {
      // PS3.10 7.1: File Meta from the C-STORE request and the negotiated transfer syntax.
      header = buildPart10Header({
        mediaStorageSopClassUid: o.req.sopClassUid,
        mediaStorageSopInstanceUid: o.req.sopInstanceUid,
        transferSyntaxUid: o.req.transferSyntaxUid,
        implementationClassUid: o.implementationClassUid,
        implementationVersionName: o.implementationVersionName,
        sourceApplicationEntityTitle: o.assoc.callingAeTitle || undefined,
      });
    } catch (err) {
      this.failure = asGatewayError(err, 'GW_ERR_DATASET_MALFORMED');
      return;
    }
    this.append(header);
  }

  write(chunk: Buffer): Promise<void> | undefined {
    if (this.failure) return undefined;
    this.datasetBytes += chunk.length;
    if (this.datasetBytes > this.o.maxInstanceBytes) {
      this.failure = new GatewayError(
        'GW_ERR_DATASET_TOO_LARGE',
        `data set exceeds the limit of ${this.o.maxInstanceBytes} bytes`,
      );
      return undefined;
    }
    try {
      this.reader.push(chunk);
    } catch (err) {
      this.failure = asGatewayError(err, 'GW_ERR_DATASET_MALFORMED');
      return undefined;
    }
    return this.append(chunk);
  }

  private append(chunk: Buffer): Promise<void> | undefined {
    this.sha256.update(chunk);
    this.md5?.update(chunk);
    this.size += chunk.length;
    return this.file.write(chunk);
  }

  async finish(): Promise<{ status: number; errorComment?: string }> {
    const { req, log } = this.o;
    try {
      // A malformed or oversized data set was refused while it arrived (write()).
      if (this.failure) throw this.failure;
      // The last writes may still run: the parse, the lock and the index work go on meanwhile.
      // Whatever reads or publishes the file waits for them first (written(), synced()).
      if (this.o.store.kind === 'fs' || this.o.spool?.ack === 'spooled') {
        this.syncing = this.file.sync(); // follows the last write inside StagingFile
        this.syncing.catch(() => undefined); // awaited (and reported) by the commit
      }
      await this.reader.end();
      const attrs = extractAttributes(this.reader);
      checkMatchesRequest(attrs, req);
      // Outside the commit lock: the claim's holder needs that lock to end its claim.
      if (this.o.spool && !this.o.inPlace) await this.o.spool.spool.claimEnded(req.sopInstanceUid);
      const status = await this.o.lock(attrs.sopInstanceUid, () => this.commit(attrs));
      return { status };
    } catch (err) {
      const e = asGatewayError(err, 'GW_ERR_INTERNAL');
      this.o.stats.failed++;
      const status = toDimseStatus(e);
      this.o.observer?.failed({
        callingAeTitle: this.o.assoc.callingAeTitle,
        sopClassUid: req.sopClassUid,
        status,
        code: e.code,
      });
      log.warn(
        {
          event: 'instance.failed',
          sopInstanceUid: req.sopInstanceUid,
          sopClassUid: req.sopClassUid,
          code: e.code,
          status: '0x' + status.toString(16).padStart(4, '0'),
          bytes: this.datasetBytes,
          err: e.message,
          cause: e.cause instanceof Error ? e.cause.message : undefined,
        },
        `instance not stored: ${e.message}`,
      );
      return { status, errorComment: e.message };
    } finally {
      this.reader.close();
      this.lookupState.done();
      const closed = (this.syncing?.catch(() => undefined) ?? Promise.resolve()).then(() =>
        this.file.close(),
      );
      // Admitted to the spool or linked into the store: the file is durable in its place, and
      // closing the descriptor (never throws) need not delay the answer. Else remove it.
      if (!this.moved) {
        await closed;
        await unlink(this.o.stagingPath).catch(() => {});
      }
    }
  }

  async abort(_reason: string): Promise<void> {
    this.reader.close();
    this.lookupState.done();
    await this.file.close();
    await unlink(this.o.stagingPath).catch(() => {});
  }

  /** Every received byte is in the staged file: a store is handed only a complete file. */
  private async written(): Promise<void> {
    try {
      await this.file.flushed();
    } catch (err) {
      throw new GatewayError('GW_ERR_STORE_UNAVAILABLE', `staging file: ${String(err)}`, {
        cause: err,
      });
    }
  }

  /** The staged file's fsync (started in finish()); a failure means the store cannot take it. */
  private async synced(): Promise<void> {
    try {
      await (this.syncing ??= this.file.sync());
    } catch (err) {
      throw new GatewayError(
        'GW_ERR_STORE_UNAVAILABLE',
        `writing the received file: ${String(err)}`,
        {
          cause: err,
        },
      );
    }
  }

  /** Store and index; answers success only once both are done (see the README's guarantees). */
  private async commit(attrs: InstanceAttributes): Promise<number> {
    const { index, assoc, req } = this.o;
    const sha256 = this.sha256.digest('hex');
    const md5 = this.md5?.digest('base64');
    this.md5Digest = md5;
    const rec: InstanceRecord = {
      attributes: attrs,
      transferSyntaxUid: req.transferSyntaxUid,
      storeName: this.o.storeName,
      objectKey: instanceKey(
        this.o.prefix,
        attrs.studyInstanceUid,
        attrs.seriesInstanceUid,
        attrs.sopInstanceUid,
      ),
      size: this.size,
      sha256,
      callingAeTitle: assoc.callingAeTitle,
      calledAeTitle: assoc.calledAeTitle,
      sourceAddress: assoc.remoteAddress,
      receivedAt: new Date(),
      state: 'stored',
    };
    this.metadata = {
      'transfer-syntax': req.transferSyntaxUid,
      'sop-class': attrs.sopClassUid,
      'calling-ae': asciiOnly(assoc.callingAeTitle),
      'received-at': rec.receivedAt.toISOString(),
    };
    const c: Commit = {
      rec,
      md5,
      metadata: this.metadata,
      logFields: {
        sopInstanceUid: attrs.sopInstanceUid,
        seriesInstanceUid: attrs.seriesInstanceUid,
        studyInstanceUid: attrs.studyInstanceUid,
        sopClassUid: attrs.sopClassUid,
        transferSyntaxUid: req.transferSyntaxUid,
        bytes: this.size,
      },
      t0: this.elapsedMs(),
      legs: {},
    };
    // A known SOP Instance UID is never uploaded again: the index decides. The lookup began
    // with the request (checkMatchesRequest: same UID); a commit of this UID that ended in
    // this process since then (we hold its lock now) makes us ask again. A failed early lookup
    // (index briefly away while receiving) is also asked again.
    const uid = attrs.sopInstanceUid;
    const early = this.lookupState.changedSince(uid)
      ? undefined
      : await this.lookup.then(
          (r) => ({ r }),
          () => undefined,
        );
    this.lookupState.done();
    const existing = early ? early.r : await index.findInstance(uid);
    if (existing) return this.duplicate(rec, c.logFields, undefined, existing);
    return this.o.spool ? this.commitPending(c, this.o.spool) : this.commitDirect(c);
  }

  /** Local stores: put the object (fsync + link), then index it. */
  private async commitDirect(c: Commit): Promise<number> {
    const { store, index, log } = this.o;
    const { rec } = c;
    const put = await this.put(c);
    const t1 = this.elapsedMs();
    let outcome;
    try {
      outcome = await index.recordInstance(rec);
    } catch (err) {
      if (put.created) {
        // Leave no object the index does not know of; the sender will retry.
        await store
          .delete(rec.objectKey)
          .catch((e: unknown) =>
            log.error(
              { event: 'instance.cleanup_failed', key: rec.objectKey, err: String(e) },
              'could not remove object',
            ),
          );
      }
      throw err;
    }
    if (outcome.kind !== 'inserted') return this.duplicate(rec, c.logFields, outcome.kind);
    this.logStored(c, 'instance.stored', t1);
    return DimseStatus.Success;
  }

  /**
   * Remote stores: index as 'pending-upload' first, so that a crash at any later point leaves a
   * row to reconcile rather than an unknown object. Then either answer from the spool
   * (ack: spooled) or upload and mark stored (ack: stored), falling back to the spool.
   */
  private async commitPending(c: Commit, s: NonNullable<IngestOptions['spool']>): Promise<number> {
    const { index, log } = this.o;
    const { rec } = c;
    const uid = rec.attributes.sopInstanceUid;
    rec.state = 'pending-upload';
    rec.pendingOwner = s.spool.owner;
    let outcome: RecordOutcome;
    if (s.ack === 'spooled') {
      // The spool fsyncs and the index commit run side by side: the answer waits for both, and
      // whichever a crash interrupts is undone at start (a spool file without a row, or a
      // pending row without a spool file, was never acknowledged). Latency: max, not sum.
      // The row is written only once every byte is in the file (written()): a process killed
      // at any later point leaves a complete file beside its row. Only a power loss before the
      // fsync can leave a row beside a partial file (the uploader holds it, see alreadyStored).
      const [admitted, recorded] = await Promise.allSettled([
        this.synced()
          .then(() => s.spool.admit(this.o.stagingPath, uid, this.size, true, this.dirSynced))
          .then(() => {
            this.moved = true;
            c.legs.durableMs = round(this.elapsedMs() - c.t0);
          }),
        this.written()
          .then(() => index.recordInstance(rec))
          .then((r) => {
            c.legs.commitMs = round(this.elapsedMs() - c.t0);
            return r;
          }),
      ]);
      if (admitted.status === 'rejected' || recorded.status === 'rejected') {
        if (admitted.status === 'fulfilled') await s.spool.remove(uid);
        if (recorded.status === 'fulfilled' && recorded.value.kind === 'inserted') {
          await index.forgetPending(uid).catch(() => {});
        }
        throw admitted.status === 'rejected'
          ? admitted.reason
          : (recorded as PromiseRejectedResult).reason;
      }
      outcome = recorded.value;
    } else {
      outcome = await index.recordInstance(rec);
    }
    const t1 = this.elapsedMs();
    if (outcome.kind !== 'inserted') {
      // Lost a race with a concurrent copy of the same instance.
      if (s.ack === 'spooled') await s.spool.remove(uid);
      return this.duplicate(rec, c.logFields, outcome.kind);
    }
    const item = {
      sopInstanceUid: uid,
      key: rec.objectKey,
      size: this.size,
      sha256: rec.sha256,
      metadata: c.metadata,
    };
    if (s.ack === 'spooled') {
      s.uploader.enqueue(item);
      this.o.stats.spooled++;
      this.logStored(c, 'instance.spooled', t1);
      return DimseStatus.Success;
    }
    try {
      await withDeadline(this.put(c), s.uploadDeadlineMs, 'upload');
      await index.markStored(uid);
      this.logStored(c, 'instance.stored', t1);
      return DimseStatus.Success;
    } catch (err) {
      // The bucket is down or slow (or the index went away after the upload): keep the file
      // in the spool and let the uploader finish; the guarantee holds once it is fsynced there.
      try {
        await this.synced();
        await s.spool.admit(this.o.stagingPath, uid, this.size, true);
        this.moved = true;
      } catch (spoolErr) {
        await index.forgetPending(uid).catch(() => {});
        throw spoolErr;
      }
      s.uploader.enqueue(item);
      this.o.stats.spooled++;
      log.warn(
        {
          event: 'instance.spool_fallback',
          sopInstanceUid: uid,
          err: err instanceof Error ? err.message : String(err),
        },
        'upload failed or too slow; instance kept in the spool for the uploader',
      );
      this.logStored(c, 'instance.spooled', t1);
      return DimseStatus.Success;
    }
  }

  /** Create-only put; an object already under the key with other bytes was never acknowledged. */
  private async put(c: Commit): Promise<PutResult> {
    const { store, log } = this.o;
    const { rec } = c;
    await this.written();
    // A local store publishes the staged file itself: it waits for our fsync (see `syncing`).
    const synced = this.syncing && this.synced();
    synced?.catch(() => undefined); // a store may not wait for it (remote, or key exists)
    const opts = {
      size: this.size,
      sha256: rec.sha256,
      md5: c.md5,
      metadata: c.metadata,
      synced,
    };
    const put = await store.putFile(rec.objectKey, this.o.stagingPath, { ...opts, ifAbsent: true });
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
      return store.putFile(rec.objectKey, this.o.stagingPath, { ...opts, ifAbsent: false });
    }
    return put;
  }

  private logStored(c: Commit, event: 'instance.stored' | 'instance.spooled', t1: number): void {
    if (event === 'instance.stored') {
      this.o.stats.stored++;
      this.o.stats.bytes += this.size;
    }
    const now = this.elapsedMs();
    this.o.observer?.stored({
      callingAeTitle: this.o.assoc.callingAeTitle,
      sopClassUid: c.rec.attributes.sopClassUid,
      modality: c.rec.attributes.modality,
      bytes: this.size,
      seconds: now / 1000,
      acknowledged: event === 'instance.spooled' ? 'spooled' : 'stored',
    });
    this.o.log.info(
      {
        event,
        ...c.logFields,
        key: c.rec.objectKey,
        ms: round(now),
        receiveMs: round(c.t0),
        storeMs: round(t1 - c.t0),
        indexMs: round(now - t1),
        ...c.legs,
      },
      event === 'instance.stored' ? 'instance stored' : 'instance spooled',
    );
  }

  /**
   * A SOP Instance UID the index knows. Identical bytes: idempotent success. Other bytes:
   * the configured policy (dicom.duplicatePolicy). `existing` is given when the duplicate was
   * found before anything was stored, so the received file is still in staging.
   */
  private async duplicate(
    rec: InstanceRecord,
    logFields: Record<string, unknown>,
    known?: 'identical' | 'conflict',
    existing?: ExistingInstance,
  ): Promise<number> {
    const { index, log } = this.o;
    const outcome = known ?? (await index.recordInstance(rec)).kind;
    this.o.stats.duplicates++;
    this.o.observer?.duplicate({
      callingAeTitle: this.o.assoc.callingAeTitle,
      sopClassUid: rec.attributes.sopClassUid,
      modality: rec.attributes.modality,
      identical: outcome !== 'conflict',
    });
    if (outcome === 'identical' || outcome === 'inserted') {
      log.info(
        { event: 'instance.duplicate', ...logFields, identical: true },
        'instance already stored',
      );
      return DimseStatus.Success;
    }
    const sameUids =
      existing?.state === 'stored' &&
      existing.studyInstanceUid === rec.attributes.studyInstanceUid &&
      existing.seriesInstanceUid === rec.attributes.seriesInstanceUid;
    // Overwrite and keep-versions need the new bytes (still in staging) and a settled row in
    // the same study and series; otherwise the first instance stays, whatever the policy.
    let policy = this.o.duplicatePolicy;
    if ((policy === 'overwrite' || policy === 'keep-versions') && !(existing && sameUids))
      policy = 'keep-first';
    const fields = {
      event: 'instance.duplicate',
      ...logFields,
      identical: false,
      sha256: rec.sha256,
      policy,
    };
    switch (policy) {
      case 'reject':
        log.warn(fields, 'same SOP Instance UID with different content: refused (policy reject)');
        // PS3.7 C.5.6 / Annex C: 0111 "Duplicate SOP Instance".
        throw new GatewayError(
          'GW_ERR_DUPLICATE_REJECTED',
          `SOP Instance ${rec.attributes.sopInstanceUid} is already stored with other content`,
        );
      case 'overwrite': {
        await this.putAs(existing!.objectKey, rec, false);
        await index.replaceInstance(rec);
        log.warn(
          { ...fields, key: existing!.objectKey },
          'same SOP Instance UID with different content: replaced',
        );
        return DimseStatus.Success;
      }
      case 'keep-versions': {
        const key = versionKey(existing!.objectKey, rec.sha256);
        await this.putAs(key, rec, true);
        // A failed record leaves the object (same content, same key: a resend records it).
        await index.recordVersion({ ...rec, objectKey: key });
        log.warn(
          { ...fields, key },
          'same SOP Instance UID with different content: kept as another version',
        );
        return DimseStatus.Success;
      }
      default:
        log.warn(
          fields,
          'same SOP Instance UID with different content received; the first one is kept',
        );
        return DimseStatus.Success;
    }
  }

  /** Uploads the staged file under `key` (duplicate policies; not the ingest fast path). */
  private async putAs(key: string, rec: InstanceRecord, ifAbsent: boolean): Promise<void> {
    await this.written();
    await this.o.store.putFile(key, this.o.stagingPath, {
      size: this.size,
      sha256: rec.sha256,
      md5: this.md5Digest, // absent: the store computes it (see PutFileOptions)
      metadata: this.metadata,
      ifAbsent,
    });
  }

  private elapsedMs(): number {
    return Number(process.hrtime.bigint() - this.started) / 1e6;
  }
}

interface Commit {
  rec: InstanceRecord;
  /** Content-MD5, when hashed while receiving (see the constructor). */
  md5: string | undefined;
  metadata: Record<string, string>;
  logFields: Record<string, unknown>;
  /** ms from the first byte to the end of the data set. */
  t0: number;
  /**
   * ack: spooled, ms from the end of the data set: the spool file durable (file and directory
   * fsynced), and the index row committed. storeMs is the longer of the two.
   */
  legs: { durableMs?: number; commitMs?: number };
}

/** Rejects with GW_ERR_TIMEOUT after `ms`; the operation itself goes on (its result is ignored). */
function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new GatewayError('GW_ERR_TIMEOUT', `${what} took longer than ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

function checkMatchesRequest(attrs: InstanceAttributes, req: StoreRequest): void {
  // PS3.4 B.2.3: A900 "Data Set does not match SOP Class"; a SOP Instance UID that differs
  // from the request's would make the File Meta contradict the data set.
  if (attrs.sopClassUid !== req.sopClassUid) {
    throw new GatewayError(
      'GW_ERR_DATASET_MISMATCH',
      `data set SOP Class UID ${attrs.sopClassUid} differs from the request's ${req.sopClassUid}`,
    );
  }
  if (attrs.sopInstanceUid !== req.sopInstanceUid) {
    throw new GatewayError(
      'GW_ERR_DATASET_MISMATCH',
      `data set SOP Instance UID ${attrs.sopInstanceUid} differs from the request's ${req.sopInstanceUid}`,
    );
  }
}

function asGatewayError(err: unknown, fallback: GatewayError['code']): GatewayError {
  if (isGatewayError(err)) return err;
  return new GatewayError(fallback, err instanceof Error ? err.message : String(err), {
    cause: err,
  });
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

function asciiOnly(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}
