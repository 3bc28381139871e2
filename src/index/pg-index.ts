/**
 * PgIndex: the InstanceIndex on PostgreSQL 15+ (schema: ./migrations). The C-STORE path runs on
 * one pg.Pool, each operation a single statement in autocommit (pg-queries.ts), so a recorded
 * instance costs one round trip and its rows, counters (trigger) and outbox event commit
 * together or not at all. The reports (pg-reports.ts) run on pools of their own; the outbox
 * deliveries (pg-deliveries.ts) share the main pool; onOutbox LISTENs on a connection of its
 * own (pg-listener.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { GatewayError } from '../errors.js';
import type { IndexSummary, StoredObject, StoredObjectFilter } from './index-reports.js';
import type {
  ExistingInstance,
  InstanceIndex,
  InstanceRecord,
  OutboxEvent,
  RecordOutcome,
  RecordOptions,
  StudySummary,
} from './instance-index.js';
import { migrate } from './migrate.js';
import type {
  ClaimRequest,
  Delivery,
  DeliveryCounts,
  DeliveryFailure,
  DeliveryState,
} from './outbox-deliveries.js';
import { isInstanceEventType, parseInstanceEvent } from './outbox-event.js';
import { PgCommitments } from './pg-commitments.js';
import { OUTBOX_CHANNEL, PgDeliveries } from './pg-deliveries.js';
import { PgExec } from './pg-exec.js';
import { PgListener } from './pg-listener.js';
import { PgStableStudies } from './pg-stable-studies.js';
import type { StableStudies, StableSweep } from './stable-studies.js';
import {
  DUPLICATE_SQL,
  instanceSelect,
  MARK_STORED_SQL,
  REPLACE_SQL,
  RECORD_SQL,
  STUDY_SQL,
  VERSION_SQL,
} from './pg-queries.js';
import { copyParams, recordParams } from './pg-params.js';
import { PgReports } from './pg-reports.js';
import { PgBackfillRuns } from './pg-backfill-runs.js';
import type { BackfillRuns } from './backfill-runs.js';

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
  private readonly db: PgExec;
  private readonly reports: PgReports;
  private readonly deliveries: PgDeliveries;
  private readonly listener: PgListener;
  readonly commitments: PgCommitments;
  private readonly backfill: PgBackfillRuns;
  private readonly log: Logger | undefined;
  private closed = false;

  constructor(opts: PgIndexOptions) {
    this.log = opts.logger;
    const connectionTimeoutMs = opts.connectionTimeoutMs ?? 5_000;
    this.db = new PgExec({
      connectionString: opts.connectionString,
      poolSize: opts.poolSize ?? 10,
      statementTimeoutMs: opts.statementTimeoutMs ?? 10_000,
      connectionTimeoutMs,
      applicationName: 'dicom-gateway',
      logger: this.log,
    });
    this.reports = new PgReports(opts.connectionString, this.log);
    this.deliveries = new PgDeliveries(this.db);
    this.commitments = new PgCommitments(this.db);
    this.backfill = new PgBackfillRuns(this.db);
    this.listener = new PgListener(
      opts.connectionString,
      OUTBOX_CHANNEL,
      connectionTimeoutMs,
      this.log,
    );
  }

  async migrate(): Promise<void> {
    await this.db.run(() => migrate(this.db.pool, { logger: this.log }), 'migrate');
  }

  async recordInstance(rec: InstanceRecord, opts: RecordOptions = {}): Promise<RecordOutcome> {
    const sha256 = rec.sha256.toLowerCase();
    if (!/^[0-9a-f]{64}$/.test(sha256)) {
      throw new GatewayError('GW_ERR_INTERNAL', `sha256 is not 64 hex digits: ${rec.sha256}`);
    }
    const params = [...recordParams(rec, sha256), opts.flush !== false];
    // Neither inserted nor found: RECORD_SQL missed a patient, study or series row committed by a
    // concurrent store after its snapshot (see pg-queries.ts), or the row vanished between the two
    // statements. A new statement has a new snapshot; the unique keys decide. Bounded.
    for (let attempt = 1; ; attempt++) {
      const { rows } = await this.db.query<{ inserted: number }>(
        RECORD_SQL,
        params,
        'recordInstance',
        { prepare: 'gw_record_instance' },
      );
      if (rows[0]?.inserted) return { kind: 'inserted' };
      const dup = await this.db.query<InstanceRow & { counted: number }>(
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
    const { rows } = await this.db.query<{ found: boolean }>(
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

  /**
   * A transaction that writes WAL (a transactional logical message, which any role may emit
   * at any wal_level) committed synchronously: its commit waits for the WAL flush up to its
   * own commit record, which follows every commit before it. A transaction that writes no WAL
   * would not wait for any flush. Where the function is refused (some managed services), it
   * waits for the flush position to pass the insert position read now instead.
   */
  async flushCommits(): Promise<void> {
    try {
      await this.db.query(
        "SELECT pg_logical_emit_message(true, 'dicomgw', 'flush')::text AS lsn," +
          " set_config('synchronous_commit', 'on', true) AS commit_mode",
        [],
        'flushCommits',
      );
    } catch (err) {
      if (!(err instanceof GatewayError) || err.code !== 'GW_ERR_INTERNAL') throw err;
      const { rows } = await this.db.query<{ lsn: string }>(
        'SELECT pg_current_wal_insert_lsn()::text AS lsn',
        [],
        'flushCommits',
      );
      const target = rows[0]!.lsn;
      for (;;) {
        const r = await this.db.query<{ done: boolean }>(
          'SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn AS done',
          [target],
          'flushCommits',
        );
        if (r.rows[0]?.done) return;
        await sleep(20);
      }
    }
  }

  async listPending(owner: string, limit: number, after?: string): Promise<ExistingInstance[]> {
    const where =
      "i.state = 'pending-upload' AND i.pending_owner IS NOT DISTINCT FROM $1" +
      ' AND ($3::text IS NULL OR i.sop_instance_uid > $3)';
    const sql = `${instanceSelect(where)} ORDER BY i.sop_instance_uid LIMIT $2`;
    const params = [owner, limit, after ?? null];
    const { rows } = await this.db.query<InstanceRow>(sql, params, 'listPending');
    return rows.map(toExisting);
  }

  /**
   * Removes a 'pending-upload' row whose file is gone (it was never acknowledged); the delete
   * trigger takes back its counters. A row that is 'stored' meanwhile is left alone.
   */
  async forgetPending(sopInstanceUid: string): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `DELETE FROM instances WHERE sop_instance_uid = $1 AND state = 'pending-upload'`,
      [sopInstanceUid],
      'forgetPending',
    );
    return (rowCount ?? 0) > 0;
  }

  async replaceInstance(rec: InstanceRecord): Promise<void> {
    const { rows } = await this.db.query<{ n: number }>(
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
    const { rows } = await this.db.query<{ n: number }>(
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
    const { rows } = await this.db.query<InstanceRow>(sql, [sopInstanceUid], 'findInstance', {
      prepare: 'gw_find_instance',
    });
    return rows[0] ? toExisting(rows[0]) : undefined;
  }

  async getStudy(studyInstanceUid: string): Promise<StudySummary | undefined> {
    const { rows } = await this.db.query<{
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
    const { rows } = await this.db.query<InstanceRow>(sql, [studyInstanceUid], 'listInstances');
    return rows.map(toExisting);
  }

  async instanceEvents(limit: number): Promise<OutboxEvent[]> {
    const { rows } = await this.db.query<{
      id: string;
      event_type: string;
      payload: unknown;
      created_at: Date;
    }>(
      `SELECT id, event_type, payload, created_at FROM outbox
       WHERE event_type LIKE 'instance.%' ORDER BY id LIMIT $1`,
      [limit],
      'instanceEvents',
    );
    return rows.map((r) => {
      const id = Number(r.id);
      if (!isInstanceEventType(r.event_type)) {
        throw new GatewayError('GW_ERR_INTERNAL', `outbox event ${id}: type ${r.event_type}`);
      }
      return {
        id,
        type: r.event_type,
        payload: parseInstanceEvent(r.payload, id),
        createdAt: r.created_at,
      };
    });
  }

  summary(): Promise<IndexSummary> {
    return this.reports.summary();
  }

  outboxPending(): Promise<{ count: number; capped: boolean }> {
    return this.reports.outboxPending();
  }

  storedObjects(filter: StoredObjectFilter): AsyncIterable<StoredObject> {
    return this.reports.storedObjects(filter);
  }

  countStoredObjects(filter: StoredObjectFilter): Promise<{ objects: number; bytes: number }> {
    return this.reports.countStoredObjects(filter);
  }

  claimDue(req: ClaimRequest): Promise<Delivery[]> {
    return this.deliveries.claimDue(req);
  }

  complete(ids: readonly number[]): Promise<number> {
    return this.deliveries.complete(ids);
  }

  fail(f: DeliveryFailure): Promise<DeliveryState | undefined> {
    return this.deliveries.fail(f);
  }

  dead(id: number, owner: string, error: string): Promise<boolean> {
    return this.deliveries.dead(id, owner, error);
  }

  listDead(opts: { destination?: string; limit: number }): Promise<Delivery[]> {
    return this.deliveries.listDead(opts);
  }

  requeueDead(destination?: string): Promise<number> {
    return this.deliveries.requeueDead(destination);
  }

  deliveryCounts(): Promise<DeliveryCounts[]> {
    return this.deliveries.deliveryCounts();
  }

  pruneEvents(before: Date): Promise<number> {
    return this.deliveries.pruneEvents(before);
  }

  emitStableStudies(
    quietMs: number,
    limit: number,
    only?: readonly string[],
  ): Promise<StableSweep> {
    return new PgStableStudies(this.db).emitStableStudies(quietMs, limit, only);
  }
  dueStableStudies: StableStudies['dueStableStudies'] = (q, n) =>
    new PgStableStudies(this.db).dueStableStudies(q, n);
  deferStableStudy: StableStudies['deferStableStudy'] = (uid, ms) =>
    new PgStableStudies(this.db).deferStableStudy(uid, ms);

  onOutbox(listener: () => void): () => void {
    return this.listener.subscribe(listener);
  }

  // BackfillRuns (pg-backfill-runs.ts)
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
  pruneBackfillRuns = (before: Date): Promise<number> => this.backfill.pruneBackfillRuns(before);
  lastBackfillRun = (sourceAe: string) => this.backfill.lastBackfillRun(sourceAe);

  async ping(): Promise<void> {
    await this.db.query('SELECT 1', [], 'ping', { timeoutMs: 2_000 });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listener.close();
    await Promise.all([this.db.end(), this.reports.close()]);
  }
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
