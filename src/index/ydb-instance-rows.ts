/**
 * Instance rows of YdbIndex: what a read returns (ExistingInstance) and what an insert writes
 * (the UPSERT's parameters, one per column of ydb-schema.ts's `instances`).
 */
import type { ExistingInstance, InstanceRecord } from './instance-index.js';
import { dicomInt32, dicomText, num, str, ydb, type Row } from './ydb-values.js';

export const INSTANCE_COLUMNS = `sop_instance_uid, study_uid, series_uid, store_name, object_key,
  size, sha256, state`;

export function toExisting(r: Row): ExistingInstance {
  return {
    sopInstanceUid: str(r.sop_instance_uid),
    studyInstanceUid: str(r.study_uid),
    seriesInstanceUid: str(r.series_uid),
    storeName: str(r.store_name),
    objectKey: str(r.object_key),
    size: num(r.size, 'size'),
    sha256: str(r.sha256),
    state: str(r.state) as ExistingInstance['state'],
  };
}

/** The instance row's columns as the event builder reads them. */
export function recordRow(rec: InstanceRecord, sha256: string): Row {
  return {
    sop_instance_uid: rec.attributes.sopInstanceUid,
    study_uid: rec.attributes.studyInstanceUid,
    sop_class_uid: rec.attributes.sopClassUid,
    transfer_syntax_uid: rec.transferSyntaxUid,
    store_name: rec.storeName,
    bucket: dicomText(rec.bucket),
    object_key: rec.objectKey,
    size: rec.size,
    sha256,
    received_at: rec.receivedAt,
    calling_ae: rec.callingAeTitle,
    destinations: rec.destinations?.length ? JSON.stringify(rec.destinations) : null,
  };
}

/** The parameters of the instance row's UPSERT, named like its columns. */
export function instanceRow(rec: InstanceRecord, sha256: string, seq: number) {
  const a = rec.attributes;
  return {
    sop_instance_uid: ydb.text(a.sopInstanceUid),
    series_uid: ydb.text(a.seriesInstanceUid),
    study_uid: ydb.text(a.studyInstanceUid),
    sop_class_uid: ydb.text(a.sopClassUid),
    instance_number: ydb.optInt32(dicomInt32(a.instanceNumber)),
    number_of_frames: ydb.optInt32(dicomInt32(a.numberOfFrames)),
    image_rows: ydb.optInt32(dicomInt32(a.rows)),
    image_columns: ydb.optInt32(dicomInt32(a.columns)),
    transfer_syntax_uid: ydb.text(rec.transferSyntaxUid),
    store_name: ydb.text(rec.storeName),
    bucket: ydb.optText(dicomText(rec.bucket)),
    object_key: ydb.text(rec.objectKey),
    size: ydb.int64(rec.size),
    sha256: ydb.text(sha256),
    calling_ae: ydb.text(rec.callingAeTitle),
    called_ae: ydb.text(rec.calledAeTitle),
    source_address: ydb.text(rec.sourceAddress),
    state: ydb.text(rec.state),
    pending_owner: ydb.optText(rec.state === 'pending-upload' ? (rec.pendingOwner ?? null) : null),
    received_at: ydb.ts(rec.receivedAt),
    labels: ydb.optText(rec.labels?.length ? JSON.stringify(rec.labels) : null),
    destinations: ydb.optText(rec.destinations?.length ? JSON.stringify(rec.destinations) : null),
    duplicates_received: ydb.int64(0),
    seq: ydb.int64(seq),
  };
}
