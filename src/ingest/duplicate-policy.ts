import { DimseStatus, GatewayError } from '../errors.js';
import type { ExistingInstance } from '../index/instance-index.js';
import { versionKey } from '../store/keys.js';
import { putStagedAs, type CommitContext } from './commit.js';

export type DuplicatePolicy = 'keep-first' | 'overwrite' | 'keep-versions' | 'reject';

/**
 * A SOP Instance UID the index knows. Identical bytes: idempotent success. Other bytes: the
 * configured policy (dicom.duplicatePolicy). `existing` is given when the duplicate was found
 * before anything was stored, so the received file is still in staging; `known` when the
 * index said so while recording (a concurrent copy won), else the index is asked.
 */
export async function answerDuplicate(
  c: CommitContext,
  policyConfigured: DuplicatePolicy,
  logFields: Record<string, unknown>,
  known?: 'identical' | 'conflict',
  existing?: ExistingInstance,
): Promise<number> {
  const { index, log, rec } = c;
  const outcome = known ?? (await index.recordInstance(rec)).kind;
  c.report.duplicate(rec, outcome !== 'conflict');
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
  let policy = policyConfigured;
  const versioned = policy === 'overwrite' || policy === 'keep-versions';
  const first =
    existing ??
    (known === 'conflict' && versioned
      ? await c.index.findInstance(rec.attributes.sopInstanceUid)
      : undefined);
  if (versioned && first?.state === 'pending-upload') {
    // The first copy is acknowledged but still waits for its upload: the policy cannot act on
    // it yet, and 0000 must never mean "dropped". PS3.4 B.2.3: A700 is transient, the sender
    // retries, and once the upload is done the policy applies to the retry.
    log.warn(
      {
        event: 'instance.duplicate',
        ...logFields,
        identical: false,
        sha256: rec.sha256,
        policy,
        deferred: true,
      },
      'same SOP Instance UID with different content while the first copy is pending upload: A700, retry later',
    );
    throw new GatewayError(
      'GW_ERR_STORE_CONFLICT',
      `SOP Instance ${rec.attributes.sopInstanceUid}: an earlier copy with other content is pending upload; retry later`,
    );
  }
  // Overwrite and keep-versions need the new bytes (still in staging) and a settled row in
  // the same study and series; otherwise the first instance stays, whatever the policy.
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
      await putStagedAs(c, existing!.objectKey, false);
      await index.replaceInstance(rec);
      log.warn(
        { ...fields, key: existing!.objectKey },
        'same SOP Instance UID with different content: replaced',
      );
      return DimseStatus.Success;
    }
    case 'keep-versions': {
      const key = versionKey(existing!.objectKey, rec.sha256);
      await putStagedAs(c, key, true);
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
