/**
 * Judges an N-ACTION-RQ of the Storage Commitment Push Model before anything is recorded
 * (PS3.4 J.3.2, PS3.7 10.1.4): pure. A request that cannot be a commitment request is
 * answered with the N-ACTION failure status that names what is wrong, and nothing is kept.
 */
import { isValidUid } from '../dicom/uid.js';
import type { DimseCommand } from '../dimse/command.js';
import {
  CommitmentDatasetError,
  decodeCommitmentRequest,
  type SopReference,
} from './commitment-dataset.js';
import {
  REQUEST_STORAGE_COMMITMENT,
  STORAGE_COMMITMENT_SOP_CLASS,
  STORAGE_COMMITMENT_SOP_INSTANCE,
} from './sop.js';

/** PS3.7 10.1.4.1.10: the N-ACTION failure statuses used here. */
export const NActionStatus = {
  Success: 0x0000,
  ProcessingFailure: 0x0110,
  NoSuchSopInstance: 0x0112,
  InvalidArgumentValue: 0x0115,
  InvalidSopInstance: 0x0117,
  NoSuchSopClass: 0x0118,
  NoSuchAction: 0x0123,
  ResourceLimitation: 0x0213,
} as const;

/** More references than this in one request are refused (0213): a bound on one transaction's row. */
export const MAX_REFERENCES = 10_000;

export type CheckedRequest =
  | { ok: true; transactionUid: string; references: SopReference[] }
  | { ok: false; status: number; comment: string };

export function checkCommitmentRequest(
  command: DimseCommand,
  dataset: Buffer,
  transferSyntaxUid: string,
): CheckedRequest {
  const fail = (status: number, comment: string): CheckedRequest => ({
    ok: false,
    status,
    comment,
  });
  if (command.requestedSopClassUid !== STORAGE_COMMITMENT_SOP_CLASS) {
    return fail(
      NActionStatus.NoSuchSopClass,
      `Requested SOP Class UID ${command.requestedSopClassUid ?? '(none)'} is not Storage Commitment Push Model`,
    );
  }
  const instance = command.requestedSopInstanceUid;
  if (instance === undefined || !isValidUid(instance)) {
    return fail(NActionStatus.InvalidSopInstance, `Requested SOP Instance UID is not a UID`);
  }
  if (instance !== STORAGE_COMMITMENT_SOP_INSTANCE) {
    // PS3.4 J.3.1: the well-known instance is the only one.
    return fail(NActionStatus.NoSuchSopInstance, `no SOP instance ${instance}`);
  }
  if (command.actionTypeId !== REQUEST_STORAGE_COMMITMENT) {
    return fail(NActionStatus.NoSuchAction, `Action Type ID ${command.actionTypeId ?? '(none)'}`);
  }
  if (!command.hasDataset) {
    return fail(NActionStatus.InvalidArgumentValue, 'N-ACTION-RQ without a data set');
  }
  let decoded;
  try {
    decoded = decodeCommitmentRequest(dataset, transferSyntaxUid);
  } catch (err) {
    if (!(err instanceof CommitmentDatasetError)) throw err;
    return fail(NActionStatus.InvalidArgumentValue, `data set: ${err.message}`);
  }
  const { transactionUid, references } = decoded;
  if (transactionUid === undefined) {
    return fail(NActionStatus.InvalidArgumentValue, 'no Transaction UID (0008,1195)');
  }
  if (!isValidUid(transactionUid)) {
    return fail(
      NActionStatus.InvalidArgumentValue,
      `Transaction UID "${transactionUid}" is not a UID`,
    );
  }
  if (references === undefined || references.length === 0) {
    return fail(
      NActionStatus.InvalidArgumentValue,
      'empty or absent Referenced SOP Sequence (0008,1199)',
    );
  }
  if (references.length > MAX_REFERENCES) {
    return fail(NActionStatus.ResourceLimitation, `more than ${MAX_REFERENCES} references`);
  }
  for (const [i, r] of references.entries()) {
    if (!isValidUid(r.sopClassUid) || !isValidUid(r.sopInstanceUid)) {
      return fail(
        NActionStatus.InvalidArgumentValue,
        `Referenced SOP Sequence item ${i + 1} lacks a valid SOP Class or Instance UID`,
      );
    }
  }
  return { ok: true, transactionUid, references };
}
