import { DimseStatus } from '../errors.js';
import type { RecordOutcome } from '../index/instance-index.js';
import type { CommitContext, CommitStrategy } from './commit.js';
import type { Spool } from './spool.js';
import { encodeTrailer, type SpoolRecord } from './spool-record.js';
import type { UploadItem, Uploader } from './uploader.js';

/**
 * ack: spooled: answered once the file, with its spool record as a trailer, is fsynced in the
 * spool and the instance is indexed as 'pending-upload'; the uploader takes it to the store
 * afterwards.
 */
export class SpooledCommit implements CommitStrategy {
  readonly receipt: { md5: false; syncEarly: false; inPlace: Spool };

  constructor(
    private readonly spool: Spool,
    private readonly uploader: Uploader,
  ) {
    // The fsync waits for the record (appended in commit), so that one fsync makes both
    // durable. No MD5 while receiving: measured, it added 0.7 ms of main-thread time to each
    // instance's receipt (one association: 197 against 220 inst/s) and did not speed up the
    // drain; the uploader computes it in the read that also checks the sha256.
    this.receipt = { md5: false, syncEarly: false, inPlace: spool };
  }

  async commit(c: CommitContext): Promise<number> {
    const { spool } = this;
    const { index, rec, file, report } = c;
    const uid = rec.attributes.sopInstanceUid;
    markPending(c, spool);
    // The record (the row as written now, with the Part-10 size and sha256) follows the
    // Part-10 bytes in the same file, so the file's one fsync makes both durable: no second
    // disk flush for the record.
    file.appendTrailer(encodeTrailer(spoolRecord(c)));
    // The spool's fsyncs and the index commit run side by side: the answer waits for both, and
    // whichever a crash interrupts is undone at start (a spool file with neither a row nor a
    // whole record, or a pending row without a spool file, was never acknowledged). Latency:
    // max, not sum. Both start only once every byte is in the file (written()): a process
    // killed at any later point leaves a complete file beside its row.
    // The row's commit does not wait for the database's flush (RecordOptions.flush): the
    // record restores a row that a database crash took back (Uploader.recover), so the
    // database's disk flush is off the answer's path.
    const [admitted, recorded] = await Promise.allSettled([
      // synced(): the fsync follows the last write, the record's included.
      file
        .synced()
        .then(() => spool.admit(file.path, uid, file.size, true, file.dirSynced))
        .then(() => {
          file.handedOver();
          report.legs.durableMs = report.sinceCommitStart();
        }),
      file
        .written()
        .then(() => index.recordInstance(rec, { flush: false }))
        .then((r) => {
          report.legs.commitMs = report.sinceCommitStart();
          return r;
        }),
    ]);
    if (admitted.status === 'rejected' || recorded.status === 'rejected') {
      if (admitted.status === 'fulfilled') await spool.remove(uid);
      if (recorded.status === 'fulfilled' && recorded.value.kind === 'inserted') {
        await index.forgetPending(uid).catch(() => {});
      }
      throw admitted.status === 'rejected'
        ? admitted.reason
        : (recorded as PromiseRejectedResult).reason;
    }
    const outcome: RecordOutcome = recorded.value;
    const t1 = report.elapsedMs();
    if (outcome.kind !== 'inserted') {
      // Lost a race with a concurrent copy of the same instance.
      await spool.remove(uid);
      return c.duplicate(outcome.kind);
    }
    this.uploader.enqueue({ ...uploadItem(c), trailer: true });
    report.acknowledged(rec, 'instance.spooled', t1);
    return DimseStatus.Success;
  }
}

/**
 * Remote stores index the instance as 'pending-upload' first, owned by the spool that holds
 * (or will hold) its file, so that a crash at any later point leaves a row to reconcile
 * rather than an unknown object.
 */
export function markPending(c: CommitContext, spool: Spool): void {
  c.rec.state = 'pending-upload';
  c.rec.pendingOwner = spool.owner;
}

/** The spool record of the instance being committed (its row as it is written now). */
export function spoolRecord(c: CommitContext): SpoolRecord {
  return { rec: c.rec, metadata: c.metadata };
}

/** What the uploader needs to take the spool file to the store. */
export function uploadItem(c: CommitContext): UploadItem {
  return {
    sopInstanceUid: c.rec.attributes.sopInstanceUid,
    key: c.rec.objectKey,
    size: c.file.size,
    sha256: c.rec.sha256,
    metadata: c.metadata,
    fresh: true,
  };
}
