/**
 * Stable studies: a study whose latest instance reached the object store `quietMs` ago gets
 * one `study.stable` outbox event (payload: study-event.ts). The index keeps, per study, when
 * its latest instance event was written and whether that quiet period was announced: each
 * instance event re-opens its study in the statement that writes the event (no extra round
 * trip on the C-STORE path), and a sweep (`emitStableStudies`, run periodically by the notify
 * worker of every gateway) claims quiet studies with FOR UPDATE SKIP LOCKED and writes their
 * events in the same statement. So a study is announced once per quiet period, whichever
 * gateway sweeps and across restarts; a late instance re-opens it and a new study.stable
 * follows after another quiet period.
 *
 * A study with an instance still pending upload (in a gateway's spool) is not quiet: it is
 * announced once that instance is in the store and the quiet time has passed again.
 */
export interface StableSweep {
  /** Studies announced by this call (at most the limit: call again at once when it is reached). */
  emitted: number;
  /** Milliseconds until the next open study comes due; undefined when none will by itself. */
  nextDueMs?: number;
}

export interface StableStudies {
  /**
   * Writes `study.stable` for up to `limit` studies quiet for at least `quietMs` (measured on
   * the database's clock), longest quiet first. Concurrent callers never announce a study
   * twice. Durable.
   */
  emitStableStudies(
    quietMs: number,
    limit: number,
    /** Only these studies (those a completeness check passed, src/notify/stable-gate.ts). */
    only?: readonly string[],
  ): Promise<StableSweep>;
  /**
   * The studies emitStableStudies would announce now, longest quiet first (nothing claimed):
   * for a check before they are announced. Read only.
   */
  dueStableStudies(quietMs: number, limit: number): Promise<string[]>;
  /**
   * Keeps a due study from being due again for `recheckMs` (it was found incomplete, or could
   * not be checked); a new instance of the study ends the wait. Committed.
   */
  deferStableStudy(studyUid: string, recheckMs: number): Promise<void>;
}
