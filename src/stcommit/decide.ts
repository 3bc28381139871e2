/**
 * The decision table of storage commitment (PS3.4 J.3.3), pure: what to say about each
 * referenced instance, and whether a transaction can be reported yet.
 *
 * An instance is committed only when it is in its final store: its index row is `stored`
 * (S3 stores: after the upload, whose sha256 or Content-MD5 the server checked and whose
 * sha256 is in the object's metadata; fs stores: after fsync + link), under the SOP class the
 * requester names.
 */
import { FailureReason, type FailedSop, type SopReference } from './commitment-dataset.js';

/** What the index says of one referenced SOP Instance UID; undefined: no row. */
export interface IndexedInstance {
  sopClassUid: string;
  state: 'stored' | 'pending-upload';
}

export type InstanceDecision =
  | { kind: 'committed' }
  | { kind: 'failed'; reason: number }
  | { kind: 'pending'; why: 'uploading' | 'not-yet-received' };

export interface DecisionContext {
  /** Since the transaction was received, in ms. */
  ageMs: number;
  /** An unknown instance may still be arriving (on this or another gateway) this long. */
  unknownGraceMs: number;
  /** Past the deadline nothing stays pending: what is not committed has failed. */
  pastDeadline: boolean;
}

export function decideInstance(
  ref: SopReference,
  found: IndexedInstance | undefined,
  ctx: DecisionContext,
): InstanceDecision {
  if (!found) {
    if (ctx.ageMs < ctx.unknownGraceMs && !ctx.pastDeadline) {
      return { kind: 'pending', why: 'not-yet-received' };
    }
    return { kind: 'failed', reason: FailureReason.NoSuchObjectInstance }; // 0112
  }
  if (found.sopClassUid !== ref.sopClassUid) {
    return { kind: 'failed', reason: FailureReason.ClassInstanceConflict }; // 0119
  }
  if (found.state === 'stored') return { kind: 'committed' };
  if (ctx.pastDeadline) {
    // Received but never made safe in time (the store stayed down): 0110 Processing failure.
    return { kind: 'failed', reason: FailureReason.ProcessingFailure };
  }
  return { kind: 'pending', why: 'uploading' };
}

export type TransactionDecision =
  | { kind: 'pending'; pending: number }
  | { kind: 'report'; committed: SopReference[]; failed: FailedSop[] };

/** Reported once no instance is pending (a report is final: PS3.4 J.3.3 sends one per transaction). */
export function decideTransaction(
  references: readonly SopReference[],
  found: ReadonlyMap<string, IndexedInstance>,
  ctx: DecisionContext,
): TransactionDecision {
  const committed: SopReference[] = [];
  const failed: FailedSop[] = [];
  let pending = 0;
  for (const ref of references) {
    const d = decideInstance(ref, found.get(ref.sopInstanceUid), ctx);
    if (d.kind === 'committed') committed.push(ref);
    else if (d.kind === 'failed') failed.push({ ...ref, failureReason: d.reason });
    else pending++;
  }
  if (pending > 0) return { kind: 'pending', pending };
  return { kind: 'report', committed, failed };
}
