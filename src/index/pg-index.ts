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
import {
  DUPLICATE_SQL,
  instanceSelect,
  MARK_STORED_SQL,
  REPLACE_SQL,
  RECORD_SQL,
  STUDY_SQL,
  VERSION_SQL,
} from './pg-queries.js';

export interface PgIndexOptions {
  connectionString: string;
  poolSize?: number;
  /** Server-side limit per statement; default 10 s. */
  statementTimeoutMs?: number;
  /** Limit to get a connection (from the pool or a new one); default 5 s. */
  connectionTimeoutMs?: number;
  logger?: Logger;
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
  private closed = false;

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
    // concurrent store after its snapshot (see pg-queries.ts), or the row vanished between the two
    // statements. A new statement has a new snapshot; the unique keys decide. Bounded.
    for (let attempt = 1; ; attempt++) {
      const { rows } = await this.query<{ inserted: number }>(
        RECORD_SQL,
        params,
        'recordInstance',
        { prepare: 'gw_record_instance' },
      );
      if (rows[0]?.inserted) return { kind: 'inserted' };
      const dup = await this.query<InstanceRow & { counted: number }>(
        DUPLICATE_SQL,
        [rec.attributes.sopInstanceUid, sha256, rec.receivedAt],
        'recordInstance',
        { prepare: 'gw_record_duplicate' },
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
      { prepare: 'gw_mark_stored' },
    );
    if (!rows[0]?.found) {
      throw new GatewayError(
        'GW_ERR_INTERNAL',
        `markStored: no instance ${sopInstanceUid} in the index`,
      );
    }
  }

  async listPending(owner: string, limit: number, after?: string): Promise<ExistingInstance[]> {
    const where =
      "i.state = 'pending-upload' AND i.pending_owner IS NOT DISTINCT FROM $1" +
      ' AND ($3::text IS NULL OR i.sop_instance_uid > $3)';
    const sql = `${instanceSelect(where)} ORDER BY i.sop_instance_uid LIMIT $2`;
    const params = [owner, limit, after ?? null];
    const { rows } = await this.query<InstanceRow>(sql, params, 'listPending');
    return rows.map(toExisting);
  }

  /**
   * Removes a 'pending-upload' row whose file is gone (it was never acknowledged); the delete
   * trigger takes back its counters. A row that is 'stored' meanwhile is left alone.
   */
  async forgetPending(sopInstanceUid: string): Promise<boolean> {
    const { rowCount } = await this.query(
      `DELETE FROM instances WHERE sop_instance_uid = $1 AND state = 'pending-upload'`,
      [sopInstanceUid],
      'forgetPending',
    );
    return (rowCount ?? 0) > 0;
  }

  async replaceInstance(rec: InstanceRecord): Promise<void> {
    const { rows } = await this.query<{ n: number }>(
      REPLACE_SQL,
      copyParams(rec),
      'replaceInstance',
    );
    if (!rows[0]?.n) {
      throw new GatewayError(
        'GW_ERR_INTERNAL',
        `replaceInstance: no stored instance ${rec.attributes.sopInstanceUid}`,
      );
    }
  }

  async recordVersion(rec: InstanceRecord): Promise<void> {
    const { rows } = await this.query<{ n: number }>(
      VERSION_SQL,
      [...copyParams(rec), rec.storeName, rec.objectKey],
      'recordVersion',
    );
    if (!rows[0]?.n) {
      throw new GatewayError(
        'GW_ERR_INTERNAL',
        `recordVersion: no stored instance ${rec.attributes.sopInstanceUid}`,
      );
    }
  }

  async findInstance(sopInstanceUid: string): Promise<ExistingInstance | undefined> {
    const sql = instanceSelect('i.sop_instance_uid = $1');
    const { rows } = await this.query<InstanceRow>(sql, [sopInstanceUid], 'findInstance', {
      prepare: 'gw_find_instance',
    });
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
    await this.query('SELECT 1', [], 'ping', { timeoutMs: 2_000 });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Waits for checked-out clients, each bounded by query_timeout.
    await this.pool.end();
  }

  /** `prepare` names a server-side prepared statement: the hot path is parsed and planned once per connection. */
  private async query<R extends pg.QueryResultRow>(
    text: string,
    values: unknown[],
    op: string,
    opts: { prepare?: string; timeoutMs?: number } = {},
  ): Promise<pg.QueryResult<R>> {
    const config: pg.QueryConfig & { query_timeout?: number } = { text, values };
    if (opts.prepare) config.name = opts.prepare;
    if (opts.timeoutMs) config.query_timeout = opts.timeoutMs;
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
    /* $33 */ rec.state, rec.receivedAt, rec.state === 'pending-upload' ? (rec.pendingOwner ?? null) : null,
  ].map((v) => (typeof v === 'string' ? v.replace(/\0/g, '') : v));
}

/** $1–$8 of REPLACE_SQL and VERSION_SQL: which instance, and what this copy of it is. */
function copyParams(rec: InstanceRecord): unknown[] {
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
