/**
 * YdbIndex: the InstanceIndex on YDB (schema: ydb-schema.ts; docs/ydb.md). Each write is one
 * serializable YDB transaction (ydb-exec.ts) that reads what it changes and writes rows,
 * counters and outbox event together (YDB has no triggers; ydb-ingest.ts). The parts, like
 * PgIndex's: ingest (ydb-ingest.ts), reports (ydb-reports.ts), deliveries (ydb-deliveries.ts),
 * stable studies (ydb-stable-studies.ts), backfill runs (ydb-backfill-runs.ts), commitments
 * (ydb-commitments.ts).
 *
 * onOutbox: YDB has no LISTEN/NOTIFY. Listeners are called once subscribed and after each
 * commit of this process that wrote an event; events written by other processes are found by
 * the notify worker's slow poll.
 */
import type { Driver } from '@ydbjs/core';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import type { BackfillRuns } from './backfill-runs.js';
import type { IndexReports } from './index-reports.js';
import type {
  ExistingInstance,
  InstanceIndex,
  InstanceRecord,
  OutboxEvent,
  RecordOutcome,
  StudySummary,
} from './instance-index.js';
import type { OutboxDeliveries } from './outbox-deliveries.js';
import { isInstanceEventType, parseInstanceEvent } from './outbox-event.js';
import type { StableStudies, StableSweep } from './stable-studies.js';
import { YdbBackfillRuns } from './ydb-backfill-runs.js';
import { YdbCommitments } from './ydb-commitments.js';
import { YdbDeliveries } from './ydb-deliveries.js';
import { YdbExec, describe } from './ydb-exec.js';
import { YdbIngest } from './ydb-ingest.js';
import { INSTANCE_COLUMNS, toExisting } from './ydb-instance-rows.js';
import { YdbReports } from './ydb-reports.js';
import { schemaStatements, tableRef, type TableRef } from './ydb-schema.js';
import { YdbStableStudies } from './ydb-stable-studies.js';
import { date, json, num, optStr, str, ydb } from './ydb-values.js';

const STUDY_COLUMNS =
  's.study_uid AS study_uid, s.patient_id AS patient_id, s.study_date AS study_date, s.accession_number AS accession_number, s.description AS description, s.num_series AS num_series, s.num_instances AS num_instances, s.total_bytes AS total_bytes, s.first_received_at AS first_received_at, s.last_received_at AS last_received_at';

export interface YdbIndexOptions {
  /** Makes the driver (connection string grpc[s]://host:port/database and credentials). */
  driver: () => Driver;
  /** Tables under this directory of the database (default: its root). */
  directory?: string | undefined;
  /** Bound on one call, retries included; default 10 s. */
  timeoutMs?: number;
  logger?: Logger | undefined;
}

export class YdbIndex implements InstanceIndex {
  private readonly db: YdbExec;
  private readonly t: TableRef;
  private readonly ingest: YdbIngest;
  private readonly reports: IndexReports;
  private readonly deliveries: YdbDeliveries;
  private readonly stable: YdbStableStudies;
  private readonly backfill: BackfillRuns;
  readonly commitments: YdbCommitments;
  private readonly listeners = new Set<() => void>();
  private readonly log: Logger | undefined;

  constructor(opts: YdbIndexOptions) {
    this.log = opts.logger;
    this.db = new YdbExec({
      driver: opts.driver,
      timeoutMs: opts.timeoutMs ?? 10_000,
      logger: opts.logger,
    });
    this.t = tableRef(opts.directory);
    const wrote = (): void => this.wake();
    this.ingest = new YdbIngest(this.db, this.t, wrote);
    this.reports = new YdbReports(this.db, this.t);
    this.deliveries = new YdbDeliveries(this.db, this.t);
    this.stable = new YdbStableStudies(this.db, this.t, wrote);
    this.backfill = new YdbBackfillRuns(this.db, this.t);
    this.commitments = new YdbCommitments(this.db, this.t);
  }

  /** Creates the tables and their indexes (idempotent; concurrent callers are fine). */
  async migrate(): Promise<void> {
    for (const statement of schemaStatements(this.t)) {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.db.ddl('migrate', statement);
          break;
        } catch (err) {
          // Two processes creating one table: the loser may see a scheme conflict; once more.
          if (attempt >= 3) throw err;
          this.log?.debug({ err: describe(err), attempt }, 'YDB schema statement failed; again');
        }
      }
    }
  }

  recordInstance = (rec: InstanceRecord): Promise<RecordOutcome> => this.ingest.recordInstance(rec);
  markStored = (sop: string): Promise<void> => this.ingest.markStored(sop);
  /** Every YDB commit is durable when it returns. */
  flushCommits = (): Promise<void> => Promise.resolve();
  forgetPending = (sop: string): Promise<boolean> => this.ingest.forgetPending(sop);
  replaceInstance = (rec: InstanceRecord): Promise<void> => this.ingest.replaceInstance(rec);
  recordVersion = (rec: InstanceRecord): Promise<void> => this.ingest.recordVersion(rec);

  async listPending(owner: string, limit: number, after?: string): Promise<ExistingInstance[]> {
    const [rows] = await this.db.read(
      'listPending',
      `SELECT ${INSTANCE_COLUMNS} FROM ${this.t('instances')} VIEW instances_pending_idx
        WHERE pending_owner = $owner AND sop_instance_uid > $after AND state = 'pending-upload'u
        ORDER BY sop_instance_uid LIMIT $n`,
      { owner: ydb.text(owner), after: ydb.text(after ?? ''), n: ydb.limit(limit) },
    );
    return (rows ?? []).map(toExisting);
  }

  async findInstance(sopInstanceUid: string): Promise<ExistingInstance | undefined> {
    const [rows] = await this.db.read(
      'findInstance',
      `SELECT ${INSTANCE_COLUMNS} FROM ${this.t('instances')} WHERE sop_instance_uid = $sop`,
      { sop: ydb.text(sopInstanceUid) },
    );
    return rows?.[0] ? toExisting(rows[0]) : undefined;
  }

  async getStudy(studyInstanceUid: string): Promise<StudySummary | undefined> {
    const t = this.t;
    const [studies, series] = await this.db.read(
      'getStudy',
      `SELECT ${STUDY_COLUMNS}, p.patient_name AS patient_name FROM ${t('studies')} AS s
         LEFT JOIN ${t('patients')} AS p ON p.patient_id = s.patient_id AND p.issuer = s.issuer
        WHERE s.study_uid = $uid;
       SELECT modality, num_instances FROM ${t('series')} VIEW series_study_idx
        WHERE study_uid = $uid;`,
      { uid: ydb.text(studyInstanceUid) },
    );
    const s = studies?.[0];
    if (!s) return undefined;
    const modalities = new Set<string>();
    for (const r of series ?? []) {
      if (typeof r.modality === 'string' && num(r.num_instances) > 0) modalities.add(r.modality);
    }
    const studyDate = optStr(s.study_date);
    const col = (name: string): unknown => s[name];
    return {
      studyInstanceUid: str(col('study_uid')),
      patientId: optStr(col('patient_id')) || undefined,
      patientName: optStr(s.patient_name),
      studyDate: studyDate?.replace(/-/g, ''),
      accessionNumber: optStr(col('accession_number')),
      studyDescription: optStr(col('description')),
      modalitiesInStudy: [...modalities].sort(),
      numberOfSeries: num(col('num_series')),
      numberOfInstances: num(col('num_instances')),
      totalBytes: num(col('total_bytes')),
      firstReceivedAt: date(col('first_received_at')),
      lastReceivedAt: date(col('last_received_at')),
    };
  }

  /** By series number (absent last), series, instance number (absent last), arrival. */
  async listInstances(studyInstanceUid: string): Promise<ExistingInstance[]> {
    const t = this.t;
    const [instances, series] = await this.db.read(
      'listInstances',
      `SELECT ${INSTANCE_COLUMNS}, instance_number, seq FROM ${t('instances')}
         VIEW instances_study_idx WHERE study_uid = $uid;
       SELECT series_uid, series_number, seq FROM ${t('series')} VIEW series_study_idx
        WHERE study_uid = $uid;`,
      { uid: ydb.text(studyInstanceUid) },
    );
    const bySeries = new Map((series ?? []).map((r) => [str(r.series_uid), r]));
    const last = Number.MAX_SAFE_INTEGER;
    const key = (i: Record<string, unknown>): number[] => {
      const r = bySeries.get(str(i.series_uid));
      return [
        r?.series_number == null ? last : num(r.series_number),
        num(r?.seq),
        i.instance_number == null ? last : num(i.instance_number),
        num(i.seq),
      ];
    };
    const sorted = [...(instances ?? [])].sort((a, b) => {
      const [ka, kb] = [key(a), key(b)];
      for (let k = 0; k < ka.length; k++) if (ka[k] !== kb[k]) return ka[k]! - kb[k]!;
      return 0;
    });
    return sorted.map(toExisting);
  }

  async instanceEvents(limit: number): Promise<OutboxEvent[]> {
    const [rows] = await this.db.read(
      'instanceEvents',
      `SELECT id, event_type, payload, created_at FROM ${this.t('outbox')}
        WHERE StartsWith(event_type, 'instance.'u) ORDER BY id LIMIT $n`,
      { n: ydb.limit(limit) },
    );
    return (rows ?? []).map((r) => {
      const id = num(r.id);
      const type = str(r.event_type);
      if (!isInstanceEventType(type)) {
        throw new GatewayError('GW_ERR_INTERNAL', `outbox event ${id}: type ${type}`);
      }
      return {
        id,
        type,
        payload: parseInstanceEvent(json(r.payload), id),
        createdAt: date(r.created_at),
      };
    });
  }

  summary: IndexReports['summary'] = () => this.reports.summary();
  outboxPending: IndexReports['outboxPending'] = () => this.reports.outboxPending();
  storedObjects: IndexReports['storedObjects'] = (f) => this.reports.storedObjects(f);
  countStoredObjects: IndexReports['countStoredObjects'] = (f) =>
    this.reports.countStoredObjects(f);

  claimDue: OutboxDeliveries['claimDue'] = (req) => this.deliveries.claimDue(req);
  complete: OutboxDeliveries['complete'] = (ids) => this.deliveries.complete(ids);
  fail: OutboxDeliveries['fail'] = (f) => this.deliveries.fail(f);
  dead: OutboxDeliveries['dead'] = (id, owner, error) => this.deliveries.dead(id, owner, error);
  listDead: OutboxDeliveries['listDead'] = (o) => this.deliveries.listDead(o);
  requeueDead: OutboxDeliveries['requeueDead'] = (d) => this.deliveries.requeueDead(d);
  deliveryCounts: OutboxDeliveries['deliveryCounts'] = () => this.deliveries.deliveryCounts();

  emitStableStudies = (
    quietMs: number,
    limit: number,
    only?: readonly string[],
  ): Promise<StableSweep> => this.stable.emitStableStudies(quietMs, limit, only);
  dueStableStudies: StableStudies['dueStableStudies'] = (q, n) =>
    this.stable.dueStableStudies(q, n);
  deferStableStudy: StableStudies['deferStableStudy'] = (uid, ms) =>
    this.stable.deferStableStudy(uid, ms);

  onOutbox(listener: () => void): () => void {
    this.listeners.add(listener);
    setImmediate(() => {
      if (this.listeners.has(listener)) listener();
    });
    return () => void this.listeners.delete(listener);
  }

  private wake(): void {
    for (const l of this.listeners) l();
  }

  lockBackfillScope: BackfillRuns['lockBackfillScope'] = (s) => this.backfill.lockBackfillScope(s);
  lockReconcile: BackfillRuns['lockReconcile'] = (ae) => this.backfill.lockReconcile(ae);
  openBackfillRun: BackfillRuns['openBackfillRun'] = (s) => this.backfill.openBackfillRun(s);
  recordBackfillStudy: BackfillRuns['recordBackfillStudy'] = (id, s) =>
    this.backfill.recordBackfillStudy(id, s);
  advanceBackfillCursor: BackfillRuns['advanceBackfillCursor'] = (id, c) =>
    this.backfill.advanceBackfillCursor(id, c);
  endBackfillRun: BackfillRuns['endBackfillRun'] = (id, st, e) =>
    this.backfill.endBackfillRun(id, st, e);
  backfillStudies: BackfillRuns['backfillStudies'] = (id) => this.backfill.backfillStudies(id);

  async ping(): Promise<void> {
    await this.db.read('ping', 'SELECT 1 AS one');
  }

  async close(): Promise<void> {
    this.listeners.clear();
    await this.db.close();
  }
}
