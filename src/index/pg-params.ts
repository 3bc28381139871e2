/**
 * The parameters of pg-queries.ts statements from an InstanceRecord: values PostgreSQL cannot
 * hold (NUL in text, dates that do not exist, numbers beyond int4) become NULL here.
 */
import type { InstanceRecord } from './instance-index.js';

export function recordParams(rec: InstanceRecord, sha256: string): unknown[] {
  const a = rec.attributes;
  const patientId = text(a.patientId) ?? '';
  // The shared no-PatientID row keeps no demographics (see 001_init.sql).
  const demo = patientId !== '';
  // prettier-ignore
  return [
    /* $1 */ patientId, text(a.issuerOfPatientId) ?? '', demo ? text(a.patientName) : null,
    /* $4 */ demo ? dicomDate(a.patientBirthDate) : null, demo ? text(a.patientSex) : null,
    /* $6 */ a.studyInstanceUid, dicomDate(a.studyDate), text(a.studyTime), text(a.accessionNumber),
    /* $10 */ text(a.studyId), text(a.studyDescription), text(a.referringPhysicianName),
    /* $13 */ text(a.institutionName),
    /* $14 */ a.seriesInstanceUid, text(a.modality), int32(a.seriesNumber), text(a.seriesDescription),
    /* $18 */ text(a.bodyPartExamined),
    /* $19 */ a.sopInstanceUid, a.sopClassUid, int32(a.instanceNumber), int32(a.numberOfFrames),
    /* $23 */ int32(a.rows), int32(a.columns), rec.transferSyntaxUid, rec.storeName, rec.objectKey,
    /* $28 */ rec.size, sha256, rec.callingAeTitle, rec.calledAeTitle, rec.sourceAddress,
    /* $33 */ rec.state, rec.receivedAt, rec.state === 'pending-upload' ? (rec.pendingOwner ?? null) : null,
    /* $36 */ text(rec.bucket),
    /* $37 */ rec.labels?.length ? [...rec.labels] : null,
    /* $38 */ rec.destinations?.length ? [...rec.destinations] : null,
  ].map((v) => (typeof v === 'string' ? v.replace(/\0/g, '') : v));
}

/** $1–$8 of REPLACE_SQL and VERSION_SQL: which instance, and what this copy of it is. */
export function copyParams(rec: InstanceRecord): unknown[] {
  // prettier-ignore
  return [
    /* $1 */ rec.attributes.sopInstanceUid, rec.sha256.toLowerCase(), rec.size,
    /* $4 */ rec.transferSyntaxUid, rec.receivedAt,
    /* $6 */ rec.callingAeTitle, rec.calledAeTitle, rec.sourceAddress,
  ];
}

/** PostgreSQL text cannot hold NUL, which DICOM uses as padding; empty means absent. */
function text(v: string | undefined): string | null {
  const s = v?.replace(/\0/g, '').trim();
  return s ? s : null;
}

function int32(v: number | undefined): number | null {
  return v !== undefined && Number.isInteger(v) && v >= -2147483648 && v <= 2147483647 ? v : null;
}

/** DA (YYYYMMDD, or the old YYYY.MM.DD) to ISO; anything that is not a real date is dropped. */
export function dicomDate(v: string | undefined): string | null {
  const m = /^(\d{4})\.?(\d{2})\.?(\d{2})$/.exec(v?.trim() ?? '');
  if (!m) return null;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(y, mo - 1, d));
  const ok = y >= 1 && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
  return ok ? `${m[1]}-${m[2]}-${m[3]}` : null;
}
