/**
 * Outbox writes shared by YdbIndex's transactions: the instance event payload (built here in
 * JS, the shape of outbox-event.ts, where PostgreSQL builds it in SQL), the statements that
 * append an event and re-open its study (study_activity, what PostgreSQL's trigger does), and
 * ids from the `sequences` table.
 */
import type { InstanceEventType, InstanceStoredEvent } from './outbox-event.js';
import type { TableRef } from './ydb-schema.js';
import { num, ydb, type Params, type Row } from './ydb-values.js';

/** What an instance event says, from the instance row and its series and study. */
export function instanceEvent(
  i: Row,
  series: { series_uid: unknown; modality: unknown },
  patientId: string | undefined,
): InstanceStoredEvent {
  const e: InstanceStoredEvent = {
    sopInstanceUid: String(i.sop_instance_uid),
    seriesInstanceUid: String(series.series_uid),
    studyInstanceUid: String(i.study_uid),
    sopClassUid: String(i.sop_class_uid),
    transferSyntaxUid: String(i.transfer_syntax_uid),
    storeName: String(i.store_name),
    key: String(i.object_key),
    size: num(i.size, 'size'),
    sha256: String(i.sha256),
    receivedAt: (i.received_at as Date).toISOString(),
    callingAeTitle: String(i.calling_ae),
  };
  if (patientId) e.patientId = patientId;
  if (typeof series.modality === 'string') e.modality = series.modality;
  if (typeof i.bucket === 'string') e.bucket = i.bucket;
  const d = typeof i.destinations === 'string' ? (JSON.parse(i.destinations) as string[]) : [];
  if (d.length) e.destinations = d;
  // Key order as PostgreSQL's jsonb gives it does not matter: consumers parse the JSON.
  return e;
}

/** A batch of write statements with their parameters, run as one query at the end of a tx. */
export class Writes {
  readonly statements: string[] = [];
  readonly params: Params = {};
  private n = 0;

  /** Adds a statement; `$name` placeholders in it are made unique with the given values. */
  add(text: string, params: Params): void {
    const k = this.n++;
    let out = text;
    for (const [name, value] of Object.entries(params)) {
      const unique = `${name}_${k}`;
      out = out.replace(new RegExp(`\\$${name}\\b`, 'g'), () => `$${unique}`);
      this.params[unique] = value;
    }
    this.statements.push(out);
  }

  get text(): string {
    return this.statements.join(';\n') + ';';
  }

  get empty(): boolean {
    return this.statements.length === 0;
  }
}

/** The current value of each named sequence (0 when never used), from a read result. */
export function sequenceValues(rows: Row[] | undefined): Map<string, number> {
  return new Map((rows ?? []).map((r) => [String(r.name), num(r.value, 'sequence')]));
}

export function sequencesRead(t: TableRef, names: readonly string[]): string {
  return `SELECT name, value FROM ${t('sequences')} WHERE name IN (${names
    .map((n) => `'${n}'u`)
    .join(', ')})`;
}

/** Moves a sequence to `value` (the last id taken). */
export function setSequence(w: Writes, t: TableRef, name: string, value: number): void {
  w.add(`UPSERT INTO ${t('sequences')} (name, value) VALUES ($name, $value)`, {
    name: ydb.text(name),
    value: ydb.int64(value),
  });
}

/** Appends an event with id `id`; an instance event also re-opens its study (not yet stable). */
export function appendEvent(
  w: Writes,
  t: TableRef,
  id: number,
  type: InstanceEventType | 'study.stable',
  studyUid: string,
  payload: unknown,
): void {
  w.add(
    `UPSERT INTO ${t('outbox')} (id, event_type, aggregate_uid, payload, created_at)
     VALUES ($id, $type, $study, $payload, CurrentUtcTimestamp())`,
    {
      id: ydb.int64(id),
      type: ydb.text(type),
      study: ydb.text(studyUid),
      payload: ydb.text(JSON.stringify(payload)),
    },
  );
  if (type === 'study.stable') return;
  w.add(
    `UPSERT INTO ${t('study_activity')} (study_uid, last_activity_at, stable_at, is_open)
     VALUES ($study, CurrentUtcTimestamp(), NULL, true)`,
    { study: ydb.text(studyUid) },
  );
}
