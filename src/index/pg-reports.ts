/**
 * IndexReports on PostgreSQL: the summary for /status, `status` and the outbox gauge, and the
 * walk over stored objects for `verify`. Each runs on a small pool of its own, opened on first
 * use: a slow report never takes a connection the C-STORE path is waiting for, and a verify scan
 * gets a longer statement timeout than a status query.
 *
 * Cost: the summary reads the studies table (counters kept by the instances_count trigger) or a
 * partial index, never a scan of `instances`, so a scrape stays cheap as the archive grows.
 */
import type { Logger } from 'pino';
import {
  outboxBacklog,
  RECENT_STUDIES,
  type IndexReports,
  type IndexSummary,
  type LastStudy,
  type StoredObject,
  type StoredObjectFilter,
} from './index-reports.js';
import { PgDeliveries } from './pg-deliveries.js';
import { PgExec } from './pg-exec.js';

const COUNTS_SQL = `
SELECT count(*) FILTER (WHERE num_instances > 0) AS studies,
       coalesce(sum(num_series), 0) AS series,
       coalesce(sum(num_instances), 0) AS instances,
       coalesce(sum(total_bytes), 0) AS bytes,
       (SELECT count(*) FROM instances WHERE state = 'pending-upload') AS pending_upload
  FROM studies`;

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

// Only 'stored' rows: a 'pending-upload' instance is in the local spool, not in the store yet.
// A study without a Study Date is outside any from/to range.
const FILTER = `
  i.state = 'stored'
  AND ($1::text IS NULL OR s.study_uid = $1)
  AND ($2::date IS NULL OR s.study_date >= $2)
  AND ($3::date IS NULL OR s.study_date <= $3)`;
const INSTANCES = `FROM instances i JOIN series se ON se.id = i.series_fk
  JOIN studies s ON s.id = se.study_fk`;

/** What is stored: each stored instance's object, then each version kept beside it (keep-versions). */
const SOURCES = [
  { from: INSTANCES, id: 'i.id', alias: 'i' },
  {
    from: `FROM instance_versions v JOIN instances i ON i.id = v.instance_fk
      JOIN series se ON se.id = i.series_fk JOIN studies s ON s.id = se.study_fk`,
    id: 'v.id',
    alias: 'v',
  },
].map((src) => ({
  // Keyset pagination by row id: constant memory, rows added meanwhile come last.
  page: `SELECT ${src.id} AS id, i.sop_instance_uid, ${src.alias}.store_name,
      ${src.alias}.object_key, ${src.alias}.size, ${src.alias}.sha256
    ${src.from} WHERE ${FILTER} AND ${src.id} > $4 ORDER BY ${src.id} LIMIT $5`,
  count: `SELECT count(*) AS n, coalesce(sum(${src.alias}.size), 0) AS bytes
    ${src.from} WHERE ${FILTER}`,
}));

const COUNT_STORED_SQL = `SELECT sum(n) AS n, sum(bytes) AS bytes FROM (${SOURCES.map(
  (s) => s.count,
).join(' UNION ALL ')}) t`;

const PAGE = 1_000;

export class PgReports implements IndexReports {
  private status: PgExec | undefined;
  private scan: PgExec | undefined;

  constructor(
    private readonly connectionString: string,
    private readonly log?: Logger,
  ) {}

  async summary(): Promise<IndexSummary> {
    const [counts, outbox, last] = await Promise.all([
      this.statusDb().query<{
        studies: string;
        series: string;
        instances: string;
        bytes: string;
        pending_upload: string;
      }>(COUNTS_SQL, [], 'summary'),
      this.outboxPending(),
      this.lastStudies(),
    ]);
    const c = counts.rows[0];
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
    // The notify metrics' per-destination counts, on the status pool.
    return outboxBacklog(await new PgDeliveries(this.statusDb()).deliveryCounts());
  }

  async *storedObjects(filter: StoredObjectFilter): AsyncGenerator<StoredObject> {
    const params = filterParams(filter);
    for (const src of SOURCES) {
      let after = '0';
      for (;;) {
        const { rows } = await this.scanDb().query<{
          id: string;
          sop_instance_uid: string;
          store_name: string;
          object_key: string;
          size: string;
          sha256: string;
        }>(src.page, [...params, after, PAGE], 'storedObjects');
        for (const r of rows) {
          yield {
            sopInstanceUid: r.sop_instance_uid,
            storeName: r.store_name,
            objectKey: r.object_key,
            size: Number(r.size),
            sha256: r.sha256,
          };
        }
        if (rows.length < PAGE) break;
        after = rows[rows.length - 1]!.id;
      }
    }
  }

  async countStoredObjects(
    filter: StoredObjectFilter,
  ): Promise<{ objects: number; bytes: number }> {
    const { rows } = await this.scanDb().query<{ n: string | null; bytes: string | null }>(
      COUNT_STORED_SQL,
      filterParams(filter),
      'countStoredObjects',
    );
    return { objects: Number(rows[0]?.n ?? 0), bytes: Number(rows[0]?.bytes ?? 0) };
  }

  async close(): Promise<void> {
    await Promise.all([this.status?.end(), this.scan?.end()]);
  }

  private async lastStudies(): Promise<LastStudy[]> {
    const { rows } = await this.statusDb().query<{
      calling_ae: string;
      study_uid: string;
      study_date: string | null;
      num_instances: number;
      received_at: Date;
      modalities: string[];
    }>(LAST_STUDY_SQL, [RECENT_STUDIES], 'lastStudies');
    return rows.map((r) => ({
      callingAeTitle: r.calling_ae,
      studyInstanceUid: r.study_uid,
      ...(r.study_date ? { studyDate: r.study_date } : {}),
      modalities: r.modalities,
      instances: r.num_instances,
      receivedAt: r.received_at,
    }));
  }

  private statusDb(): PgExec {
    return (this.status ??= this.open('dicom-gateway-status', 5_000, 2_000));
  }

  private scanDb(): PgExec {
    return (this.scan ??= this.open('dicom-gateway-verify', 60_000, 10_000));
  }

  private open(applicationName: string, statementTimeoutMs: number, connectionTimeoutMs: number) {
    return new PgExec({
      connectionString: this.connectionString,
      poolSize: 2,
      statementTimeoutMs,
      connectionTimeoutMs,
      applicationName,
      logger: this.log,
    });
  }
}

function filterParams(f: StoredObjectFilter): unknown[] {
  return [f.studyInstanceUid ?? null, f.from ?? null, f.to ?? null];
}
