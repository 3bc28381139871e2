/**
 * The SQL statements of PgIndex (src/index/pg-index.ts), on the schema of ./migrations. Each is one
 * statement run in autocommit: its writes commit together or not at all. Every statement that
 * writes an event builds its payload with instanceEventSql (outbox-event.ts).
 */
import { instanceEventSql, isoUtcSql } from './outbox-event.js';

/** The payload of an event from RECORD_SQL's parameters. */
const RECORD_EVENT = instanceEventSql({
  sopInstanceUid: '$19::text',
  seriesInstanceUid: '$14::text',
  studyInstanceUid: '$6::text',
  patientId: "NULLIF($1::text, '')",
  sopClassUid: '$20::text',
  modality: '$15::text',
  transferSyntaxUid: '$25::text',
  storeName: '$26::text',
  bucket: '$36::text',
  key: '$27::text',
  size: '$28::bigint',
  sha256: '$29::text',
  receivedAt: isoUtcSql('$34::timestamptz'),
  callingAeTitle: '$30::text',
  destinations: 'to_jsonb($38::text[])',
});

/** What an UPDATE of `instances i` returns for ROW_EVENT (with series_uid, modality, study_uid, patient_id beside it). */
const EVENT_INSTANCE_COLUMNS = `i.sop_instance_uid, i.sop_class_uid, i.transfer_syntax_uid,
  i.store_name, i.bucket, i.object_key, i.size, i.sha256, i.received_at, i.calling_ae,
  i.destinations`;

/** The payload of an event from the columns of an instance row and its series, study, patient. */
const ROW_EVENT = instanceEventSql({
  sopInstanceUid: 'sop_instance_uid',
  seriesInstanceUid: 'series_uid',
  studyInstanceUid: 'study_uid',
  patientId: "NULLIF(patient_id, '')",
  sopClassUid: 'sop_class_uid',
  modality: 'modality',
  transferSyntaxUid: 'transfer_syntax_uid',
  storeName: 'store_name',
  bucket: 'bucket',
  key: 'object_key',
  size: 'size',
  sha256: 'sha256',
  receivedAt: isoUtcSql('received_at'),
  callingAeTitle: 'calling_ae',
  destinations: 'to_jsonb(destinations)',
});

// Upserts the patient, study and series, then inserts the instance; DO NOTHING when the SOP
// Instance UID exists. The counters are the instances_count trigger's job (see 001_init.sql).
// - Row locks are always taken in the order patient, study, series, so concurrent stores into one
//   study queue up instead of deadlocking; the unique keys turn a lost race into an update.
// - An upsert writes only when a new non-empty value differs (its WHERE), so the hot study and
//   series rows get one new version per instance (the trigger's), not three. ON CONFLICT locks the
//   row even when its WHERE is false; the id then comes from a plain read, which misses a row
//   committed by a concurrent store after this statement's snapshot: the chain comes out empty,
//   nothing is written, and recordInstance runs the statement again (see there).
// - `existing` skips all writes for a resend of a known instance (the common duplicate).
// - $39 false: the commit does not wait for its WAL flush (RecordOptions.flush).
export const RECORD_SQL = `
WITH existing AS (SELECT 1 FROM instances WHERE sop_instance_uid = $19::text),
pat_up AS (
  INSERT INTO patients AS p (patient_id, issuer, patient_name, birth_date, sex)
  SELECT $1::text, $2::text, $3::text, $4::date, $5::text WHERE NOT EXISTS (SELECT 1 FROM existing)
  ON CONFLICT (patient_id, issuer) DO UPDATE SET
    patient_name = COALESCE(EXCLUDED.patient_name, p.patient_name),
    birth_date = COALESCE(EXCLUDED.birth_date, p.birth_date),
    sex = COALESCE(EXCLUDED.sex, p.sex)
  WHERE ROW(p.patient_name, p.birth_date, p.sex) IS DISTINCT FROM
    ROW(COALESCE(EXCLUDED.patient_name, p.patient_name), COALESCE(EXCLUDED.birth_date, p.birth_date),
      COALESCE(EXCLUDED.sex, p.sex))
  RETURNING p.id),
pat AS (
  SELECT id FROM pat_up
  UNION ALL
  SELECT id FROM patients WHERE patient_id = $1::text AND issuer = $2::text
    AND NOT EXISTS (SELECT 1 FROM pat_up) AND NOT EXISTS (SELECT 1 FROM existing)),
st_up AS (
  INSERT INTO studies AS s (study_uid, patient_fk, study_date, study_time, accession_number, study_id,
    description, referring_physician, institution, first_received_at, last_received_at)
  SELECT $6::text, pat.id, $7::date, $8::text, $9::text, $10::text, $11::text, $12::text, $13::text,
    $34::timestamptz, $34::timestamptz FROM pat
  ON CONFLICT (study_uid) DO UPDATE SET
    study_date = COALESCE(EXCLUDED.study_date, s.study_date),
    study_time = COALESCE(EXCLUDED.study_time, s.study_time),
    accession_number = COALESCE(EXCLUDED.accession_number, s.accession_number),
    study_id = COALESCE(EXCLUDED.study_id, s.study_id),
    description = COALESCE(EXCLUDED.description, s.description),
    referring_physician = COALESCE(EXCLUDED.referring_physician, s.referring_physician),
    institution = COALESCE(EXCLUDED.institution, s.institution)
  WHERE ROW(s.study_date, s.study_time, s.accession_number, s.study_id, s.description,
      s.referring_physician, s.institution) IS DISTINCT FROM
    ROW(COALESCE(EXCLUDED.study_date, s.study_date), COALESCE(EXCLUDED.study_time, s.study_time),
      COALESCE(EXCLUDED.accession_number, s.accession_number), COALESCE(EXCLUDED.study_id, s.study_id),
      COALESCE(EXCLUDED.description, s.description),
      COALESCE(EXCLUDED.referring_physician, s.referring_physician),
      COALESCE(EXCLUDED.institution, s.institution))
  RETURNING s.id),
st AS (
  SELECT id FROM st_up
  UNION ALL
  SELECT id FROM studies WHERE study_uid = $6::text
    AND NOT EXISTS (SELECT 1 FROM st_up) AND EXISTS (SELECT 1 FROM pat)),
se_up AS (
  INSERT INTO series AS r (series_uid, study_fk, modality, series_number, description, body_part)
  SELECT $14::text, st.id, $15::text, $16::int, $17::text, $18::text FROM st
  ON CONFLICT (series_uid) DO UPDATE SET
    modality = COALESCE(EXCLUDED.modality, r.modality),
    series_number = COALESCE(EXCLUDED.series_number, r.series_number),
    description = COALESCE(EXCLUDED.description, r.description),
    body_part = COALESCE(EXCLUDED.body_part, r.body_part)
  WHERE ROW(r.modality, r.series_number, r.description, r.body_part) IS DISTINCT FROM
    ROW(COALESCE(EXCLUDED.modality, r.modality), COALESCE(EXCLUDED.series_number, r.series_number),
      COALESCE(EXCLUDED.description, r.description), COALESCE(EXCLUDED.body_part, r.body_part))
  RETURNING r.id),
se AS (
  SELECT id FROM se_up
  UNION ALL
  SELECT id FROM series WHERE series_uid = $14::text
    AND NOT EXISTS (SELECT 1 FROM se_up) AND EXISTS (SELECT 1 FROM st)),
ins AS (
  INSERT INTO instances (sop_instance_uid, series_fk, sop_class_uid, instance_number,
    number_of_frames, rows, columns, transfer_syntax_uid, store_name, object_key, size, sha256,
    calling_ae, called_ae, source_address, state, received_at, pending_owner, bucket, labels,
    destinations)
  SELECT $19::text, se.id, $20::text, $21::int, $22::int, $23::int, $24::int, $25::text, $26::text,
    $27::text, $28::bigint, $29::text, $30::text, $31::text, $32::text, $33::text, $34::timestamptz,
    $35::text, $36::text, $37::text[], $38::text[]
  FROM se
  ON CONFLICT (sop_instance_uid) DO NOTHING
  RETURNING id),
ev AS (
  INSERT INTO outbox (event_type, aggregate_uid, payload)
  SELECT 'instance.stored', $6::text, ${RECORD_EVENT}
  FROM ins WHERE $33::text = 'stored'
  RETURNING id)
SELECT (SELECT count(*) FROM ins)::int AS inserted,
  set_config('synchronous_commit',
    CASE WHEN $39::boolean THEN current_setting('synchronous_commit') ELSE 'off' END, true) AS commit_mode`;

// A separate statement, so its snapshot sees a row committed by a concurrent store that won the
// race. Only other bytes count as a duplicate.
export const DUPLICATE_SQL = `
WITH cur AS (${instanceSelect('i.sop_instance_uid = $1')}),
dup AS (
  UPDATE instances SET duplicates_received = duplicates_received + 1,
    last_duplicate_at = $3, last_duplicate_sha256 = $2
  WHERE sop_instance_uid = $1 AND sha256 <> $2
  RETURNING id)
SELECT cur.*, (SELECT count(*) FROM dup)::int AS counted FROM cur`;

// The commit does not wait for its WAL flush (synchronous_commit off for this transaction only):
// the object is already in the bucket, and a commit lost in a crash leaves the row pending,
// which the start-up reconciliation settles (object present with the same sha256 -> stored,
// event written then). This takes one disk flush per instance off the ingest path's disk.
export const MARK_STORED_SQL = `
WITH upd AS (
  UPDATE instances i SET state = 'stored', pending_owner = NULL
  FROM series r JOIN studies s ON s.id = r.study_fk JOIN patients p ON p.id = s.patient_fk
  WHERE i.sop_instance_uid = $1 AND i.state = 'pending-upload' AND r.id = i.series_fk
  RETURNING ${EVENT_INSTANCE_COLUMNS}, r.series_uid, r.modality, s.study_uid, p.patient_id),
ev AS (
  INSERT INTO outbox (event_type, aggregate_uid, payload)
  SELECT 'instance.stored', study_uid, ${ROW_EVENT} FROM upd)
SELECT EXISTS (SELECT 1 FROM instances WHERE sop_instance_uid = $1) AS found,
  set_config('synchronous_commit', 'off', true) AS async_commit`;

// Duplicate policy 'overwrite': new content under the same key. Counters move by the size delta;
// an UPDATE fires neither count trigger.
export const REPLACE_SQL = `
WITH old AS (
  SELECT id, size FROM instances WHERE sop_instance_uid = $1 AND state = 'stored' FOR UPDATE),
upd AS (
  UPDATE instances i SET sha256 = $2, size = $3, transfer_syntax_uid = $4, received_at = $5,
    calling_ae = $6, called_ae = $7, source_address = $8
  FROM old WHERE i.id = old.id
  RETURNING i.series_fk, old.size AS old_size, ${EVENT_INSTANCE_COLUMNS}),
ser AS (
  UPDATE series r SET total_bytes = r.total_bytes - upd.old_size + $3::bigint
  FROM upd WHERE r.id = upd.series_fk RETURNING r.study_fk, r.series_uid, r.modality),
stu AS (
  UPDATE studies s SET total_bytes = s.total_bytes - upd.old_size + $3::bigint
  FROM ser, upd WHERE s.id = ser.study_fk RETURNING s.study_uid, s.patient_fk),
ev AS (
  INSERT INTO outbox (event_type, aggregate_uid, payload)
  SELECT 'instance.replaced', study_uid, ${ROW_EVENT}
  FROM upd, ser, stu JOIN patients p ON p.id = stu.patient_fk)
SELECT count(*)::int AS n FROM upd`;

// $1–$8 as in REPLACE_SQL (pg-index.ts copyParams), $9 store name, $10 object key. The instance
// row is locked (FOR SHARE) so that a concurrent delete cannot leave the version without its
// instance; a missing stored row inserts nothing and returns 0 (reported as an error).
export const VERSION_SQL = `
WITH inst AS (
  SELECT id FROM instances WHERE sop_instance_uid = $1 AND state = 'stored' FOR SHARE),
ins AS (
  INSERT INTO instance_versions (instance_fk, store_name, object_key, size, sha256,
    transfer_syntax_uid, calling_ae, called_ae, source_address, received_at)
  SELECT inst.id, $9, $10, $3, $2, $4, $6, $7, $8, $5 FROM inst
  ON CONFLICT (instance_fk, sha256) DO NOTHING
  RETURNING 1)
SELECT (SELECT count(*) FROM inst)::int AS n`;

export const STUDY_SQL = `
SELECT s.study_uid, p.patient_id, p.patient_name, to_char(s.study_date, 'YYYYMMDD') AS study_date,
  s.accession_number, s.description, s.num_series, s.num_instances, s.total_bytes,
  s.first_received_at, s.last_received_at,
  ARRAY(SELECT DISTINCT r.modality FROM series r
        WHERE r.study_fk = s.id AND r.num_instances > 0 AND r.modality IS NOT NULL
        ORDER BY 1) AS modalities
FROM studies s JOIN patients p ON p.id = s.patient_fk
WHERE s.study_uid = $1`;

export function instanceSelect(where: string): string {
  return `SELECT i.sop_instance_uid, s.study_uid, r.series_uid, i.store_name, i.object_key, i.size,
    i.sha256, i.state FROM instances i JOIN series r ON r.id = i.series_fk
    JOIN studies s ON s.id = r.study_fk WHERE ${where}`;
}
