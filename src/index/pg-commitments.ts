/**
 * CommitmentTransactions on PostgreSQL (schema: migrations/008_storage_commitment.sql). See
 * commitment-transactions.ts for the contract. Every statement is one round trip in autocommit;
 * a claim takes due rows FOR UPDATE SKIP LOCKED and moves them to the end of its lease, and
 * every later write checks the claim is still the writer's (claimed_by = owner).
 */
import { GatewayError } from '../errors.js';
import type {
  CommitmentCounts,
  CommitmentReportRecord,
  CommitmentTransaction,
  CommitmentTransactions,
  NewCommitmentTransaction,
} from './commitment-transactions.js';
import { deleteInBatches, type PgExec } from './pg-exec.js';

const RECORD_SQL = `
WITH ins AS (
  INSERT INTO commitment_transactions (transaction_uid, requester_ae, called_ae, refs, deadline_at)
  VALUES ($1, $2, $3, $4::jsonb, $5)
  ON CONFLICT (requester_ae, transaction_uid) DO NOTHING RETURNING id)
SELECT id, true AS created FROM ins
UNION ALL
SELECT id, false FROM commitment_transactions WHERE requester_ae = $2 AND transaction_uid = $1
LIMIT 1`;

const CLAIM_SQL = `
WITH due AS (
  SELECT id FROM commitment_transactions
   WHERE state = 'pending' AND (next_attempt_at <= now()
     OR ($4 AND report IS NULL AND (claimed_until IS NULL OR claimed_until < now())))
   ORDER BY next_attempt_at, id LIMIT $1
   FOR UPDATE SKIP LOCKED)
UPDATE commitment_transactions t SET claimed_by = $2,
  claimed_until = now() + $3::double precision * interval '1 millisecond',
  next_attempt_at = now() + $3::double precision * interval '1 millisecond'
  FROM due WHERE t.id = due.id
RETURNING t.id, t.transaction_uid, t.requester_ae, t.called_ae, t.refs, t.report, t.received_at,
  t.deadline_at, t.attempts, t.last_error`;

const LOOKUP_SQL = `
SELECT sop_instance_uid, sop_class_uid, state FROM instances WHERE sop_instance_uid = ANY($1::text[])`;

const DEFER_SQL = `
UPDATE commitment_transactions SET next_attempt_at = $3, claimed_by = NULL, claimed_until = NULL
 WHERE id = $1 AND claimed_by = $2 AND state = 'pending'`;

const DECIDE_SQL = `
UPDATE commitment_transactions SET report = $3::jsonb, event_type = $4
 WHERE id = $1 AND claimed_by = $2 AND state = 'pending' AND report IS NULL`;

const REPORTED_SQL = `
UPDATE commitment_transactions SET state = 'reported', reported_at = now(), attempts = attempts + 1,
  claimed_by = NULL, claimed_until = NULL, last_error = NULL
 WHERE id = $1 AND claimed_by = $2 AND state = 'pending'`;

const FAILED_SQL = `
UPDATE commitment_transactions SET attempts = attempts + 1, last_error = $3,
  state = CASE WHEN attempts + 1 >= $5 THEN 'abandoned' ELSE 'pending' END,
  next_attempt_at = $4, claimed_by = NULL, claimed_until = NULL
 WHERE id = $1 AND claimed_by = $2 AND state = 'pending'
RETURNING state`;

const RELEASE_SQL = `
UPDATE commitment_transactions SET next_attempt_at = now(), claimed_by = NULL, claimed_until = NULL
 WHERE claimed_by = $1 AND state = 'pending'`;

const COUNTS_SQL = `
SELECT count(*) FILTER (WHERE state = 'pending') AS pending,
  count(*) FILTER (WHERE state = 'reported' AND event_type = 1) AS committed,
  count(*) FILTER (WHERE state = 'reported' AND event_type = 2) AS failed,
  count(*) FILTER (WHERE state = 'abandoned') AS abandoned
  FROM commitment_transactions`;

interface Row {
  id: string;
  transaction_uid: string;
  requester_ae: string;
  called_ae: string;
  refs: NewCommitmentTransaction['references'];
  report: CommitmentReportRecord | null;
  received_at: Date;
  deadline_at: Date;
  attempts: number;
  last_error: string | null;
}

export class PgCommitments implements CommitmentTransactions {
  constructor(private readonly db: PgExec) {}

  async recordCommitment(t: NewCommitmentTransaction): Promise<{ id: number; created: boolean }> {
    const refs = t.references.map((r) => ({
      sopClassUid: r.sopClassUid,
      sopInstanceUid: r.sopInstanceUid,
    }));
    const params = [
      t.transactionUid,
      t.requesterAeTitle,
      t.calledAeTitle,
      JSON.stringify(refs),
      t.deadlineAt,
    ];
    // No row: a concurrent insert of the same transaction committed after this statement's
    // snapshot; a new statement sees it. Bounded.
    for (let attempt = 1; ; attempt++) {
      const { rows } = await this.db.query<{ id: string; created: boolean }>(
        RECORD_SQL,
        params,
        'recordCommitment',
      );
      const row = rows[0];
      if (row) return { id: Number(row.id), created: row.created };
      if (attempt >= 3) {
        throw new GatewayError(
          'GW_ERR_INTERNAL',
          'commitment transaction neither inserted nor found',
        );
      }
    }
  }

  async claimCommitments(req: {
    limit: number;
    leaseMs: number;
    owner: string;
    undecidedToo?: boolean;
  }): Promise<CommitmentTransaction[]> {
    const { rows } = await this.db.query<Row>(
      CLAIM_SQL,
      [req.limit, req.owner, req.leaseMs, req.undecidedToo === true],
      'claimCommitments',
    );
    return rows.map((r) => ({
      id: Number(r.id),
      transactionUid: r.transaction_uid,
      requesterAeTitle: r.requester_ae,
      calledAeTitle: r.called_ae,
      references: r.refs,
      deadlineAt: r.deadline_at,
      receivedAt: r.received_at,
      attempts: r.attempts,
      ...(r.report ? { report: r.report } : {}),
      ...(r.last_error ? { lastError: r.last_error } : {}),
    }));
  }

  async lookupInstances(
    uids: readonly string[],
  ): Promise<Map<string, { sopClassUid: string; state: 'stored' | 'pending-upload' }>> {
    const { rows } = await this.db.query<{
      sop_instance_uid: string;
      sop_class_uid: string;
      state: 'stored' | 'pending-upload';
    }>(LOOKUP_SQL, [uids], 'lookupInstances');
    return new Map(
      rows.map((r) => [r.sop_instance_uid, { sopClassUid: r.sop_class_uid, state: r.state }]),
    );
  }

  async deferCommitment(id: number, owner: string, at: Date): Promise<boolean> {
    const { rowCount } = await this.db.query(DEFER_SQL, [id, owner, at], 'deferCommitment');
    return (rowCount ?? 0) > 0;
  }

  async decideCommitment(
    id: number,
    owner: string,
    report: CommitmentReportRecord,
  ): Promise<boolean> {
    const eventType = report.failed.length > 0 ? 2 : 1;
    const { rowCount } = await this.db.query(
      DECIDE_SQL,
      [id, owner, JSON.stringify(report), eventType],
      'decideCommitment',
    );
    return (rowCount ?? 0) > 0;
  }

  async commitmentReported(id: number, owner: string): Promise<boolean> {
    const { rowCount } = await this.db.query(REPORTED_SQL, [id, owner], 'commitmentReported');
    return (rowCount ?? 0) > 0;
  }

  async commitmentAttemptFailed(f: {
    id: number;
    owner: string;
    error: string;
    retryAt: Date;
    maxAttempts: number;
  }): Promise<'pending' | 'abandoned' | undefined> {
    const { rows } = await this.db.query<{ state: 'pending' | 'abandoned' }>(
      FAILED_SQL,
      [f.id, f.owner, f.error.slice(0, 1000), f.retryAt, f.maxAttempts],
      'commitmentAttemptFailed',
    );
    return rows[0]?.state;
  }

  async releaseCommitments(owner: string): Promise<number> {
    const { rowCount } = await this.db.query(RELEASE_SQL, [owner], 'releaseCommitments');
    return rowCount ?? 0;
  }

  async pruneCommitments(before: Date): Promise<number> {
    return deleteInBatches(
      this.db,
      `DELETE FROM commitment_transactions WHERE id IN (
         SELECT id FROM commitment_transactions
          WHERE state <> 'pending' AND received_at < $1 ORDER BY id LIMIT $2)`,
      before,
      500,
      'pruneCommitments',
    );
  }

  async commitmentCounts(): Promise<CommitmentCounts> {
    const { rows } = await this.db.query<Record<keyof CommitmentCounts, string>>(
      COUNTS_SQL,
      [],
      'commitmentCounts',
    );
    const r = rows[0]!;
    return {
      pending: Number(r.pending),
      committed: Number(r.committed),
      failed: Number(r.failed),
      abandoned: Number(r.abandoned),
    };
  }
}
