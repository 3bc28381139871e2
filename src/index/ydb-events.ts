/**
 * Outbox writes shared by YdbIndex's transactions: the instance event payload (built here in
 * JS, the shape of outbox-event.ts, where PostgreSQL builds it in SQL), the statements that
 * append an event and re-open its study (study_activity, what PostgreSQL's trigger does), and
 * ids from the `sequences` table.
 */
import type { InstanceEventType, InstanceStoredEvent } from './outbox-event.js';
import type { TableRef } from './ydb-schema.js';
import { List } from '@ydbjs/value/list';
import { Struct } from '@ydbjs/value/struct';
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
  private readonly statements: string[] = [];
  private readonly values: Params = {};
  /** Sequences moved (setSequence): written by one statement at the end. */
  private readonly sequences = new Map<string, number>();
  private sequenceTable: string | undefined;
  private n = 0;

  /** Adds a statement; `$name` placeholders in it are made unique with the given values. */
  add(text: string, params: Params): void {
    const k = this.n++;
    let out = text;
    for (const [name, value] of Object.entries(params)) {
      const unique = `${name}_${k}`;
      out = out.replace(new RegExp(`\\$${name}\\b`, 'g'), () => `$${unique}`);
      this.values[unique] = value;
    }
    this.statements.push(out);
  }

  setSequence(table: string, name: string, value: number): void {
    this.sequenceTable = table;
    this.sequences.set(name, value);
  }

  private get all(): { statements: string[]; params: Params } {
    if (!this.sequences.size || this.sequenceTable === undefined) {
      return { statements: this.statements, params: this.values };
    }
    const rows = [...this.sequences].map(
      ([name, value]) => new Struct({ name: ydb.text(name), value: ydb.optInt64(value) }),
    );
    return {
      statements: [
        ...this.statements,
        `UPSERT INTO ${this.sequenceTable} SELECT * FROM AS_TABLE($sequence_rows)`,
      ],
      params: { ...this.values, sequence_rows: new List(...rows) },
    };
  }

  get text(): string {
    return this.all.statements.join(';\n') + ';';
  }

  get params(): Params {
    return this.all.params;
  }

  get empty(): boolean {
    return this.statements.length === 0 && this.sequences.size === 0;
  }
}

/**
 * Writes many rows of one table in one statement (`UPSERT ... SELECT * FROM AS_TABLE($rows)`):
 * YDB has refused several modifications of a table with secondary indexes in one query, so a
 * batch of claims or of closed studies goes as one. Every row must give the same columns, each
 * with the same type (use optText & co. for nullable ones). Only the columns given are written.
 */
export function upsertRows(w: Writes, t: TableRef, table: string, rows: Params[]): void {
  if (!rows.length) return;
  w.add(`UPSERT INTO ${t(table)} SELECT * FROM AS_TABLE($rows)`, {
    rows: new List(...rows.map((r) => new Struct(r))),
  });
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

/** Moves a sequence to `value` (the last id taken), with the batch's other writes. */
export function setSequence(w: Writes, t: TableRef, name: string, value: number): void {
  w.setSequence(t('sequences'), name, value);
}

/**
 * Appends an event with id `id`; an instance event also re-opens its study (not yet stable,
 * and no longer waiting for a completeness recheck: migrations/009_reconcile.sql on PostgreSQL).
 */
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
    `UPSERT INTO ${t('study_activity')} (study_uid, last_activity_at, stable_at, is_open,
       complete_recheck_at)
     VALUES ($study, CurrentUtcTimestamp(), NULL, true, NULL)`,
    { study: ydb.text(studyUid) },
  );
}

/**
 * Appends study.stable events (no study re-opened) in one statement (upsertRows: one query may
 * not modify a table more than once), created at `at`, the database clock read in the
 * transaction.
 */
export function appendStableEvents(
  w: Writes,
  t: TableRef,
  events: ReadonlyArray<{ id: number; studyUid: string; payload: unknown }>,
  at: Date,
): void {
  upsertRows(
    w,
    t,
    'outbox',
    events.map((e) => ({
      id: ydb.int64(e.id),
      event_type: ydb.optText('study.stable'),
      aggregate_uid: ydb.optText(e.studyUid),
      payload: ydb.optText(JSON.stringify(e.payload)),
      created_at: ydb.optTs(at),
    })),
  );
}
