import { DimseStatus } from '../errors.js';
import { putStaged, type CommitContext, type CommitStrategy } from './commit.js';

/**
 * A local store (FsStore): put the object (fsync + link of the staged file itself), then
 * index it; the answer follows both. The staged name is removed afterwards (the object is
 * another link to the file, or a copy of it).
 */
export class DirectCommit implements CommitStrategy {
  // The store links the staged file: its fsync starts with the last byte, and MD5 (for
  // Content-MD5) would be on the path to the answer for nothing.
  readonly receipt = { md5: false, syncEarly: true };

  async commit(c: CommitContext): Promise<number> {
    const { store, index, log, rec, report } = c;
    const put = await putStaged(c);
    const t1 = report.elapsedMs();
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
    if (outcome.kind !== 'inserted') return c.duplicate(outcome.kind);
    report.acknowledged(rec, 'instance.stored', t1);
    return DimseStatus.Success;
  }
}
