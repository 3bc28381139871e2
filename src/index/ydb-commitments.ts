/**
 * CommitmentTransactions on YDB (commitment-transactions.ts has the contract). Each call is one
 * serializable transaction: it reads the rows it changes and checks the claim (owner, state)
 * in JS before writing, where PostgreSQL puts the check in the UPDATE's WHERE. Two claimers
 * reading the same due rows conflict and YDB aborts one, so no transaction is held twice.
 */
import type {
  CommitmentCounts,
  CommitmentReportRecord,
  CommitmentTransaction,
  CommitmentTransactions,
  NewCommitmentTransaction,
} from './commitment-transactions.js';
import { sequencesRead, sequenceValues, setSequence, Writes } from './ydb-events.js';
import type { Run, YdbExec } from './ydb-exec.js';
import type { TableRef } from './ydb-schema.js';
import { date, json, num, optStr, str, ydb, type Row } from './ydb-values.js';

export class YdbCommitments implements CommitmentTransactions {
  constructor(
    private readonly db: YdbExec,
    private readonly t: TableRef,
  ) {}

  recordCommitment(c: NewCommitmentTransaction): Promise<{ id: number; created: boolean }> {
    const t = this.t;
    const refs = c.references.map((r) => ({
      sopClassUid: r.sopClassUid,
      sopInstanceUid: r.sopInstanceUid,
    }));
    return this.db.tx('recordCommitment', async (run) => {
      const key = { ae: ydb.text(c.requesterAeTitle), uid: ydb.text(c.transactionUid) };
      const [found, seqs] = await run(
        `SELECT id FROM ${t('commitment_transactions')} VIEW commitment_key_idx
          WHERE requester_ae = $ae AND transaction_uid = $uid;
         ${sequencesRead(t, ['commitments'])};`,
        key,
      );
      if (found?.[0]) return { id: num(found[0].id), created: false };
      const id = (sequenceValues(seqs).get('commitments') ?? 0) + 1;
      const w = new Writes();
      setSequence(w, t, 'commitments', id);
      w.add(
        `UPSERT INTO ${t('commitment_transactions')} (id, transaction_uid, requester_ae,
           called_ae, refs, state, received_at, deadline_at, next_attempt_at, attempts)
         VALUES ($id, $uid, $ae, $called, $refs, 'pending'u, CurrentUtcTimestamp(), $deadline,
           CurrentUtcTimestamp(), 0)`,
        {
          ...key,
          id: ydb.int64(id),
          called: ydb.text(c.calledAeTitle),
          refs: ydb.text(JSON.stringify(refs)),
          deadline: ydb.ts(c.deadlineAt),
        },
      );
      await run(w.text, w.params);
      return { id, created: true };
    });
  }

  claimCommitments(req: {
    limit: number;
    leaseMs: number;
    owner: string;
    undecidedToo?: boolean;
  }): Promise<CommitmentTransaction[]> {
    const t = this.t;
    return this.db.tx('claimCommitments', async (run) => {
      const [nowRows] = await run('SELECT CurrentUtcTimestamp() AS now');
      const now = date(nowRows?.[0]?.now);
      const undecided = req.undecidedToo
        ? `OR (report IS NULL AND (claimed_until IS NULL OR claimed_until < $now))`
        : '';
      const [rows] = await run(
        `SELECT * FROM ${t('commitment_transactions')} VIEW commitment_due_idx
          WHERE state = 'pending'u AND (next_attempt_at <= $now ${undecided})
          ORDER BY next_attempt_at, id LIMIT $n`,
        { now: ydb.ts(now), n: ydb.limit(req.limit) },
      );
      if (!rows?.length) return [];
      const until = ydb.ts(new Date(now.getTime() + req.leaseMs));
      await run(
        `UPDATE ${t('commitment_transactions')} SET claimed_by = $owner, claimed_until = $until,
           next_attempt_at = $until WHERE id IN $ids`,
        {
          owner: ydb.text(req.owner),
          until,
          ids: ydb.int64List(rows.map((r) => num(r.id))),
        },
      );
      return rows.map(toTransaction);
    });
  }

  async lookupInstances(
    uids: readonly string[],
  ): Promise<Map<string, { sopClassUid: string; state: 'stored' | 'pending-upload' }>> {
    if (!uids.length) return new Map();
    const [rows] = await this.db.read(
      'lookupInstances',
      `SELECT sop_instance_uid, sop_class_uid, state FROM ${this.t('instances')}
        WHERE sop_instance_uid IN $uids`,
      { uids: ydb.textList([...new Set(uids)]) },
    );
    return new Map(
      (rows ?? []).map((r) => [
        str(r.sop_instance_uid),
        { sopClassUid: str(r.sop_class_uid), state: str(r.state) as 'stored' | 'pending-upload' },
      ]),
    );
  }

  /** Runs `write` on a pending transaction still claimed by `owner`; false otherwise. */
  private owned<T>(
    op: string,
    id: number,
    owner: string,
    write: (run: Run, row: Row) => Promise<T>,
  ): Promise<T | undefined> {
    return this.db.tx(op, async (run) => {
      const [rows] = await run(
        `SELECT * FROM ${this.t('commitment_transactions')} WHERE id = $id`,
        { id: ydb.int64(id) },
      );
      const r = rows?.[0];
      if (!r || r.state !== 'pending' || r.claimed_by !== owner) return undefined;
      return write(run, r);
    });
  }

  private update(run: Run, id: number, set: string, params: Parameters<Run>[1] = {}) {
    return run(`UPDATE ${this.t('commitment_transactions')} SET ${set} WHERE id = $id`, {
      ...params,
      id: ydb.int64(id),
    });
  }

  async deferCommitment(id: number, owner: string, at: Date): Promise<boolean> {
    const done = await this.owned('deferCommitment', id, owner, async (run) => {
      await this.update(run, id, 'next_attempt_at = $at, claimed_by = NULL, claimed_until = NULL', {
        at: ydb.ts(at),
      });
      return true;
    });
    return done === true;
  }

  async decideCommitment(
    id: number,
    owner: string,
    report: CommitmentReportRecord,
  ): Promise<boolean> {
    const done = await this.owned('decideCommitment', id, owner, async (run, r) => {
      if (r.report !== null && r.report !== undefined) return false;
      await this.update(run, id, 'report = $report, event_type = $type', {
        report: ydb.text(JSON.stringify(report)),
        type: ydb.int32(report.failed.length > 0 ? 2 : 1),
      });
      return true;
    });
    return done === true;
  }

  async commitmentReported(id: number, owner: string): Promise<boolean> {
    const done = await this.owned('commitmentReported', id, owner, async (run, r) => {
      await this.update(
        run,
        id,
        `state = 'reported'u, reported_at = CurrentUtcTimestamp(), attempts = $attempts,
         claimed_by = NULL, claimed_until = NULL, last_error = NULL`,
        { attempts: ydb.int64(num(r.attempts) + 1) },
      );
      return true;
    });
    return done === true;
  }

  commitmentAttemptFailed(f: {
    id: number;
    owner: string;
    error: string;
    retryAt: Date;
    maxAttempts: number;
  }): Promise<'pending' | 'abandoned' | undefined> {
    return this.owned('commitmentAttemptFailed', f.id, f.owner, async (run, r) => {
      const attempts = num(r.attempts) + 1;
      const state = attempts >= f.maxAttempts ? 'abandoned' : 'pending';
      await this.update(
        run,
        f.id,
        `attempts = $attempts, last_error = $err, state = $state, next_attempt_at = $at,
         claimed_by = NULL, claimed_until = NULL`,
        {
          attempts: ydb.int64(attempts),
          err: ydb.text(f.error.slice(0, 1000)),
          state: ydb.text(state),
          at: ydb.ts(f.retryAt),
        },
      );
      return state;
    });
  }

  releaseCommitments(owner: string): Promise<number> {
    const t = this.t;
    return this.db.tx('releaseCommitments', async (run) => {
      const [rows] = await run(
        `SELECT id FROM ${t('commitment_transactions')} VIEW commitment_due_idx
          WHERE state = 'pending'u AND claimed_by = $owner`,
        { owner: ydb.text(owner) },
      );
      const ids = (rows ?? []).map((r) => num(r.id));
      if (!ids.length) return 0;
      await run(
        `UPDATE ${t('commitment_transactions')} SET next_attempt_at = CurrentUtcTimestamp(),
           claimed_by = NULL, claimed_until = NULL WHERE id IN $ids`,
        { ids: ydb.int64List(ids) },
      );
      return ids.length;
    });
  }

  async commitmentCounts(): Promise<CommitmentCounts> {
    const [rows] = await this.db.read(
      'commitmentCounts',
      `SELECT state, event_type, COUNT(*) AS n FROM ${this.t('commitment_transactions')}
        GROUP BY state, event_type`,
    );
    const counts: CommitmentCounts = { pending: 0, committed: 0, failed: 0, abandoned: 0 };
    for (const r of rows ?? []) {
      const n = num(r.n);
      if (r.state === 'pending') counts.pending += n;
      else if (r.state === 'abandoned') counts.abandoned += n;
      else if (r.state === 'reported' && num(r.event_type) === 1) counts.committed += n;
      else if (r.state === 'reported' && num(r.event_type) === 2) counts.failed += n;
    }
    return counts;
  }
}

function toTransaction(r: Row): CommitmentTransaction {
  const report = json(r.report) as CommitmentReportRecord | undefined;
  const lastError = optStr(r.last_error);
  return {
    id: num(r.id),
    transactionUid: str(r.transaction_uid),
    requesterAeTitle: str(r.requester_ae),
    calledAeTitle: str(r.called_ae),
    references: json(r.refs) as NewCommitmentTransaction['references'],
    deadlineAt: date(r.deadline_at),
    receivedAt: date(r.received_at),
    attempts: num(r.attempts),
    ...(report ? { report } : {}),
    ...(lastError ? { lastError } : {}),
  };
}
