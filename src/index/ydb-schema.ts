/**
 * The YDB schema of YdbIndex (docs/ydb.md explains it), created by `migrate` with CREATE TABLE
 * IF NOT EXISTS, each secondary index declared with its table: running it again, or from two
 * processes at once, changes nothing. Keys are the DICOM UIDs themselves (YDB has no serial
 * ids to join on, and a UID key spreads writes over partitions); numeric ids (outbox events,
 * deliveries, commitment transactions, backfill runs) come from the `sequences` table, taken
 * in the transaction that writes the row, so ids are in commit order (see ydb-deliveries.ts).
 */

/** The tables, in creation order; `{t}` is replaced by the table's path. */
export const YDB_TABLES: ReadonlyArray<{ name: string; columns: string }> = [
  {
    name: 'sequences',
    columns: `name Utf8 NOT NULL, value Int64, PRIMARY KEY (name)`,
  },
  {
    name: 'patients',
    columns: `patient_id Utf8 NOT NULL, issuer Utf8 NOT NULL, patient_name Utf8, birth_date Utf8,
      sex Utf8, PRIMARY KEY (patient_id, issuer)`,
  },
  {
    name: 'studies',
    columns: `study_uid Utf8 NOT NULL, patient_id Utf8, issuer Utf8, study_date Utf8,
      study_time Utf8, accession_number Utf8, study_id Utf8, description Utf8,
      referring_physician Utf8, institution Utf8, num_series Int64, num_instances Int64,
      total_bytes Int64, num_pending Int64, first_received_at Timestamp,
      last_received_at Timestamp, PRIMARY KEY (study_uid),
      INDEX studies_date_idx GLOBAL SYNC ON (study_date),
      INDEX studies_recent_idx GLOBAL SYNC ON (last_received_at)`,
  },
  {
    name: 'series',
    columns: `series_uid Utf8 NOT NULL, study_uid Utf8, modality Utf8, series_number Int32,
      description Utf8, body_part Utf8, num_instances Int64, total_bytes Int64,
      last_received_at Timestamp, seq Int64, PRIMARY KEY (series_uid),
      INDEX series_study_idx GLOBAL SYNC ON (study_uid)`,
  },
  {
    name: 'instances',
    columns: `sop_instance_uid Utf8 NOT NULL, series_uid Utf8, study_uid Utf8, sop_class_uid Utf8,
      instance_number Int32, number_of_frames Int32, image_rows Int32, image_columns Int32,
      transfer_syntax_uid Utf8, store_name Utf8, bucket Utf8, object_key Utf8, size Int64,
      sha256 Utf8, calling_ae Utf8, called_ae Utf8, source_address Utf8, state Utf8,
      pending_owner Utf8, received_at Timestamp, labels Utf8, destinations Utf8,
      duplicates_received Int64, last_duplicate_at Timestamp, last_duplicate_sha256 Utf8,
      seq Int64, PRIMARY KEY (sop_instance_uid),
      INDEX instances_study_idx GLOBAL SYNC ON (study_uid),
      INDEX instances_pending_idx GLOBAL SYNC ON (pending_owner, sop_instance_uid),
      INDEX instances_seq_idx GLOBAL SYNC ON (seq)`,
  },
  {
    name: 'instance_versions',
    columns: `sop_instance_uid Utf8 NOT NULL, sha256 Utf8 NOT NULL, store_name Utf8,
      object_key Utf8, size Int64, transfer_syntax_uid Utf8, calling_ae Utf8, called_ae Utf8,
      source_address Utf8, received_at Timestamp, seq Int64,
      PRIMARY KEY (sop_instance_uid, sha256),
      INDEX versions_seq_idx GLOBAL SYNC ON (seq)`,
  },
  {
    name: 'outbox',
    columns: `id Int64 NOT NULL, event_type Utf8, aggregate_uid Utf8, payload Utf8,
      created_at Timestamp, PRIMARY KEY (id)`,
  },
  {
    name: 'outbox_cursors',
    columns: `destination Utf8 NOT NULL, last_id Int64, PRIMARY KEY (destination)`,
  },
  {
    name: 'outbox_deliveries',
    columns: `id Int64 NOT NULL, event_id Int64, destination Utf8, state Utf8, attempts Int64,
      next_attempt_at Timestamp, last_error Utf8, claimed_by Utf8, claimed_until Timestamp,
      delivered_at Timestamp, PRIMARY KEY (id),
      INDEX deliveries_due_idx GLOBAL SYNC ON (destination, state, next_attempt_at, id),
      INDEX deliveries_state_idx GLOBAL SYNC ON (state, id)`,
  },
  {
    name: 'study_activity',
    columns: `study_uid Utf8 NOT NULL, last_activity_at Timestamp, stable_at Timestamp,
      stable_count Int64, is_open Bool, complete_recheck_at Timestamp, PRIMARY KEY (study_uid),
      INDEX activity_open_idx GLOBAL SYNC ON (is_open, last_activity_at)`,
  },
  {
    name: 'backfill_runs',
    columns: `id Int64 NOT NULL, source_ae Utf8, scope Utf8, date_from Utf8, date_to Utf8,
      modality Utf8, study_uid Utf8, state Utf8, cursor_date Utf8, started_at Timestamp,
      updated_at Timestamp, finished_at Timestamp, error Utf8, PRIMARY KEY (id),
      INDEX backfill_runs_scope_idx GLOBAL SYNC ON (source_ae, scope)`,
  },
  {
    name: 'backfill_studies',
    columns: `run_id Int64 NOT NULL, study_uid Utf8 NOT NULL, seq Int64, study_date Utf8,
      outcome Utf8, source_instances Int64, missing_before Int64, moved Int64,
      failed_suboperations Int64, error Utf8, updated_at Timestamp,
      PRIMARY KEY (run_id, study_uid)`,
  },
  {
    name: 'backfill_locks',
    columns: `lock_key Utf8 NOT NULL, owner Utf8, expires_at Timestamp, PRIMARY KEY (lock_key)`,
  },
  {
    name: 'commitment_transactions',
    columns: `id Int64 NOT NULL, transaction_uid Utf8, requester_ae Utf8, called_ae Utf8,
      refs Utf8, state Utf8, report Utf8, event_type Int32, received_at Timestamp,
      deadline_at Timestamp, next_attempt_at Timestamp, attempts Int64, claimed_by Utf8,
      claimed_until Timestamp, last_error Utf8, reported_at Timestamp, PRIMARY KEY (id),
      INDEX commitment_key_idx GLOBAL SYNC ON (requester_ae, transaction_uid),
      INDEX commitment_due_idx GLOBAL SYNC ON (state, next_attempt_at, id)`,
  },
];

/** A table's path in YQL: `name`, or `directory/name` (relative to the database). */
export type TableRef = (name: string) => string;

export function tableRef(directory: string | undefined): TableRef {
  return (name) => (directory ? `\`${directory}/${name}\`` : `\`${name}\``);
}

/** The CREATE TABLE statements migrate runs, in order. */
export function schemaStatements(t: TableRef): string[] {
  return YDB_TABLES.map((tb) => `CREATE TABLE IF NOT EXISTS ${t(tb.name)} (\n  ${tb.columns}\n);`);
}
