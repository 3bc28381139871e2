import { setTimeout as sleep } from 'node:timers/promises';
import { DimseStatus, GatewayError } from '../errors.js';
import type { ObjectStore } from '../store/object-store.js';
import { putStaged, type CommitContext, type CommitStrategy, type ReceiptHints } from './commit.js';
import { markPending, uploadItem } from './commit-spooled.js';
import type { Spool } from './spool.js';
import type { Uploader } from './uploader.js';

/**
 * ack: stored (S3 stores): indexed as 'pending-upload', uploaded, marked 'stored', then
 * answered. When the bucket is down or slower than the deadline, the file is kept in the
 * spool for the uploader instead and answered from there.
 */
export class StoredCommit implements CommitStrategy {
  constructor(
    private readonly spool: Spool,
    private readonly uploader: Uploader,
    private readonly uploadDeadlineMs: number,
    private readonly store: ObjectStore,
  ) {}

  /**
   * The store sends the staged file itself: MD5 hashed while receiving when the store would
   * otherwise read the file for its Content-MD5 (a server that does not check signed
   * payloads). The fsync is only needed on the fallback to the spool.
   */
  get receipt(): ReceiptHints {
    return { md5: this.store.wantsMd5?.() ?? false, syncEarly: false };
  }

  async commit(c: CommitContext): Promise<number> {
    const { spool } = this;
    const { index, rec, file, report, log } = c;
    const uid = rec.attributes.sopInstanceUid;
    markPending(c, spool);
    const outcome = await index.recordInstance(rec);
    const t1 = report.elapsedMs();
    // Lost a race with a concurrent copy of the same instance.
    if (outcome.kind !== 'inserted') return c.duplicate(outcome.kind);
    try {
      await withinDeadline(putStaged(c), this.uploadDeadlineMs, 'upload');
      await index.markStored(uid);
      report.acknowledged(rec, 'instance.stored', t1);
      return DimseStatus.Success;
    } catch (err) {
      // The bucket is down or slow (or the index went away after the upload): keep the file
      // in the spool and let the uploader finish; the guarantee holds once it is fsynced there.
      try {
        await file.synced();
        await spool.admit(file.path, uid, file.size, true);
        file.handedOver();
      } catch (spoolErr) {
        await index.forgetPending(uid).catch(() => {});
        throw spoolErr;
      }
      this.uploader.enqueue(uploadItem(c));
      log.warn(
        {
          event: 'instance.spool_fallback',
          sopInstanceUid: uid,
          err: err instanceof Error ? err.message : String(err),
        },
        'upload failed or too slow; instance kept in the spool for the uploader',
      );
      report.acknowledged(rec, 'instance.spooled', t1);
      return DimseStatus.Success;
    }
  }
}

/** Rejects with GW_ERR_TIMEOUT after `ms`; the operation itself goes on (its result is ignored). */
async function withinDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  const settled = new AbortController();
  const deadline = sleep(ms, undefined, { signal: settled.signal }).then(() => {
    throw new GatewayError('GW_ERR_TIMEOUT', `${what} took longer than ${ms} ms`);
  });
  deadline.catch(() => undefined); // aborted once `p` settles
  try {
    return await Promise.race([p, deadline]);
  } finally {
    settled.abort();
  }
}
