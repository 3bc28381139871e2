/**
 * BackfillRuns on YDB (backfill-runs.ts has the contract). One difference from PostgreSQL: YDB
 * has no session advisory locks, so a backfill scope's lock and the reconcile lock of a source
 * are lease rows (`backfill_locks`, keys `backfill:<AE>:<scope>` and `reconcile:<AE>`, the
 * advisory lock keys of pg-backfill-runs.ts) renewed every LEASE_MS / 3 while the process
 * runs; a process that dies (SIGKILL included) loses one when its lease runs out, LEASE_MS
 * later, rather than at once.
 */
import { randomUUID } from 'node:crypto';
import {
  scopeText,
  type BackfillRun,
  type BackfillRuns,
  type BackfillRunState,
  type BackfillScope,
  type BackfillStudyRecord,
  type StudyOutcome,
} from './backfill-runs.js';
import { sequencesRead, sequenceValues, setSequence, Writes } from './ydb-events.js';
import type { YdbExec } from './ydb-exec.js';
import type { TableRef } from './ydb-schema.js';
import { date, num, optNum, optStr, str, ydb, type Row } from './ydb-values.js';

export const LEASE_MS = 30_000;

const RUN_COLUMNS = `id, source_ae, date_from, date_to, modality, study_uid, state, cursor_date,
  started_at, finished_at`;

export class YdbBackfillRuns implements BackfillRuns {
  constructor(
    private readonly db: YdbExec,
    private readonly t: TableRef,
  ) {}

  lockBackfillScope(scope: BackfillScope): Promise<{ release(): Promise<void> } | undefined> {
    return this.lease('BackfillScope', `backfill:${scope.sourceAe}:${scopeText(scope)}`);
  }

  lockReconcile(sourceAe: string): Promise<{ release(): Promise<void> } | undefined> {
    return this.lease('Reconcile', `reconcile:${sourceAe}`);
  }

  /**
   * Takes the lease row `lockKey` (free, expired, or already this owner's) and renews it every
   * LEASE_MS / 3 until released; undefined when another owner's lease has not run out. The
   * database's clock decides expiry. `what` names the calls (lock<what>, release<what>).
   */
  private async lease(
    what: string,
    lockKey: string,
  ): Promise<{ release(): Promise<void> } | undefined> {
    const key = ydb.text(lockKey);
    const owner = randomUUID();
    const t = this.t;
    const take = (): Promise<boolean> =>
      this.db.tx(`lock${what}`, async (run) => {
        const [nowRows, rows] = await run(
          `SELECT CurrentUtcTimestamp() AS now;
           SELECT owner, expires_at FROM ${t('backfill_locks')} WHERE lock_key = $key;`,
          { key },
        );
        const now = date(nowRows?.[0]?.now);
        const r = rows?.[0];
        if (r && r.owner !== owner && date(r.expires_at) > now) return false;
        await run(
          `UPSERT INTO ${t('backfill_locks')} (lock_key, owner, expires_at)
           VALUES ($key, $owner, $until)`,
          { key, owner: ydb.text(owner), until: ydb.ts(new Date(now.getTime() + LEASE_MS)) },
        );
        return true;
      });
    if (!(await take())) return undefined;
    const timer = setInterval(() => void take().catch(() => undefined), LEASE_MS / 3);
    timer.unref();
    return {
      release: async () => {
        clearInterval(timer);
        await this.db.tx(`release${what}`, (run) =>
          run(`DELETE FROM ${t('backfill_locks')} WHERE lock_key = $key AND owner = $owner`, {
            key,
            owner: ydb.text(owner),
          }),
        );
      },
    };
  }

  openBackfillRun(scope: BackfillScope): Promise<{ run: BackfillRun; resumed: boolean }> {
    const t = this.t;
    return this.db.tx('openBackfillRun', async (run) => {
      const [open, seqs] = await run(
        `SELECT ${RUN_COLUMNS} FROM ${t('backfill_runs')} VIEW backfill_runs_scope_idx
          WHERE source_ae = $ae AND scope = $scope AND finished_at IS NULL ORDER BY id LIMIT 1;
         ${sequencesRead(t, ['backfill_runs'])};`,
        { ae: ydb.text(scope.sourceAe), scope: ydb.text(scopeText(scope)) },
      );
      const found = open?.[0];
      if (found) {
        await run(
          `UPDATE ${t('backfill_runs')} SET state = 'running'u, error = NULL,
             updated_at = CurrentUtcTimestamp() WHERE id = $id`,
          { id: ydb.int64(num(found.id)) },
        );
        return { run: toRun({ ...found, state: 'running' }), resumed: true };
      }
      const id = (sequenceValues(seqs).get('backfill_runs') ?? 0) + 1;
      const now = new Date();
      const w = new Writes();
      setSequence(w, t, 'backfill_runs', id);
      w.add(
        `UPSERT INTO ${t('backfill_runs')} (id, source_ae, scope, date_from, date_to, modality,
           study_uid, state, started_at, updated_at)
         VALUES ($id, $ae, $scope, $from, $to, $mod, $study, 'running'u, $now, $now)`,
        {
          id: ydb.int64(id),
          ae: ydb.text(scope.sourceAe),
          scope: ydb.text(scopeText(scope)),
          from: ydb.optText(scope.from),
          to: ydb.optText(scope.to),
          mod: ydb.optText(scope.modality),
          study: ydb.optText(scope.studyUid),
          now: ydb.ts(now),
        },
      );
      await run(w.text, w.params);
      return {
        run: { ...scope, id, state: 'running' as const, startedAt: now },
        resumed: false,
      };
    });
  }

  async recordBackfillStudy(runId: number, s: BackfillStudyRecord): Promise<void> {
    const t = this.t;
    await this.db.tx('recordBackfillStudy', async (run) => {
      const key = { run: ydb.int64(runId), uid: ydb.text(s.studyUid) };
      const [rows, seqs] = await run(
        `SELECT moved FROM ${t('backfill_studies')} WHERE run_id = $run AND study_uid = $uid;
         ${sequencesRead(t, ['backfill_studies'])};`,
        key,
      );
      const old = rows?.[0];
      const seq = (sequenceValues(seqs).get('backfill_studies') ?? 0) + 1;
      const w = new Writes();
      setSequence(w, t, 'backfill_studies', seq);
      w.add(
        `UPSERT INTO ${t('backfill_studies')} (run_id, study_uid, seq, study_date, outcome,
           source_instances, missing_before, moved, failed_suboperations, error, updated_at)
         VALUES ($run, $uid, $seq, $date, $outcome, $src, $missing, $moved, $failed, $err,
           CurrentUtcTimestamp())`,
        {
          ...key,
          seq: ydb.int64(seq),
          date: ydb.optText(s.studyDate),
          outcome: ydb.text(s.outcome),
          src: ydb.optInt64(s.sourceInstances),
          missing: ydb.int64(s.missingBefore),
          moved: ydb.int64(num(old?.moved) + s.moved),
          failed: ydb.int64(s.failedSuboperations),
          err: ydb.optText(s.error),
        },
      );
      await run(w.text, w.params);
    });
  }

  async advanceBackfillCursor(runId: number, cursor: string): Promise<void> {
    const t = this.t;
    await this.db.tx('advanceBackfillCursor', async (run) => {
      const [rows] = await run(`SELECT cursor_date FROM ${t('backfill_runs')} WHERE id = $id`, {
        id: ydb.int64(runId),
      });
      const cur = optStr(rows?.[0]?.cursor_date);
      if (cur !== undefined && cur >= cursor) return;
      await run(
        `UPDATE ${t('backfill_runs')} SET cursor_date = $c, updated_at = CurrentUtcTimestamp()
          WHERE id = $id`,
        { id: ydb.int64(runId), c: ydb.text(cursor) },
      );
    });
  }

  async endBackfillRun(
    runId: number,
    state: Exclude<BackfillRunState, 'running'>,
    error?: string,
  ): Promise<void> {
    await this.db.tx('endBackfillRun', (run) =>
      run(
        `UPDATE ${this.t('backfill_runs')} SET state = $state, error = $err,
           updated_at = CurrentUtcTimestamp(), finished_at = $fin WHERE id = $id`,
        {
          id: ydb.int64(runId),
          state: ydb.text(state),
          err: ydb.optText(error),
          fin: ydb.optTs(state === 'done' ? new Date() : null),
        },
      ),
    );
  }

  async backfillStudies(runId: number): Promise<BackfillStudyRecord[]> {
    const [rows] = await this.db.read(
      'backfillStudies',
      `SELECT study_uid, study_date, outcome, source_instances, missing_before, moved,
          failed_suboperations, error, seq
         FROM ${this.t('backfill_studies')} WHERE run_id = $run ORDER BY seq`,
      { run: ydb.int64(runId) },
    );
    return (rows ?? []).map((r) => ({
      studyUid: str(r.study_uid),
      studyDate: optStr(r.study_date),
      outcome: str(r.outcome) as StudyOutcome,
      sourceInstances: optNum(r.source_instances),
      missingBefore: num(r.missing_before),
      moved: num(r.moved),
      failedSuboperations: num(r.failed_suboperations),
      error: optStr(r.error),
    }));
  }
}

function toRun(r: Row): BackfillRun {
  return {
    id: num(r.id),
    sourceAe: str(r.source_ae),
    from: optStr(r.date_from),
    to: optStr(r.date_to),
    modality: optStr(r.modality),
    studyUid: optStr(r.study_uid),
    state: str(r.state) as BackfillRunState,
    cursor: optStr(r.cursor_date),
    startedAt: date(r.started_at),
  };
}
