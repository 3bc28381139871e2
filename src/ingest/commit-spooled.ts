import { DimseStatus } from '../errors.js';
import type { RecordOutcome } from '../index/instance-index.js';
import type { CommitContext, CommitStrategy } from './commit.js';
import type { Spool } from './spool.js';
import type { UploadItem, Uploader } from './uploader.js';

/**
 * ack: spooled (S3 stores): answered once the file is fsynced in the spool and indexed as
 * 'pending-upload'; the uploader takes it to the bucket afterwards.
 */
export class SpooledCommit implements CommitStrategy {
  readonly receipt: { md5: false; syncEarly: true; inPlace: Spool };

  constructor(
    private readonly spool: Spool,
    private readonly uploader: Uploader,
  ) {
    // The spool file is kept: its fsync starts with the last byte. The uploader reads the file
    // anyway (it checks the sha256), so MD5 here would only delay the answer.
    this.receipt = { md5: false, syncEarly: true, inPlace: spool };
  }

  async commit(c: CommitContext): Promise<number> {
    const { spool } = this;
    const { index, rec, file, report } = c;
    const uid = rec.attributes.sopInstanceUid;
    markPending(c, spool);
    // The spool fsyncs and the index commit run side by side: the answer waits for both, and
    // whichever a crash interrupts is undone at start (a spool file without a row, or a
    // pending row without a spool file, was never acknowledged). Latency: max, not sum.
    // The row is written only once every byte is in the file (written()): a process killed
    // at any later point leaves a complete file beside its row. Only a power loss before the
    // fsync can leave a row beside a partial file (the uploader holds it, see alreadyStored).
    const [admitted, recorded] = await Promise.allSettled([
      file
        .synced()
        .then(() => spool.admit(file.path, uid, file.size, true, file.dirSynced))
        .then(() => {
          file.handedOver();
          report.legs.durableMs = report.sinceCommitStart();
        }),
      file
        .written()
        .then(() => index.recordInstance(rec))
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
    this.uploader.enqueue(uploadItem(c));
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
