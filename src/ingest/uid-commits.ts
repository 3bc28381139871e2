/** An early index lookup's validity, as UidCommits.startLookup hands it to a writer. */
export interface LookupState {
  /** A commit of `uid` ended in this process since the lookup began: ask the index again. */
  changedSince(uid: string): boolean;
  /** The writer is done with its lookup. */
  done(): void;
}

/**
 * The commits of this process by SOP Instance UID: one at a time per UID (withUidLock), and
 * whether one ended since a writer's early index lookup began (startLookup).
 */
export class UidCommits {
  /** SOP Instance UIDs being committed, with the promise of that commit (see withUidLock). */
  private readonly inFlight = new Map<string, Promise<unknown>>();
  /** Counts commits that ended; with `endedAt`, tells a writer whether its early lookup is stale. */
  private commitSeq = 0;
  /** SOP Instance UID -> commitSeq when its last commit ended (pruned, see noteCommitEnd). */
  private readonly endedAt = new Map<string, number>();
  /** commitSeq at the start of each writer's early lookup, while that writer lives. */
  private readonly lookupSince = new Map<object, number>();

  /**
   * Runs `fn` once no other commit of the same SOP Instance UID is in progress in this process:
   * two associations delivering one instance at once must not share a spool path or both upload.
   * (Across processes the index's unique key and create-only writes decide.) `bound` wraps
   * each wait for another commit (SameUidWait: a deadline, the peer going away).
   */
  async withUidLock<T>(
    uid: string,
    fn: () => Promise<T>,
    bound: (other: Promise<void>) => Promise<void> = (other) => other,
  ): Promise<T> {
    for (;;) {
      const busy = this.inFlight.get(uid);
      if (!busy) break;
      await bound(
        busy.then(
          () => undefined,
          () => undefined,
        ),
      );
    }
    const run = fn();
    this.inFlight.set(uid, run);
    try {
      return await run;
    } finally {
      this.inFlight.delete(uid);
      this.noteCommitEnd(uid);
    }
  }

  /**
   * For the early index lookup a writer starts when the C-STORE request arrives (it runs
   * while the data set is received): the lookup is only trusted when no commit of the same
   * SOP Instance UID ended in this process since it began; otherwise the writer asks again.
   */
  startLookup(owner: object): LookupState {
    const since = this.commitSeq;
    this.lookupSince.set(owner, since);
    return {
      changedSince: (uid) => (this.endedAt.get(uid) ?? -1) >= since,
      done: () => this.lookupSince.delete(owner),
    };
  }

  private noteCommitEnd(uid: string): void {
    this.endedAt.set(uid, this.commitSeq++);
    if (this.endedAt.size < 1024) return;
    // Only lookups still alive can be stale: forget commits older than the oldest of them.
    let oldest = this.commitSeq;
    for (const since of this.lookupSince.values()) oldest = Math.min(oldest, since);
    for (const [k, at] of this.endedAt) if (at < oldest) this.endedAt.delete(k);
  }
}
