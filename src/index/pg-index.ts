/**
 * PgIndex: the InstanceIndex on PostgreSQL 15+ (schema: ./migrations). One pg.Pool; every
 * operation is a single statement in autocommit, so a recorded instance costs one round trip and
 * its rows, counters (trigger) and outbox event commit together or not at all.
 */
import pg from 'pg';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import type {
  ExistingInstance,
  InstanceIndex,
  InstanceRecord,
  OutboxEvent,
  RecordOutcome,
  StudySummary,
} from './instance-index.js';
import { migrate } from './migrate.js';

export interface PgIndexOptions {
  connectionString: string;
  poolSize?: number;
  /** Server-side limit per statement; default 10 s. */
  statementTimeoutMs?: number;
  /** Limit to get a connection (from the pool or a new one); default 5 s. */
  connectionTimeoutMs?: number;
  logger?: Logger;
}

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
const RECORD_SQL = `
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
    calling_ae, called_ae, source_address, state, received_at)
  SELECT $19::text, se.id, $20::text, $21::int, $22::int, $23::int, $24::int, $25::text, $26::text,
    $27::text, $28::bigint, $29::text, $30::text, $31::text, $32::text, $33::text, $34::timestamptz
  FROM se
  ON CONFLICT (sop_instance_uid) DO NOTHING
  RETURNING id),
ev AS (
  INSERT INTO outbox (event_type, aggregate_uid, payload)
  SELECT 'instance.stored', $6::text, jsonb_build_object('sopInstanceUid', $19::text,
    'seriesInstanceUid', $14::text, 'studyInstanceUid', $6::text, 'objectKey', $27::text,
    'storeName', $26::text, 'size', $28::bigint, 'sha256', $29::text)
  FROM ins WHERE $33::text = 'stored'
  RETURNING id)
SELECT (SELECT count(*) FROM ins)::int AS inserted`;

// A separate statement, so its snapshot sees a row committed by a concurrent store that won the
// race. Only other bytes count as a duplicate.
const DUPLICATE_SQL = `
WITH cur AS (${instanceSelect('i.sop_instance_uid = $1')}),
dup AS (
  UPDATE instances SET duplicates_received = duplicates_received + 1,
    last_duplicate_at = $3, last_duplicate_sha256 = $2
  WHERE sop_instance_uid = $1 AND sha256 <> $2
  RETURNING id)
SELECT cur.*, (SELECT count(*) FROM dup)::int AS counted FROM cur`;

const MARK_STORED_SQL = `
WITH upd AS (
  UPDATE instances i SET state = 'stored'
  FROM series r JOIN studies s ON s.id = r.study_fk
  WHERE i.sop_instance_uid = $1 AND i.state = 'pending-upload' AND r.id = i.series_fk
  RETURNING i.sop_instance_uid, i.object_key, i.store_name, i.size, i.sha256, r.series_uid, s.study_uid),
ev AS (
  INSERT INTO outbox (event_type, aggregate_uid, payload)
  SELECT 'instance.stored', study_uid, jsonb_build_object('sopInstanceUid', sop_instance_uid,
    'seriesInstanceUid', series_uid, 'studyInstanceUid', study_uid, 'objectKey', object_key,
    'storeName', store_name, 'size', size, 'sha256', sha256)
  FROM upd)
SELECT EXISTS (SELECT 1 FROM instances WHERE sop_instance_uid = $1) AS found`;

const STUDY_SQL = `
SELECT s.study_uid, p.patient_id, p.patient_name, to_char(s.study_date, 'YYYYMMDD') AS study_date,
  s.accession_number, s.description, s.num_series, s.num_instances, s.total_bytes,
  s.first_received_at, s.last_received_at,
  ARRAY(SELECT DISTINCT r.modality FROM series r
        WHERE r.study_fk = s.id AND r.num_instances > 0 AND r.modality IS NOT NULL
        ORDER BY 1) AS modalities
FROM studies s JOIN patients p ON p.id = s.patient_fk
WHERE s.study_uid = $1`;

function instanceSelect(where: string): string {
  return `SELECT i.sop_instance_uid, s.study_uid, r.series_uid, i.store_name, i.object_key, i.size,
    i.sha256, i.state FROM instances i JOIN series r ON r.id = i.series_fk
    JOIN studies s ON s.id = r.study_fk WHERE ${where}`;
}

interface InstanceRow {
  sop_instance_uid: string;
  study_uid: string;
  series_uid: string;
  store_name: string;
  object_key: string;
  size: string;
  sha256: string;
  state: 'stored' | 'pending-upload';
}

export class PgIndex implements InstanceIndex {
  private readonly pool: pg.Pool;
  private readonly log: Logger | undefined;

  constructor(opts: PgIndexOptions) {
    this.log = opts.logger;
    const statementTimeoutMs = opts.statementTimeoutMs ?? 10_000;
    this.pool = new pg.Pool({
      connectionString: opts.connectionString,
      max: opts.poolSize ?? 10,
      connectionTimeoutMillis: opts.connectionTimeoutMs ?? 5_000,
      idleTimeoutMillis: 30_000,
      statement_timeout: statementTimeoutMs,
      // The server's statement_timeout cannot fire when the server or the network hangs.
      query_timeout: statementTimeoutMs + 2_000,
      keepAlive: true,
      // A client that hangs mid-transaction (migrate) must not hold its locks for ever.
      idle_in_transaction_session_timeout: 60_000,
      application_name: 'dicom-gateway',
    });
    // An idle client whose connection dies (server restart) emits 'error' here; unhandled, it
    // would crash the process. The pool has already dropped that client and will open new ones.
    this.pool.on('error', (err) => {
      this.log?.warn({ err: describe(err) }, 'idle index connection lost; it will be replaced');
    });
  }

  async migrate(): Promise<void> {
    await this.run(() => migrate(this.pool, { logger: this.log }), 'migrate');
  }

  async recordInstance(rec: InstanceRecord): Promise<RecordOutcome> {
    const sha256 = rec.sha256.toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(sha256)) {
      throw new GatewayError('GW_ERR_INTERNAL', `sha256 is not 64 hex digits: ${rec.sha256}`);
    }
    const params = recordParams(rec, sha256);
    // Neither inserted nor found: RECORD_SQL missed a patient, study or series row committed by a
    // concurrent store after its snapshot (see there), or the row vanished between the two
    // statements. A new statement has a new snapshot; the unique keys decide. Bounded.
    for (let attempt = 1; ; attempt++) {
      const { rows } = await this.query<{ inserted: number }>(RECORD_SQL, params, 'recordInstance');
      if (rows[0]?.inserted) return { kind: 'inserted' };
      const dup = await this.query<InstanceRow & { counted: number }>(
        DUPLICATE_SQL,
        [rec.attributes.sopInstanceUid, sha256, rec.receivedAt],
        'recordInstance',
      );
      const row = dup.rows[0];
      if (row) {
        const existing = toExisting(row);
        return existing.sha256 === sha256
          ? { kind: 'identical', existing }
          : { kind: 'conflict', existing };
      }
      if (attempt >= 5) {
        throw new GatewayError('GW_ERR_INTERNAL', 'instance neither inserted nor found');
      }
      this.log?.debug({ attempt }, 'recordInstance raced a concurrent store; running it again');
    }
  }

  /**
   * A 'pending-upload' instance reached the object store: mark it 'stored' and write its
   * instance.stored event, in one transaction. Idempotent: a second call changes nothing.
   */
  async markStored(sopInstanceUid: string): Promise<void> {
    const { rows } = await this.query<{ found: boolean }>(
      MARK_STORED_SQL,
      [sopInstanceUid],
      'markStored',
    );
    if (!rows[0]?.found) {
      throw new GatewayError(
        'GW_ERR_INTERNAL',
        `markStored: no instance ${sopInstanceUid} in the index`,
      );
    }
  }

  async findInstance(sopInstanceUid: string): Promise<ExistingInstance | undefined> {
    const sql = instanceSelect('i.sop_instance_uid = $1');
    const { rows } = await this.query<InstanceRow>(sql, [sopInstanceUid], 'findInstance');
    return rows[0] ? toExisting(rows[0]) : undefined;
  }

  async getStudy(studyInstanceUid: string): Promise<StudySummary | undefined> {
    const { rows } = await this.query<{
      study_uid: string;
      patient_id: string;
      patient_name: string | null;
      study_date: string | null;
      accession_number: string | null;
      description: string | null;
      num_series: number;
      num_instances: number;
      total_bytes: string;
      first_received_at: Date;
      last_received_at: Date;
      modalities: string[];
    }>(STUDY_SQL, [studyInstanceUid], 'getStudy');
    const r = rows[0];
    if (!r) return undefined;
    return {
      studyInstanceUid: r.study_uid,
      patientId: r.patient_id || undefined,
      patientName: r.patient_name ?? undefined,
      studyDate: r.study_date ?? undefined,
      accessionNumber: r.accession_number ?? undefined,
      studyDescription: r.description ?? undefined,
      modalitiesInStudy: r.modalities,
      numberOfSeries: r.num_series,
      numberOfInstances: r.num_instances,
      totalBytes: Number(r.total_bytes),
      firstReceivedAt: r.first_received_at,
      lastReceivedAt: r.last_received_at,
    };
  }

  async listInstances(studyInstanceUid: string): Promise<ExistingInstance[]> {
    const sql = `${instanceSelect('s.study_uid = $1')}
      ORDER BY r.series_number NULLS LAST, r.id, i.instance_number NULLS LAST, i.id`;
    const { rows } = await this.query<InstanceRow>(sql, [studyInstanceUid], 'listInstances');
    return rows.map(toExisting);
  }

  async pendingOutbox(limit: number): Promise<OutboxEvent[]> {
    const { rows } = await this.query<{
      id: string;
      event_type: string;
      payload: Record<string, unknown>;
      created_at: Date;
    }>(
      `SELECT id, event_type, payload, created_at FROM outbox
       WHERE delivered_at IS NULL AND dead_at IS NULL ORDER BY id LIMIT $1`,
      [limit],
      'pendingOutbox',
    );
    return rows.map((r) => ({
      id: Number(r.id),
      type: r.event_type,
      payload: r.payload,
      createdAt: r.created_at,
    }));
  }

  async ping(): Promise<void> {
    await this.query('SELECT 1', [], 'ping', 2_000);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async query<R extends pg.QueryResultRow>(
    text: string,
    values: unknown[],
    op: string,
    timeoutMs?: number,
  ): Promise<pg.QueryResult<R>> {
    const config: pg.QueryConfig & { query_timeout?: number } = { text, values };
    if (timeoutMs) config.query_timeout = timeoutMs;
    return this.run(() => this.pool.query<R>(config), op);
  }

  /**
   * Maps failures to GatewayErrors. A connection that died while idle in the pool (the server
   * restarted) fails its next query: that one is retried at once on a fresh connection (the pool
   * drops a client released with an error). Safe because every operation here is idempotent.
   */
  private async run<T>(fn: () => Promise<T>, op: string): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isRetryable(err)) {
        this.log?.debug({ err: describe(err), op }, 'retrying once');
        try {
          return await fn();
        } catch (again) {
          throw toGatewayError(again, op);
        }
      }
      throw toGatewayError(err, op);
    }
  }
}

function recordParams(rec: InstanceRecord, sha256: string): unknown[] {
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
    /* $33 */ rec.state, rec.receivedAt,
  ].map((v) => (typeof v === 'string' ? v.replace(/\0/g, '') : v));
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

function toExisting(r: InstanceRow): ExistingInstance {
  return {
    sopInstanceUid: r.sop_instance_uid,
    studyInstanceUid: r.study_uid,
    seriesInstanceUid: r.series_uid,
    storeName: r.store_name,
    objectKey: r.object_key,
    size: Number(r.size),
    sha256: r.sha256,
    state: r.state,
  };
}

const NETWORK_CODE =
  /^E(CONNREFUSED|CONNRESET|CONNABORTED|PIPE|TIMEDOUT|HOSTUNREACH|NETUNREACH|NOTFOUND|AI_AGAIN)$/;

/**
 * Worth one immediate retry: a pooled connection the server or network closed since its last use
 * (57P01: the backend was terminated), or a deadlock / serialization victim.
 */
function isRetryable(err: unknown): boolean {
  const { code, message } = errorFields(err);
  return (
    /^(ECONNRESET|EPIPE|57P01|40P01|40001)$/.test(code ?? '') ||
    /Connection terminated unexpectedly/.test(message)
  );
}

/**
 * Whether the database is unreachable or overloaded (the sender should retry: A700) rather than
 * refusing this data: connection errors (08), operator intervention (57P: shutdown, restart,
 * cancel/timeout), insufficient resources (53: disk full, too many connections), auth and a
 * missing database (28, 3D: the operator must fix them; the data is fine), lock and serialization
 * failures (55P03, 40001, 40P01), and client-side timeouts.
 */
export function isIndexUnavailable(err: unknown): boolean {
  const { code, message } = errorFields(err);
  if (code && (NETWORK_CODE.test(code) || /^(08|57|53|28|3D)/.test(code))) return true;
  if (code === '55P03' || code === '40001' || code === '40P01') return true;
  return /Connection terminated|timeout|connection error|not queryable|pool after calling end/i.test(
    message,
  );
}

function toGatewayError(err: unknown, op: string): GatewayError {
  if (err instanceof GatewayError) return err;
  const { message } = errorFields(err);
  return isIndexUnavailable(err)
    ? new GatewayError('GW_ERR_INDEX_UNAVAILABLE', `index unavailable (${op}): ${message}`, {
        cause: err,
      })
    : new GatewayError('GW_ERR_INTERNAL', `index ${op} failed: ${message}`, { cause: err });
}

function errorFields(err: unknown): { code: string | undefined; message: string } {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  return {
    code: typeof e?.code === 'string' ? e.code : undefined,
    message: typeof e?.message === 'string' ? e.message : String(err),
  };
}

function describe(err: unknown): { code?: string; message: string } {
  const { code, message } = errorFields(err);
  return code ? { code, message } : { message };
}
