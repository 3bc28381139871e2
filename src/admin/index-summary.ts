/**
 * Read-only queries for /status, the `status` command and the outbox gauge, on the index schema
 * (src/index/migrations). Its own small pool, so that a slow status query never takes a
 * connection the C-STORE path is waiting for, and a statement timeout on every query.
 *
 * Cost: each query reads the studies table (counters kept by the instances_count trigger) or a
 * partial index, never a scan of `instances`, so a scrape stays cheap as the archive grows.
 */
import pg from 'pg';
import { GatewayError } from '../errors.js';

/**
 * The outbox count stops here: until a notifier delivers events every instance leaves one
 * pending, and counting millions of rows on every scrape would cost more than it tells.
 */
export const OUTBOX_COUNT_CAP = 100_000;

/** How many of the most recently received studies are searched for each AE's last study. */
export const RECENT_STUDIES = 200;

export interface LastStudy {
  callingAeTitle: string;
  studyInstanceUid: string;
  /** YYYY-MM-DD, when the data set had a Study Date. */
  studyDate?: string;
  modalities: string[];
  instances: number;
  /** The last instance of that study from that AE. */
  receivedAt: Date;
}

export interface IndexSummary {
  studies: number;
  series: number;
  instances: number;
  bytes: number;
  /** Indexed, acknowledged from the local spool, not yet in the object store. */
  pendingUpload: number;
  /** Outbox events not yet delivered; at most OUTBOX_COUNT_CAP (then `outboxPendingCapped`). */
  outboxPending: number;
  outboxPendingCapped: boolean;
  /**
   * Per calling AE title, its most recent study, among the RECENT_STUDIES most recently
   * received studies (an AE silent for longer is not listed).
   */
  lastStudyByCallingAe: LastStudy[];
}

const COUNTS_SQL = `
SELECT count(*) FILTER (WHERE num_instances > 0) AS studies,
       coalesce(sum(num_series), 0) AS series,
       coalesce(sum(num_instances), 0) AS instances,
       coalesce(sum(total_bytes), 0) AS bytes,
       (SELECT count(*) FROM instances WHERE state = 'pending-upload') AS pending_upload
  FROM studies`;

const OUTBOX_SQL = `
SELECT count(*) AS n FROM (
  SELECT 1 FROM outbox WHERE delivered_at IS NULL AND dead_at IS NULL LIMIT $1) pending`;

// DISTINCT ON keeps the first row per AE in ORDER BY order: its latest instance. The recent
// studies bound the join (series_study_idx, instances_series_idx); an index on
// instances (calling_ae, received_at) would make this exact for any archive size.
const LAST_STUDY_SQL = `
WITH recent AS (
  SELECT id, study_uid, study_date, num_instances FROM studies
   WHERE num_instances > 0 ORDER BY last_received_at DESC LIMIT $1)
SELECT DISTINCT ON (i.calling_ae)
       i.calling_ae, r.study_uid, to_char(r.study_date, 'YYYY-MM-DD') AS study_date,
       r.num_instances, i.received_at,
       ARRAY(SELECT DISTINCT m.modality FROM series m
              WHERE m.study_fk = r.id AND m.modality IS NOT NULL ORDER BY 1) AS modalities
  FROM recent r
  JOIN series se ON se.study_fk = r.id
  JOIN instances i ON i.series_fk = se.id
 ORDER BY i.calling_ae, i.received_at DESC, i.id DESC`;

export class IndexSummaryReader {
  private readonly pool: pg.Pool;

  constructor(connectionString: string, opts: { statementTimeoutMs?: number } = {}) {
    const statementTimeoutMs = opts.statementTimeoutMs ?? 5_000;
    this.pool = new pg.Pool({
      connectionString,
      max: 2,
      connectionTimeoutMillis: 2_000,
      idleTimeoutMillis: 10_000,
      statement_timeout: statementTimeoutMs,
      // statement_timeout cannot fire when the server or the network hangs.
      query_timeout: statementTimeoutMs + 1_000,
      application_name: 'dicom-gateway-admin',
    });
    // An idle connection dropped by a server restart: the pool replaces it; unhandled it would crash.
    this.pool.on('error', () => undefined);
  }

  async summary(): Promise<IndexSummary> {
    const [counts, outbox, last] = await Promise.all([
      this.query<{
        studies: string;
        series: string;
        instances: string;
        bytes: string;
        pending_upload: string;
      }>(COUNTS_SQL, []),
      this.outboxPending(),
      this.lastStudies(),
    ]);
    const c = counts[0];
    return {
      studies: Number(c?.studies ?? 0),
      series: Number(c?.series ?? 0),
      instances: Number(c?.instances ?? 0),
      bytes: Number(c?.bytes ?? 0),
      pendingUpload: Number(c?.pending_upload ?? 0),
      outboxPending: outbox.count,
      outboxPendingCapped: outbox.capped,
      lastStudyByCallingAe: last,
    };
  }

  async outboxPending(): Promise<{ count: number; capped: boolean }> {
    const rows = await this.query<{ n: string }>(OUTBOX_SQL, [OUTBOX_COUNT_CAP]);
    const n = Number(rows[0]?.n ?? 0);
    return { count: Math.min(n, OUTBOX_COUNT_CAP), capped: n >= OUTBOX_COUNT_CAP };
  }

  async lastStudies(): Promise<LastStudy[]> {
    const rows = await this.query<{
      calling_ae: string;
      study_uid: string;
      study_date: string | null;
      num_instances: number;
      received_at: Date;
      modalities: string[];
    }>(LAST_STUDY_SQL, [RECENT_STUDIES]);
    return rows.map((r) => ({
      callingAeTitle: r.calling_ae,
      studyInstanceUid: r.study_uid,
      ...(r.study_date ? { studyDate: r.study_date } : {}),
      modalities: r.modalities,
      instances: r.num_instances,
      receivedAt: r.received_at,
    }));
  }

  close(): Promise<void> {
    return this.pool.end();
  }

  private async query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<R[]> {
    try {
      return (await this.pool.query<R>(text, values)).rows;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      // 42P01 undefined_table: a database the migrations never ran on.
      if ((err as { code?: unknown }).code === '42P01') {
        throw new GatewayError(
          'GW_ERR_CONFIG',
          `the index database has no gateway schema (${message}): run \`dicom-gateway migrate\``,
          { cause: err },
        );
      }
      throw new GatewayError('GW_ERR_INDEX_UNAVAILABLE', `index summary: ${message}`, {
        cause: err,
      });
    }
  }
}
